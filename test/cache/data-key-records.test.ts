import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import { makeFleet } from '../helpers/fleet.js';

const ref = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'lab-summary', id });
const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
/** Past the DEK cache's default age bound: the next use unwraps the key record again. */
const DEK_MAX_AGE_MS = 15 * 60_000;
/** The start of an hour-long data-key epoch, so that the steps below stay within one epoch. */
const EPOCH_START = 3_600_000 * 480_000;

function keys(store: unknown, prefix: string): string[] {
  const writes = (store as { writes: { key: string }[] }).writes;
  return [...new Set(writes.map((w) => w.key).filter((key) => key.startsWith(prefix)))];
}

describe('data-key records', () => {
  test('a damaged data-key record is tamper: audited, and the tenant writes on under a new key', async () => {
    const fleet = await makeFleet(1, { start: EPOCH_START });
    const [cache] = fleet.instances as [PhiCache];
    await cache.set(ref('MRN1'), { hba1c: 7.9 }, ada);
    const [recordKey] = keys(fleet.store, 'phc:k:') as [string];
    const record = JSON.parse((await fleet.store.get(recordKey))!.toString()) as { wrapped: string };
    const wrapped = Buffer.from(record.wrapped, 'base64');
    wrapped[wrapped.length - 1]! ^= 0x01; // one flipped bit in the wrapped key
    const ttlMs = (await fleet.store.ttl(recordKey))!;
    await fleet.store.set(
      recordKey,
      Buffer.from(JSON.stringify({ ...record, wrapped: wrapped.toString('base64') })),
      {
        ttlMs,
      },
    );

    fleet.clock.now += DEK_MAX_AGE_MS; // the unwrapped copy aged out: the next write needs the record
    const receipt = await cache.set(ref('MRN2'), { hba1c: 8.1 }, ada);
    assert.equal(receipt.stored, true, 'writes go on');
    assert.deepEqual(await cache.get(ref('MRN2'), ada), { hba1c: 8.1 });
    const events = fleet.audits[0]!.events;
    const damaged = events.filter((e) => e.action === 'key.damaged');
    assert.equal(damaged.length, 1, 'the damage is on the admin stream');
    assert.equal(damaged[0]!.stream, 'admin');
    const created = events.filter((e) => e.action === 'key.create');
    assert.equal(created.length, 2, 'a new key replaced it');
    assert.equal(damaged[0]!.dek, created[0]!.dek, 'the record named is the damaged one');
    await fleet.close();
  });

  test('a data-key record that is gone makes its entries clean, audited misses', async () => {
    const fleet = await makeFleet(1, { start: EPOCH_START });
    const [cache] = fleet.instances as [PhiCache];
    await cache.set(ref('MRN1'), { hba1c: 7.9 }, ada);
    for (const key of keys(fleet.store, 'phc:k:')) await fleet.store.delete(key);
    fleet.clock.now += DEK_MAX_AGE_MS - 1000;
    await cache.set(ref('MRN1'), { hba1c: 7.9 }, ada, { ttlMs: 300_000 });
    fleet.clock.now += 2000;
    assert.equal(await cache.get(ref('MRN1'), ada), undefined);
    const last = fleet.audits[0]!.events.filter((e) => e.action === 'get').at(-1)!;
    assert.deepEqual(last.outcome, { result: 'miss', code: 'ERR_KEY_NOT_FOUND' });
    await fleet.close();
  });
});
