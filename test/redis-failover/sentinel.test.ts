import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startRedis } from '../harness/redis.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { assertAccepted, failoverDrill, summary } from './drill.js';
import { sentinelFailedOver, sentinelMaster } from './topology.js';

describe('Sentinel: the master is killed under load', () => {
  for (const binding of BINDING_NAMES) {
    test(`${binding}: no wrong value, no call past its deadline, and every entry served again by itself`, async (t) => {
      const redis = await startRedis('sentinel');
      try {
        const result = await failoverDrill(binding, redis, async () => {
          const node = await sentinelMaster(redis);
          assert.equal(node.role, 'master');
          return { node, failedOver: () => sentinelFailedOver(redis, node) };
        });
        t.diagnostic(`sentinel ${binding}: ${JSON.stringify(summary(result))}`);
        assertAccepted(result);
      } finally {
        await redis.stop();
      }
    });
  }
});
