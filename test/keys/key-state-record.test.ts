import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import { makeFleet } from '../helpers/fleet.js';

const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const ref: EntryRef = { class: 'encrypted-phi', resource: 'lab-summary', id: 'obs-1' };
const admin = { principal: 'ops:key-rotation' };
const REFRESH_MS = 1000;

async function statesKey(store: { scan?(prefix: string): AsyncIterable<string> }): Promise<string> {
  for await (const key of store.scan!('phc:v:')) return key;
  throw new Error('no key states record');
}

describe('PHI-ROTATE-01 the fleet key states record', () => {
  test('a record altered in the store (to promote or retire a key) is refused and reported; the instances keep what they knew', async () => {
    const fleet = await makeFleet(2, { keyStateRefreshMs: REFRESH_MS });
    const [a, b] = fleet.instances as [PhiCache, PhiCache];
    try {
      const published = await a.rotation.publish(admin);
      assert.equal((await b.rotation.states()).keks.find((k) => k.kid === published.kid)!.state, 'pending');
      const key = await statesKey(fleet.store);
      const raw = (await fleet.store.get(key))!;
      const record = JSON.parse(raw.toString()) as { body: string; mac: string };
      // Someone with write access to Redis marks the pending version active without waiting for the fleet.
      const forged = record.body
        .replace(/"seq":(\d+)/, (_, seq: string) => `"seq":${Number(seq) + 1}`)
        .replace('"state":"pending"', '"state":"active"')
        .replace(/"state":"active","publishedAt":0/, '"state":"decrypt-only","publishedAt":0');
      assert.notEqual(forged, record.body);
      await fleet.store.set(key, Buffer.from(JSON.stringify({ ...record, body: forged })), { ttlMs: 60_000 });
      const damaged: unknown[] = [];
      b.on('key-states-damaged', ({ cause }) => damaged.push(cause));
      const states = await b.rotation.states();
      assert.equal(states.keks.find((k) => k.kid === published.kid)!.state, 'pending');
      assert.equal(damaged.length, 1);
      assert.match(String(damaged[0]), /MAC/);
      // A promotion through the real path still works: it replaces the altered record.
      fleet.clock.now += a.rotation.boundMs;
      await a.rotation.promote(admin, published.kid);
      assert.equal((await b.rotation.states()).keks.find((k) => k.kid === published.kid)!.state, 'active');
    } finally {
      await fleet.close();
    }
  });

  test('an older record written back (a restored snapshot, a replay) does not take an instance back', async () => {
    const fleet = await makeFleet(2, { keyStateRefreshMs: REFRESH_MS });
    const [a, b] = fleet.instances as [PhiCache, PhiCache];
    try {
      await a.rotation.publish(admin);
      const key = await statesKey(fleet.store);
      const old = (await fleet.store.get(key))!;
      fleet.clock.now += a.rotation.boundMs;
      const promoted = await a.rotation.promote(admin);
      assert.equal((await b.rotation.states()).seq, promoted.seq);
      await fleet.store.set(key, old, { ttlMs: 60_000 });
      const seen = await b.rotation.states();
      assert.equal(seen.seq, promoted.seq, 'the replayed record is older than what B knows');
      await b.set(ref, { hba1c: 7.1 }, ada);
      const set = fleet.audits[1]!.events.filter((e) => e.action === 'set').at(-1)!;
      assert.equal(set.kid, promoted.keks.find((k) => k.state === 'active')!.kid);
    } finally {
      await fleet.close();
    }
  });

  test('a deleted record is put back by an instance that knows the states, so that a new instance starts from them', async () => {
    const fleet = await makeFleet(1, { keyStateRefreshMs: REFRESH_MS });
    const [a] = fleet.instances as [PhiCache];
    try {
      const rotated = await a.rotation.rotate(admin, async (ms) => {
        fleet.clock.now += ms;
      });
      const key = await statesKey(fleet.store);
      await fleet.store.delete(key);
      assert.equal(await fleet.store.get(key), undefined);
      await a.rotation.states();
      const back = await fleet.store.get(key);
      assert.ok(back, 'the record is back');
      const body = JSON.parse(JSON.parse(back.toString()).body) as {
        seq: number;
        keks: { kid: string; state: string }[];
      };
      assert.equal(body.seq, rotated.states.seq);
      assert.equal(body.keks.find((k) => k.state === 'active')!.kid, rotated.to);
    } finally {
      await fleet.close();
    }
  });
});
