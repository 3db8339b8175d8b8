import { userInfo } from 'node:os';
import { PhiCacheError } from '../../errors.js';
import type { RotationCaller } from '../../keys/key-rotation.js';
import { keysetFlag, keysetHelp } from '../keyset-flag.js';
import { cacheFlags, cacheFlagsHelp, type OpenedCache, openCacheFromFlags } from '../open-cache.js';
import { redisConnectionFlags, redisConnectionHelp } from '../redis-connection.js';
import type { CommandOptions, CommandValues } from './command.js';

/**
 * What every `phicache keys <rotation command>` shares: its flags, and a cache opened on the fleet's store. The
 * key states, the data key records and the entries live in the store the service's instances share; the embedded
 * store of a CLI process holds none of them, so a change made there would look done and change nothing.
 */

/** The actor of the command's audit records (the service name every record carries). */
const SERVICE = 'phicache-cli';

export const keysAdminFlags = {
  ...keysetFlag,
  ...redisConnectionFlags,
  ...cacheFlags,
  principal: { type: 'string' },
} as const satisfies CommandOptions;

export const keysAdminHelp = [
  keysetHelp,
  redisConnectionHelp,
  cacheFlagsHelp,
  '  --principal <who>        who makes the change, in its audit record (default: cli:<login name>)',
].join('\n');

export interface AdminCache {
  readonly opened: OpenedCache;
  readonly caller: RotationCaller;
}

/** Opens the cache on the store named by --redis or --sentinel; refuses to run on this process's own store. */
export async function openAdminCache(values: CommandValues, command: string): Promise<AdminCache> {
  if (values.redis === undefined && values.sentinel === undefined) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${command} needs the store the service uses`, {
      hint: `Give --redis <url> (or --sentinel <host:port> --sentinel-name <name>) and the --keyset of the service: ${command} acts on the key states its instances share, which the embedded store of this process does not hold.`,
    });
  }
  const opened = await openCacheFromFlags(values, SERVICE);
  return { opened, caller: { principal: principalOf(values) } };
}

/** Runs `body` on the admin cache and always closes it (the audit trail is flushed by the close). */
export async function withAdminCache<T>(
  values: CommandValues,
  command: string,
  body: (admin: AdminCache) => Promise<T>,
): Promise<T> {
  const admin = await openAdminCache(values, command);
  try {
    return await body(admin);
  } finally {
    await admin.opened.close();
  }
}

function principalOf(values: CommandValues): string {
  if (typeof values.principal === 'string') return values.principal;
  let login: string | undefined;
  try {
    login = userInfo().username;
  } catch {
    // No passwd entry (some containers): the environment may still name the user.
  }
  return `cli:${login ?? process.env.USER ?? 'unknown'}`;
}

/** A time for people: ISO 8601 in UTC. 0 is the fleet's initial state (a version active before any rotation). */
export function isoTime(ms: number | undefined): string | null {
  if (ms === undefined || ms === 0) return null;
  return new Date(ms).toISOString();
}

/** Progress on stderr, only when a person watches it (stderr a TTY); never on stdout, which scripts parse. */
export function stderrProgress(label: string): ((count: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (count) => process.stderr.write(`\r${label} ${count}`);
}

/** Ends a progress line, if one was started. */
export function endProgress(progress: unknown): void {
  if (progress !== undefined) process.stderr.write('\n');
}

export function noPositionals(command: string, positionals: readonly string[]): void {
  if (positionals.length > 0) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${command} takes no positional arguments`);
  }
}
