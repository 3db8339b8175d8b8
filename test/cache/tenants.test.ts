import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEnvelope } from '../../src/crypto/envelope.js';
import { NameKeyring } from '../../src/keys/tenant-names.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
const otherTenant = { ...clinician, tenant: 'county-general' };

describe('PHI-TENANT-01 tenants cannot meet', () => {
  test('the same reference in two tenants has different store keys, reference hashes and data keys', async () => {
    const t = await makeCache();
    await t.cache.set(ref, { owner: 'st-marys' }, clinician);
    await t.cache.set(ref, { owner: 'county-general' }, otherTenant);
    const entries = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    assert.notEqual(entries[0]!.key, entries[1]!.key);
    assert.notEqual(t.cache.referenceHash(ref, 'st-marys'), t.cache.referenceHash(ref, 'county-general'));
    const deks = t.audit.events.filter((e) => e.action === 'key.create').map((e) => e.dek);
    assert.equal(new Set(deks).size, 2);
    assert.deepEqual(await t.cache.get(ref, clinician), { owner: 'st-marys' });
    assert.deepEqual(await t.cache.get(ref, otherTenant), { owner: 'county-general' });
    await t.cache.close();
  });

  test("another tenant's ciphertext planted under this tenant's key is never served", async () => {
    const t = await makeCache();
    await t.cache.set(ref, { owner: 'st-marys' }, clinician);
    await t.cache.set(ref, { owner: 'county-general' }, otherTenant);
    const [mine, theirs] = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    await t.memory.set(mine!.key, theirs!.value, { ttlMs: 60_000 });
    assert.equal(await t.cache.get(ref, clinician), undefined);
    // Even with the other tenant's data key record planted under this tenant's name for it, the key does not
    // unwrap: the tenant is bound into the wrap, as it is into the envelope's AAD.
    const theirId = parseEnvelope(theirs!.value).header.dekId.toString('hex');
    const nameSecret = await t.keyring.nameSecret();
    const theirRecordName = new NameKeyring(Buffer.from(nameSecret))
      .forTenant('county-general')
      .dekRecord(ref.class, theirId);
    const theirRecord = t.store.writes.find((w) => w.key === theirRecordName);
    assert.ok(theirRecord, 'the other tenant wrote its data key record');
    const plantedName = new NameKeyring(nameSecret).forTenant('st-marys').dekRecord(ref.class, theirId);
    await t.memory.set(plantedName, theirRecord.value, { ttlMs: 60_000 });
    await t.memory.set(mine!.key, theirs!.value, { ttlMs: 60_000 });
    const tampers: { code: string }[] = [];
    t.cache.on('tamper', (event) => tampers.push(event));
    assert.equal(await t.cache.get(ref, clinician), undefined);
    assert.deepEqual(
      tampers.map((e) => e.code),
      ['ERR_ENVELOPE_AUTH'],
    );
    assert.deepEqual(await t.cache.get(ref, otherTenant), { owner: 'county-general' });
    await t.cache.close();
  });

  test('purging a tenant crypto-shreds it: its data keys are destroyed, a surviving copy is unreadable, others are untouched', async () => {
    const t = await makeCache();
    await t.cache.set(ref, { owner: 'st-marys' }, clinician);
    await t.cache.set(ref, { owner: 'county-general' }, otherTenant);
    const mine = t.store.writes.find((w) => w.key.startsWith('phc:e:'))!;
    const purged = await t.cache.purgeTenant({
      tenant: 'st-marys',
      principal: 'privacy-officer',
      purpose: 'offboarding',
    });
    assert.equal(purged, 1);
    // A copy of the ciphertext survived somewhere (a snapshot, a replica): put it back.
    await t.memory.set(mine.key, mine.value, { ttlMs: 60_000 });
    assert.equal(await t.cache.get(ref, clinician), undefined);
    assert.equal(t.audit.events.at(-1)?.outcome.code, 'ERR_KEY_NOT_FOUND');
    assert.deepEqual(await t.cache.get(ref, otherTenant), { owner: 'county-general' });
    const admin = t.audit.events.find((e) => e.action === 'purge.tenant');
    assert.equal(admin?.stream, 'admin');
    assert.deepEqual(admin?.outcome, { result: 'ok', count: 1 });
    // New writes for the tenant work again, under a new data key.
    await t.cache.set(ref, { owner: 'st-marys', again: true }, clinician);
    assert.deepEqual(await t.cache.get(ref, clinician), { owner: 'st-marys', again: true });
    await t.cache.close();
  });
});
