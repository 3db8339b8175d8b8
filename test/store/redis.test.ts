import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { PhiCache } from '../../src/cache.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { scanKeys } from '../../src/store/redis/scan.js';
import { connectOptions, type RedisTopology, respCall, sharedRedis, TOPOLOGIES } from '../harness/redis.js';
import { clinician, makeCache } from '../helpers/make-cache.js';
import { RecordingStore } from '../helpers/recording-store.js';
import { describeCacheStore } from './conformance.js';
import {
  BINDING_NAMES,
  BINDINGS,
  type BindingName,
  connectionOptions,
  keysWithoutTtl,
} from './redis/bindings.js';

async function connect(topology: RedisTopology, binding: BindingName): Promise<RedisCommands> {
  return BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
}

for (const topology of TOPOLOGIES) {
  for (const binding of BINDING_NAMES) {
    const name = `redis ${topology} ${binding}`;
    let recorded: RecordingStore | undefined;
    let shards = 0;
    describeCacheStore(name, async () => {
      const store = new RedisStore(await connect(topology, binding), { commandTimeoutMs: 2_000 });
      shards = store.options.tagIndexShards;
      recorded = new RecordingStore(store);
      return recorded as CacheStore;
    });

    describe(`${name}: after the conformance suite`, () => {
      test('PHI-TTL-01 a SCAN over every master finds none of the suite keys or tag indexes without a TTL', async () => {
        assert.ok(recorded !== undefined && recorded.writes.length > 0);
        const ours = new Set<string>();
        for (const write of recorded.writes) {
          ours.add(write.key);
          for (const tag of write.options.tags ?? []) {
            for (let shard = 0; shard < shards; shard++) ours.add(`${tag}:${shard}`);
          }
        }
        const commands = await connect(topology, binding);
        try {
          // The fleet is shared with other test files, so only this suite's keys are judged here; the failure
          // tests judge a private server whole.
          const untimed = (await keysWithoutTtl(commands)).filter((key) => ours.has(key.toString()));
          assert.deepEqual(untimed, []);
          let seen = 0;
          for await (const { key } of scanKeys(commands)) if (ours.has(key.toString())) seen += 1;
          assert.ok(seen > 0, 'the scan reaches the keys the suite left behind');
        } finally {
          await commands.close();
        }
      });
    });
  }
}

describe('redis cluster: one tenant spreads over the whole cluster', () => {
  for (const binding of BINDING_NAMES) {
    test(`${binding}: 200 entries of one tenant written through PhiCache land on more than one master`, async () => {
      const endpoint = await sharedRedis('cluster');
      const commands = await connect('cluster', binding);
      const recording = new RecordingStore(new RedisStore(commands));
      const { cache } = await makeCache({ store: recording });
      try {
        for (let i = 0; i < 200; i++) {
          const receipt = await cache.set(
            { class: 'feature-flag', resource: 'flag', id: `f-${i}` },
            i,
            clinician,
          );
          assert.equal(receipt.stored, true);
        }
        const entries = new Set(recording.writes.map((w) => w.key).filter((key) => key.startsWith('phc:e:')));
        assert.equal(entries.size, 200);
        for (const key of entries)
          assert.match(key, /^phc:e:[^{}]*[A-Za-z0-9_-]{43}$/, 'an HMAC name, no hash tag');

        const slots = new Set<number>();
        for (const key of entries) {
          slots.add(Number(await respCall(connectOptions(endpoint), 'CLUSTER', 'KEYSLOT', key)));
        }
        assert.ok(slots.size > 150, `200 entries over ${slots.size} slots`);

        const perMaster: number[] = [];
        for (const master of commands.masters()) {
          let held = 0;
          let cursor = '0';
          do {
            const page = await master.scan(cursor, 'phc:e:*', 1000);
            cursor = page.cursor;
            for (const key of page.keys) if (entries.has(key.toString())) held += 1;
          } while (cursor !== '0');
          perMaster.push(held);
        }
        assert.equal(perMaster.length, 3);
        assert.equal(
          perMaster.reduce((a, b) => a + b, 0),
          200,
        );
        assert.ok(perMaster.filter((held) => held > 0).length > 1, `per master: ${perMaster.join(', ')}`);
        // purgeTenant reaches every shard of the tenant tag, wherever its members live.
        assert.equal(await cache.purgeTenant(clinician), 200);
      } finally {
        await cache.close();
      }
    });
  }
});

