import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { MemoryInvalidationBus } from '../../src/tiers/memory-bus.js';
import { TieredStore } from '../../src/tiers/tiered-store.js';
import type { RedisTopology } from '../harness/redis.js';
import { describeCacheStore } from '../store/conformance.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { channel, instance } from './helpers.js';

describeCacheStore('tiered: memory L1 over memory L2, memory bus', () =>
  TieredStore.create({ l2: new MemoryStore(), bus: new MemoryInvalidationBus({ shards: 4 }) }),
);

// ACL: the least-privilege user reaches its counters (`~phc:*`), the channel (`&phc:*`) and the script.
const TOPOLOGIES: readonly RedisTopology[] = ['plain', 'cluster', 'acl', 'sentinel'];

for (const topology of TOPOLOGIES) {
  for (const binding of BINDING_NAMES) {
    describeCacheStore(`tiered: memory L1 over redis ${topology} ${binding}`, async () => {
      const { store } = await instance(topology, binding, { channel: channel() });
      return store;
    });
  }
}
