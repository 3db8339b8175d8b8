import type { RedisCommands, RedisConnectionOptions } from '../../../src/store/redis/commands.js';
import { ioredisCommands } from '../../../src/store/redis/ioredis.js';
import { nodeRedisCommands } from '../../../src/store/redis/node-redis.js';
import { scanKeys } from '../../../src/store/redis/scan.js';
import type { RedisEndpoint } from '../../harness/redis.js';

export const BINDINGS = {
  'node-redis': nodeRedisCommands,
  ioredis: ioredisCommands,
} as const satisfies Record<string, (options: RedisConnectionOptions) => Promise<RedisCommands>>;

export type BindingName = keyof typeof BINDINGS;

export const BINDING_NAMES = Object.keys(BINDINGS) as BindingName[];

/** The harness endpoint as phicache's connection options: what a user would configure for that deployment. */
export function connectionOptions(endpoint: RedisEndpoint): RedisConnectionOptions {
  const common = {
    ...(endpoint.tls === undefined ? {} : { tls: endpoint.tls }),
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
  };
  if (endpoint.cluster !== undefined) return { cluster: endpoint.cluster, ...common };
  if (endpoint.sentinel !== undefined) return { sentinel: endpoint.sentinel, ...common };
  return { url: endpoint.url, ...common };
}

/** Every key matching `match` on every master whose PTTL is -1: a key without a TTL. */
export async function keysWithoutTtl(commands: RedisCommands, match = 'phc:*'): Promise<Buffer[]> {
  const found: Buffer[] = [];
  for await (const { key, node } of scanKeys(commands, match)) {
    if ((await node.pttl(key)) === -1) found.push(key);
  }
  return found;
}
