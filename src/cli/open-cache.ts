import { openAuditKeys } from '../audit/audit-keys.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { FileSink } from '../audit/sinks/file-sink.js';
import { PhiCache } from '../cache.js';
import { PhiCacheError } from '../errors.js';
import type { KeyProvider } from '../keys/key-provider.js';
import { LocalKeyring } from '../keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../policy/default.js';
import { loadPolicyFile } from '../policy/load.js';
import type { Policy } from '../policy/policy.js';
import type { CacheStore } from '../store/cache-store.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { nodeRedisCommands } from '../store/redis/node-redis.js';
import { RedisStore } from '../store/redis/redis-store.js';
import type { CommandValues } from './commands/command.js';
import { regularFile } from './input-paths.js';
import { auditKeySourceFrom, cacheKeysFrom, keysetFrom } from './keyset-flag.js';
import { redisConnectionFrom } from './redis-connection.js';

export interface OpenedCache {
  readonly cache: PhiCache;
  readonly policy: Policy;
  /** `redis` when connection flags named a server, else `embedded` (this process's own store). */
  readonly storeName: 'redis' | 'embedded';
  readonly auditDir: string;
  close(): Promise<void>;
}

/**
 * A PhiCache as a command needs it: the keys of `--keyset` (else the development keyrings), the store of the Redis
 * connection flags (else the embedded store), the policy of `--policy` (else the shipped one), and the real audit
 * trail under `$PHICACHE_HOME/audit` (or `--audit-dir`), on a chain of its own so that it never contends with the
 * service's writers. What a command changes is audited like everything the cache does.
 */
export async function openCacheFromFlags(values: CommandValues, service: string): Promise<OpenedCache> {
  const keyset = await keysetFrom(values.keyset);
  let keys: KeyProvider;
  let audit: AuditTrail;
  const sink = new FileSink(typeof values['audit-dir'] === 'string' ? { dir: values['audit-dir'] } : {});
  if (keyset === undefined) {
    keys = await LocalKeyring.open();
    const auditKeys = await openAuditKeys({ provider: await LocalKeyring.open({ domain: 'audit' }) });
    audit = new AuditTrail({ keys: auditKeys, sinks: [sink] });
  } else {
    keys = await cacheKeysFrom(keyset);
    const auditKeys = await openAuditKeys({ keyset: await auditKeySourceFrom(keyset) });
    audit = new AuditTrail({ keys: auditKeys, sinks: [sink] });
  }
  const policy =
    typeof values.policy === 'string'
      ? await loadPolicyFile(await regularFile(values.policy, '--policy'))
      : await loadDefaultPolicy();
  const remote = values.redis !== undefined || values.sentinel !== undefined;
  let store: CacheStore;
  if (remote) {
    const commands = await nodeRedisCommands(await redisConnectionFrom(values));
    store = new RedisStore(commands);
  } else {
    store = new MemoryStore();
  }
  const refresh = values['key-state-refresh-ms'];
  const keyStateRefreshMs = refresh === undefined ? undefined : Number(refresh);
  if (
    keyStateRefreshMs !== undefined &&
    !(Number.isSafeInteger(keyStateRefreshMs) && keyStateRefreshMs >= 1 && keyStateRefreshMs <= 60_000)
  ) {
    await store.close().catch(() => undefined);
    await audit.close().catch(() => undefined);
    throw new PhiCacheError(
      'ERR_CLI_USAGE',
      '--key-state-refresh-ms must be an integer number of milliseconds in 1..60000',
    );
  }
  let cache: PhiCache;
  try {
    cache = await PhiCache.create({
      service,
      policy,
      keys,
      store,
      audit,
      ...(keyStateRefreshMs === undefined ? {} : { keyStateRefreshMs }),
    });
  } catch (error) {
    await store.close().catch(() => undefined);
    await audit.close().catch(() => undefined);
    throw error;
  }
  return {
    cache,
    policy,
    storeName: remote ? 'redis' : 'embedded',
    auditDir: sink.dir,
    close: () => cache.close(),
  };
}

/** The flags `openCacheFromFlags` reads besides the connection and keyset flags. */
export const cacheFlags = {
  policy: { type: 'string' },
  'audit-dir': { type: 'string' },
  'key-state-refresh-ms': { type: 'string' },
} as const;

export const cacheFlagsHelp = [
  '  --policy <file>          the policy the service runs (default: the shipped policy)',
  '  --audit-dir <dir>        where this command appends its audit records (default: $PHICACHE_HOME/audit)',
  "  --key-state-refresh-ms <ms>  the service's keyStateRefreshMs (default 1000): rotation waits twice this plus 1 s",
  '                           between publishing a version and promoting it, and before retiring one',
].join('\n');
