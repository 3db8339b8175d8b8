import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { type RedisTopology, sharedRedis } from '../harness/redis.js';
import { clinician } from '../helpers/make-cache.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { channel, type Instance, instances, quiet, within } from './helpers.js';

const PHI = {
  mrn: 'MRN00482913',
  texts: ['MRN00482913', 'hba1c', '7.9', '8.4', 'lab-summary', 'dr.ada', 'st-marys', 'treatment', 'patient'],
};

/**
 * A plain node-redis subscriber, apart from phicache's bindings: what anyone allowed on the channel would read.
 * On a Cluster it listens on whichever node node-redis picks, so it also sees notices cross the cluster bus.
 */
async function watch(
  topology: RedisTopology,
  name: string,
  messages: Buffer[],
): Promise<() => Promise<void>> {
  const { createClient, createCluster } = await import('redis');
  const endpoint = await sharedRedis(topology);
  const listener = (message: Buffer) => messages.push(message);
  if (endpoint.cluster !== undefined) {
    const cluster = createCluster({ rootNodes: endpoint.cluster.seeds.map((socket) => ({ socket })) });
    await cluster.connect();
    await cluster.subscribe(name, listener, true);
    return async () => cluster.destroy();
  }
  const client = createClient({ url: endpoint.url });
  await client.connect();
  await client.subscribe(name, listener, true);
  return async () => client.destroy();
}

/** Two PhiCache "instances" sharing one keyring (so one name secret and one KEK) over two TieredStores. */
async function twoInstances(a: Instance, b: Instance) {
  const home = await mkdtemp(join(tmpdir(), 'phicache-tiers-'));
  const keys = await LocalKeyring.open({ home, env: {} });
  const policy = await loadDefaultPolicy();
  const first = await PhiCache.create({
    service: 'a',
    policy,
    keys,
    audit: new MemoryAuditSink(),
    store: a.store,
  });
  const second = await PhiCache.create({
    service: 'b',
    policy,
    keys,
    audit: new MemoryAuditSink(),
    store: b.store,
  });
  return { first, second };
}

for (const topology of ['plain', 'cluster'] as const) {
  for (const binding of BINDING_NAMES) {
    describe(`tiers: PhiCache over two TieredStores on redis ${topology} ${binding}`, () => {
      test('PHI-LEAK-01 a purgeTag on instance A is seen by instance B, and the channel carries only hashed names', async (t) => {
        const shared = channel();
        const messages: Buffer[] = [];
        const stopWatching = await watch(topology, shared, messages);
        // L1 copies and checks last a minute: only a notice explains B's copy going within a second.
        const options = { channel: shared, l1MaxTtlMs: 60_000, generationCheckMs: 60_000 };
        const [a, b] = (await instances(topology, binding, options, options)) as [Instance, Instance];
        const { first, second } = await twoInstances(a, b);
        try {
          const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: PHI.mrn };
          await first.set(ref, { hba1c: 7.9 }, clinician, { tags: { patient: PHI.mrn } });
          await quiet(b.store);
          assert.deepEqual(await second.get(ref, clinician), { hba1c: 7.9 });
          const hits = b.store.stats().l1Hits;
          assert.deepEqual(await second.get(ref, clinician), { hba1c: 7.9 });
          assert.ok(b.store.stats().l1Hits > hits, 'B serves the entry from its L1');

          await first.set(ref, { hba1c: 8.4 }, clinician, { tags: { patient: PHI.mrn } });
          await within(1_000, 'B reads the corrected value', async () => {
            const got = await second.get<{ hba1c: number }>(ref, clinician);
            return got?.hba1c === 8.4;
          });

          assert.equal(await first.purgeTag(clinician, 'patient', PHI.mrn), 1);
          const ms = await within(1_000, 'B misses after the purge', async () => {
            const got = await second.get(ref, clinician);
            assert.notDeepEqual(got, { hba1c: 7.9 });
            return got === undefined;
          });
          t.diagnostic(`B saw A's purgeTag ${ms.toFixed(1)} ms after it resolved`);

          // Notices of different names may arrive out of order (on a Cluster they travel separately): wait for the tag's.
          const isTag = (m: Buffer) => (JSON.parse(m.toString()) as { kind?: string }).kind === 'tag';
          await within(
            2_000,
            'the watcher has the messages',
            async () => messages.length >= 3 && messages.some(isTag),
          );
          for (const message of messages) {
            const text = message.toString('utf8');
            for (const phi of PHI.texts) assert.equal(text.includes(phi), false, `${phi} in ${text}`);
            const notice = JSON.parse(text) as Record<string, unknown>;
            assert.deepEqual(Object.keys(notice).sort(), ['from', 'gen', 'kind', 'name', 'shard', 'v']);
            assert.ok([a.store.instanceId, b.store.instanceId].includes(notice.from as string));
            assert.match(
              notice.name as string,
              /^phc:(?:[ekp]:[a-z][a-z0-9-]*:|[tsm]:)[A-Za-z0-9_-]{43}$/,
              'an HMAC store name',
            );
          }
          assert.ok(messages.some(isTag), 'the purge was announced by tag');
        } finally {
          await stopWatching();
          await first.close();
          await second.close();
        }
      });
    });
  }
}
