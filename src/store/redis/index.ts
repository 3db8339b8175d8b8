export type { BreakerState, CircuitBreakerOptions } from './circuit-breaker.js';
export {
  type RedisAddress,
  type RedisArg,
  type RedisCommands,
  type RedisConnectionOptions,
  RedisReplyError,
  type RedisTlsOptions,
} from './commands.js';
export {
  type IoredisClientLike,
  type IoredisClusterLike,
  type IoredisSource,
  ioredisCommands,
} from './ioredis.js';
export {
  type NodeRedisClientLike,
  type NodeRedisClusterLike,
  type NodeRedisSentinelLike,
  type NodeRedisSource,
  nodeRedisCommands,
} from './node-redis.js';
export {
  type ElastiCacheOptions,
  elasticache,
  type MemorystoreOptions,
  memorystore,
  readSecret,
  type SecretSource,
} from './presets.js';
export { RedisStore, type RedisStoreEvents, type RedisStoreOptions } from './redis-store.js';
export { scanKeys } from './scan.js';