describe('redis: a client the caller already has', () => {
  let url = '';
  before(async () => {
    url = (await sharedRedis('plain')).url;
  });

  test('node-redis: a RedisClientType is accepted and left open by close()', async () => {
    const { createClient } = await import('redis');
    const client = createClient({ url, disableOfflineQueue: true });
    await client.connect();
    try {
      const store = new RedisStore(await BINDINGS['node-redis']({ client }));
      const key = `phc:e:${randomBytes(12).toString('base64url')}`;
      await store.set(key, Buffer.from([0, 1, 255]), { ttlMs: 10_000, tags: ['phc:t:mine'] });
      assert.deepEqual(await store.get(key), Buffer.from([0, 1, 255]));
      await store.close();
      assert.equal(client.isReady, true);
      assert.ok((await client.pTTL(key)) > 0);
    } finally {
      client.destroy();
    }
  });

  test('ioredis: a Redis client is accepted and left open by close()', async () => {
    const { Redis } = await import('ioredis');
    const client = new Redis(url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      enableAutoPipelining: true,
    });
    await client.connect();
    try {
      const store = new RedisStore(await BINDINGS.ioredis({ client }));
      const key = `phc:e:${randomBytes(12).toString('base64url')}`;
      await store.set(key, Buffer.from([0, 1, 255]), { ttlMs: 10_000, tags: ['phc:t:mine'] });
      assert.deepEqual(await store.get(key), Buffer.from([0, 1, 255]));
      await store.close();
      assert.equal(client.status, 'ready');
      assert.ok((await client.pttl(key)) > 0);
    } finally {
      client.disconnect();
    }
  });

  test('cluster clients of both libraries are accepted', async () => {
    const endpoint = await sharedRedis('cluster');
    const { createCluster } = await import('redis');
    const { Cluster } = await import('ioredis');
    const nodeCluster = createCluster({
      rootNodes: endpoint.cluster!.seeds.map(({ host, port }) => ({ socket: { host, port } })),
      defaults: { disableOfflineQueue: true },
    });
    await nodeCluster.connect();
    const ioCluster = new Cluster([...endpoint.cluster!.seeds], {
      enableOfflineQueue: false,
      lazyConnect: true,
    });
    await ioCluster.connect();
    try {
      for (const commands of [
        await BINDINGS['node-redis']({ cluster: nodeCluster }),
        await BINDINGS.ioredis({ cluster: ioCluster }),
      ]) {
        const store = new RedisStore(commands);
        const tag = `phc:t:${randomBytes(12).toString('base64url')}`;
        const keys = Array.from({ length: 20 }, () => `phc:e:${randomBytes(32).toString('base64url')}`);
        for (const key of keys) await store.set(key, Buffer.from(key), { ttlMs: 10_000, tags: [tag] });
        assert.equal(commands.masters().length, 3);
        assert.equal(await store.deleteByTag(tag), 20);
        await store.close();
      }
    } finally {
      nodeCluster.destroy();
      ioCluster.disconnect();
    }
  });
});

describe('redis: PhiCache end to end', () => {
  let cache: PhiCache | undefined;
  after(async () => {
    await cache?.close();
  });

  test('PHI-LEAK-01 an entry written through PhiCache on Redis reads back, purges by tag, and is only ciphertext there', async () => {
    const commands = await connect('plain', 'node-redis');
    const recording = new RecordingStore(new RedisStore(commands));
    ({ cache } = await makeCache({ store: recording }));
    const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
    await cache.set(ref, { hba1c: 7.9 }, clinician, { tags: { patient: 'MRN00482913' } });
    assert.deepEqual(await cache.get(ref, clinician), { hba1c: 7.9 });
    const written = recording.writes.filter((w) => w.key.startsWith('phc:e:'));
    assert.equal(written.length, 1);
    const raw = await commands.get(written[0]!.key);
    assert.ok(raw !== null);
    for (const text of ['MRN00482913', 'hba1c', '7.9', 'dr.ada', 'st-marys']) {
      assert.equal(raw.includes(text), false, `${text} in the stored value`);
      assert.equal(recording.transcript().includes(text), false, `${text} in a key or tag`);
    }
    assert.equal(await cache.purgeTag(clinician, 'patient', 'MRN00482913'), 1);
    assert.equal(await cache.get(ref, clinician), undefined);
  });
});
