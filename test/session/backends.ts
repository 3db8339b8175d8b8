import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { scanKeys } from '../../src/store/redis/scan.js';
import { type PrivateRedis, startRedis } from '../harness/redis.js';
import { connectionOptions } from '../store/redis/bindings.js';

export type BackendName = 'embedded' | 'redis' | 'cluster';
export const BACKENDS: readonly BackendName[] = ['embedded', 'redis', 'cluster'];

export interface Backend {
  readonly cache: PhiCache;
  /** Redis backends: every key with its PTTL, straight from the servers (every master on a Cluster). */
  readonly keys?: () => Promise<{ key: string; pttl: number }[]>;
  /** Redis backends: another connection's commands, for counters and inspection. */
  readonly commands?: RedisCommands;
  close(): Promise<void>;
}

/**
 * A PhiCache on real parts: the default policy, a local keyring in a fresh home, and the named store. Redis backends
 * get servers of their own, so that every key they hold is one the session store wrote (the shared fleet holds other
 * tests' keys, some without a TTL on purpose).
 */
export async function openBackend(name: BackendName): Promise<Backend> {
  const home = await mkdtemp(join(tmpdir(), 'phicache-session-'));
  let store: CacheStore = new MemoryStore();
  let commands: RedisCommands | undefined;
  let servers: PrivateRedis | undefined;
  if (name !== 'embedded') {
    servers = await startRedis(name === 'redis' ? 'plain' : 'cluster');
    const endpoint = servers;
    store = new RedisStore(await nodeRedisCommands(connectionOptions(endpoint)));
    commands = await nodeRedisCommands(connectionOptions(endpoint));
  }
  const cache = await PhiCache.create({
    service: 'session-tests',
    policy: await loadDefaultPolicy(),
    keys: await LocalKeyring.open({ home, env: {} }),
    store,
    audit: new MemoryAuditSink(),
  });
  const inspect = commands;
  return {
    cache,
    ...(inspect === undefined
      ? {}
      : {
          commands: inspect,
          keys: async () => {
            const found: { key: string; pttl: number }[] = [];
            for await (const { key, node } of scanKeys(inspect, '*')) {
              found.push({ key: key.toString('latin1'), pttl: await node.pttl(key) });
            }
            return found;
          },
        }),
    async close() {
      await cache.close();
      await inspect?.close();
      await servers?.stop();
    },
  };
}
