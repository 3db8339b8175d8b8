import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const ref = (id: string) => ({ class: 'encrypted-phi', resource: 'Observation', id });
const admin = { principal: 'ops:rotation-test' };

describe('key rotation on the embedded store', () => {
  test('PHI-ROTATE-01 a rotation publishes, waits for the fleet bound, promotes; old entries still read, new ones seal under the new version', async () => {
    const t = await makeCache();
    const { cache, clock, audit } = t;
    await cache.set(ref('before'), { hr: 61 }, clinician);
    const oldKid = audit.events.find((e) => e.action === 'set')!.kid!;
    const waited: number[] = [];
    const { from, to } = await cache.rotation.rotate(admin, async (ms) => {
      waited.push(ms);
      clock.now += ms;
    });
    assert.equal(from, oldKid);
    assert.notEqual(to, oldKid);
    assert.deepEqual(
      waited,
      [cache.rotation.boundMs],
      'promotion waited for every instance to see the version',
    );
    assert.deepEqual(await cache.get(ref('before'), clinician), { hr: 61 }, 'dual-read: the old entry opens');
    await cache.set(ref('after'), { hr: 72 }, clinician);
    const sets = audit.events.filter((e) => e.action === 'set');
    assert.equal(sets.at(-1)!.kid, to, 'the new write is audited under the new KEK version');
    const changes = audit.events.filter((e) => e.action === 'key.publish' || e.action === 'key.promote');
    assert.deepEqual(
      changes.map((e) => [e.action, e.kid, e.stream, e.outcome.result]),
      [
        ['key.publish', to, 'admin', 'ok'],
        ['key.promote', to, 'admin', 'ok'],
      ],
    );
    await cache.close();
  });

  test('PHI-ROTATE-01 promotion before the bound is refused with the earliest safe time', async () => {
    const { cache, clock, audit } = await makeCache();
    const published = await cache.rotation.publish(admin);
    clock.now += cache.rotation.boundMs - 1;
    await assert.rejects(cache.rotation.promote(admin, published.kid), (error: unknown) => {
      assert.ok(error instanceof PhiCacheError);
      assert.equal(error.code, 'ERR_KEY_STATE');
      assert.match(error.message, new RegExp(new Date(published.promotableAt).toISOString()));
      return true;
    });
    assert.equal(audit.events.at(-1)!.outcome.result, 'denied');
    clock.now += 1;
    await cache.rotation.promote(admin, published.kid);
    assert.equal((await cache.rotation.states()).keks.find((k) => k.kid === published.kid)!.state, 'active');
    await cache.close();
  });

  test('PHI-ROTATE-01 after rewrap the old KEK version is needed by nothing: it retires, and every entry still reads', async () => {
    const { cache, clock } = await makeCache();
    for (const id of ['a', 'b', 'c']) await cache.set(ref(id), { id }, clinician);
    const { from, to } = await cache.rotation.rotate(admin, async (ms) => {
      clock.now += ms;
    });
    const rewrap = await cache.rotation.rewrap(admin);
    assert.equal(rewrap.kid, to);
    assert.ok(rewrap.rewrapped >= 1, 'the data key records under the old version were rewrapped');
    assert.equal(rewrap.failed, 0);
    const listing = await cache.rotation.list();
    assert.equal(listing.dekRecords[from] ?? 0, 0, 'no data key record is wrapped under the old version');
    clock.now += cache.rotation.boundMs;
    const retired = await cache.rotation.retire(admin, from);
    assert.equal(retired.forced, false);
    // The retired version unwraps nothing any more: every read below needs only the new one.
    for (const id of ['a', 'b', 'c']) assert.deepEqual(await cache.get(ref(id), clinician), { id });
    await cache.close();
  });

  test('PHI-ROTATE-01 retire is refused while a data key record needs the version, succeeds once they expire, and a forced retire is audited with the entries it made unreadable', async () => {
    const { cache, clock, audit } = await makeCache();
    await cache.set(ref('live'), { v: 1 }, clinician);
    const { from } = await cache.rotation.rotate(admin, async (ms) => {
      clock.now += ms;
    });
    await assert.rejects(cache.rotation.retire(admin, from), (error: unknown) => {
      assert.ok(error instanceof PhiCacheError);
      assert.equal(error.code, 'ERR_KEY_STATE');
      assert.match(error.message, /data key record\(s\) are still wrapped/);
      assert.match(error.message, /earliest safe time is \d{4}-\d\d-\d\dT/);
      return true;
    });
    const denied = audit.events.at(-1)!;
    assert.equal(denied.action, 'key.retire');
    assert.equal(denied.outcome.result, 'denied');

    const forced = await cache.rotation.retire({ ...admin, force: true }, from);
    assert.equal(forced.forced, true);
    assert.equal(forced.unreadableCount, 1, 'the one live entry under the old data key is named');
    const record = audit.events.at(-1)!;
    assert.equal(record.action, 'key.retire');
    assert.equal(record.kid, from);
    assert.equal(record.outcome.result, 'ok');
    assert.equal(record.detail?.forced, 1);
    assert.equal(record.detail?.entries, forced.unreadable[0]);
    assert.equal(
      await cache.get(ref('live'), clinician),
      undefined,
      'the entry is unreadable, as the record says',
    );
    const miss = audit.events.at(-1)!;
    assert.equal(miss.outcome.code, 'ERR_KEY_DISABLED');
    await cache.close();
  });

  test('PHI-ROTATE-01 an unforced retire succeeds after the dependent data key records expire', async () => {
    const { cache, clock } = await makeCache();
    await cache.set(ref('short'), { v: 1 }, clinician, { ttlMs: 60_000 });
    const { from } = await cache.rotation.rotate(admin, async (ms) => {
      clock.now += ms;
    });
    let earliest = 0;
    await assert.rejects(cache.rotation.retire(admin, from), (error: unknown) => {
      const match = /earliest safe time is (\S+)$/.exec((error as Error).message);
      earliest = Date.parse(match![1]!);
      return true;
    });
    assert.ok(earliest > clock.now);
    clock.now = earliest + 1;
    const retired = await cache.rotation.retire(admin, from);
    assert.equal(retired.forced, false);
    assert.equal(retired.dekRecords, 0);
    await cache.close();
  });

  test('PHI-ROTATE-01 reads re-encrypt entries under the current data key, and the sweep moves the rest and says how', async () => {
    const { cache, clock } = await makeCache();
    for (let i = 0; i < 20; i += 1) await cache.set(ref(`e${i}`), { i }, clinician);
    await cache.rotation.rekey(admin);
    const rekeyed = await cache.rotation.list();
    assert.deepEqual(rekeyed.dataKeys, { active: 0, 'decrypt-only': 1 }, 'the data key seals nothing more');
    // The read answers first; the re-encryption follows in the background and says so (10 s: a hang, not a margin).
    const reencrypted = once(cache, 'reencrypted', { signal: AbortSignal.timeout(10_000) });
    assert.deepEqual(await cache.get(ref('e0'), clinician), { i: 0 });
    const [event] = (await reencrypted) as [{ className: string }];
    assert.equal(event.className, 'encrypted-phi', 'the entry read was re-encrypted in the background');
    assert.deepEqual((await cache.rotation.list()).dataKeys, { active: 1, 'decrypt-only': 1 });
    const report = await cache.rotation.reencrypt(admin);
    const phi = report.partitions.find((p) => p.className === 'encrypted-phi')!;
    assert.equal(phi.method, 'sweep');
    assert.equal(phi.scanned, 20);
    assert.equal(phi.reencrypted, 19);
    assert.equal(phi.current, 1);
    const again = await cache.rotation.reencrypt(admin);
    assert.equal(again.partitions.find((p) => p.className === 'encrypted-phi')!.current, 20);
    const viaExpiry = await cache.rotation.reencrypt({ ...admin, expiryUnderMs: 3_600_000 });
    const relied = viaExpiry.partitions.find((p) => p.className === 'encrypted-phi')!;
    assert.equal(relied.method, 'expiry');
    assert.ok(relied.allExpireBy! > 0);
    for (let i = 0; i < 20; i += 1) assert.deepEqual(await cache.get(ref(`e${i}`), clinician), { i });
    void clock;
    await cache.close();
  });
});
