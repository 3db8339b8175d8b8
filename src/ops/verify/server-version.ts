import { PhiCacheError } from '../../errors.js';
import { isRefused, type LiveServer } from './live-server.js';
import { type Finding, fail, notCheckable, pass, warn } from './report.js';

/**
 * The oldest Redis line verify accepts unless told otherwise. 7.0 is the first line with everything the other
 * checks rely on (ACL selectors, ACL DRYRUN, `enable-protected-configs`) and the oldest that Memorystore and
 * ElastiCache still offer; a platform that follows a narrower support window raises it (`--min-redis-version`).
 */
export const DEFAULT_MINIMUM_SERVER_VERSION = '7.0';

/** A `major.minor` or `major.minor.patch` version, compared part by part. */
export type ServerVersion = readonly [major: number, minor: number, patch: number];

const VERSION = /^(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?$/;

/** Parses a minimum version given by a caller; anything else is a typed error, never a silent default. */
export function parseMinimumVersion(text: string, name: string): ServerVersion {
  const match = VERSION.exec(text);
  if (match === null) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${name} must be a Redis version such as 7.2 or 7.2.4`, {
      hint: `Got ${JSON.stringify(text.slice(0, 40))}.`,
    });
  }
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

function compare(a: ServerVersion, b: ServerVersion): number {
  for (let i = 0; i < 3; i += 1) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

const show = (v: ServerVersion) => v.join('.');

/**
 * A version against the minimum, the same rule for a live server and a managed-service description: FAIL below
 * it; WARN for Redis 6 when a caller lowered the minimum that far (no ACL DRYRUN, no protected configs); else PASS.
 */
export function versionFinding(
  id: string,
  seen: string,
  version: ServerVersion,
  minimum: ServerVersion,
  remedy: string,
): Finding {
  if (compare(version, minimum) < 0)
    return fail(id, `${seen}, older than the minimum ${show(minimum)}`, remedy);
  if (version[0] < 7) {
    return warn(id, `${seen}: at least ${show(minimum)}, but no ACL DRYRUN and no protected configs`, remedy);
  }
  return pass(id, `${seen}, at least the minimum ${show(minimum)}`);
}

/** The server's version against the minimum: older lines no longer get security fixes. */
export async function checkVersion(server: LiveServer, minimum: ServerVersion): Promise<Finding> {
  const id = 'server.version';
  const info = await server.info('server');
  if (isRefused(info)) return notCheckable(id, info.refused);
  const reported = info.get('redis_version') ?? '';
  const match = VERSION.exec(reported);
  if (match === null)
    return notCheckable(id, `the server reports an unreadable version (${reported.slice(0, 20)})`);
  const version: ServerVersion = [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
  const remedy = `Upgrade to Redis ${show(minimum)} or later (Memorystore \`gcloud redis instances upgrade --redis-version\`, ElastiCache \`modify-replication-group --engine-version\`).`;
  return versionFinding(id, `Redis ${reported}`, version, minimum, remedy);
}
