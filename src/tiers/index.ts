export type {
  Invalidation,
  InvalidationBus,
  InvalidationNotice,
} from './invalidation-bus.js';
export { MemoryInvalidationBus, type MemoryInvalidationBusOptions } from './memory-bus.js';
export { GENERATION_SHARDS, RedisInvalidationBus, type RedisInvalidationBusOptions } from './redis-bus.js';
export {
  TieredStore,
  type TieredStoreEvents,
  type TieredStoreOptions,
  type TieredStoreStats,
} from './tiered-store.js';
