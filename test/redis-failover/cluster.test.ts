import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startRedis } from '../harness/redis.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { assertAccepted, failoverDrill, summary } from './drill.js';
import { busiestClusterMaster, clusterFailedOver } from './topology.js';

describe('Cluster: a master holding entries is killed under load', () => {
  for (const binding of BINDING_NAMES) {
    test(`${binding}: no wrong value, no call past its deadline, and every entry served again by itself`, async (t) => {
      const redis = await startRedis('cluster');
      try {
        const result = await failoverDrill(binding, redis, async () => {
          const { master, replicaPort, entryKeys } = await busiestClusterMaster(redis);
          assert.ok(entryKeys > 0, 'the master to kill holds some of the entries');
          return { node: master, failedOver: () => clusterFailedOver(redis, master, replicaPort) };
        });
        t.diagnostic(`cluster ${binding}: ${JSON.stringify(summary(result))}`);
        assertAccepted(result);
      } finally {
        await redis.stop();
      }
    });
  }
});
