import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { PhiSessionStore } from '../../src/session/session-store.js';
import { makeCache } from '../helpers/make-cache.js';

const MINUTE = 60_000;

describe('PhiSessionStore timeouts, purges and outages', () => {
  test('PHI-SESSION-02 idle timeout: the TTL of each save is the idle timeout, and touch starts it again', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({
      cache: t.cache,
      tenant: 'sessions',
      idleTimeoutMs: 15 * MINUTE,
      clock: () => t.clock.now,
    });
    await sessions.set('sid-idle', { subject: 'u-1' });
    const key = t.store.writes.at(-1)!.key;
    assert.equal(await t.memory.ttl(key), 15 * MINUTE);
    t.clock.now += 10 * MINUTE;
    assert.equal(await t.memory.ttl(key), 5 * MINUTE);
    await sessions.touch('sid-idle', { subject: 'u-1' });
    assert.equal(await t.memory.ttl(key), 15 * MINUTE, 'touch extended it');
    t.clock.now += 15 * MINUTE;
    assert.equal(await sessions.get('sid-idle'), undefined, 'an idle session ends');
    await t.cache.close();
  });

  test('PHI-SESSION-03 absolute timeout: touching cannot keep a session past it, and its issue time cannot be forged forward', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({
      cache: t.cache,
      tenant: 'sessions',
      idleTimeoutMs: 20 * MINUTE,
      absoluteTimeoutMs: 60 * MINUTE,
      clock: () => t.clock.now,
    });
    await sessions.set('sid-abs', { subject: 'u-2', issuedAt: t.clock.now + 1_000_000 });
    const issued = t.clock.now;
    assert.equal(
      (await sessions.get('sid-abs'))?.issuedAt,
      issued,
      'an issue time in the future is replaced by now',
    );
    for (let step = 0; step < 3; step += 1) {
      t.clock.now += 15 * MINUTE;
      await sessions.touch('sid-abs', { subject: 'u-2' });
    }
    const key = t.store.writes.at(-1)!.key;
    assert.equal(await t.memory.ttl(key), 15 * MINUTE, 'the last touch got only what is left of the hour');
    t.clock.now += 15 * MINUTE;
    assert.equal(await sessions.get('sid-abs'), undefined);
    await t.cache.close();
  });

  test('PHI-SESSION-02 the idle timeout cannot exceed the class cap: the cache refuses the write', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({ cache: t.cache, tenant: 'sessions', idleTimeoutMs: 60 * MINUTE });
    await assert.rejects(sessions.set('sid-cap', { subject: 'u-3' }), { code: 'ERR_POLICY_TTL_EXCEEDED' });
    await t.cache.close();
  });

  test('PHI-SESSION-01 fields outside the class allow list are refused; PHI-looking values are refused before the policy', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({ cache: t.cache, tenant: 'sessions' });
    await assert.rejects(sessions.set('sid-f', { subject: 'u-4', cart: 'x' }), {
      code: 'ERR_POLICY_FIELD_FORBIDDEN',
    });
    await assert.rejects(
      sessions.set('sid-f', { subject: '123-45-6789' }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_SESSION_DATA_PHI');
        assert.ok(!error.message.includes('123-45-6789'), 'the message names the path, not the value');
        assert.match(error.message, /\$\.subject \(ssn\)/);
        return true;
      },
    );
    await assert.rejects(sessions.set('sid-f', { subject: 'u-4', roles: ['born 1980-02-03'] }), {
      code: 'ERR_SESSION_DATA_PHI',
    });
    assert.equal(
      t.store.writes.filter((write) => write.key.startsWith('phc:e:')).length,
      0,
      'nothing was written',
    );
    await t.cache.close();
  });

  test('PHI-SESSION-04 destroy purges the session', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({ cache: t.cache, tenant: 'sessions', clock: () => t.clock.now });
    await sessions.set('sid-d', { subject: 'u-5' });
    const write = t.store.writes.findLast((w) => w.key.startsWith('phc:e:session-token:'))!;
    await sessions.destroy('sid-d');
    assert.equal(await t.memory.get(write.key), undefined);
    assert.equal(await sessions.get('sid-d'), undefined);
    await t.cache.close();
  });

  test('PHI-SESSION-05 a store outage: reads miss, saves fail, `disconnect` then `connect` once it answers again', async () => {
    const t = await makeCache();
    const sessions = new PhiSessionStore({ cache: t.cache, tenant: 'sessions', probeIntervalMs: 10 });
    await sessions.set('sid-o', { subject: 'u-6' });
    const disconnected = once(sessions, 'disconnect');
    t.faults.store.down = true;
    assert.equal(await sessions.get('sid-o'), undefined, 'the class fails as a miss');
    await disconnected;
    assert.equal(sessions.ready, false);
    await assert.rejects(sessions.set('sid-o', { subject: 'u-6' }), { code: 'ERR_STORE_UNAVAILABLE' });
    const connected = once(sessions, 'connect');
    // The probe's timer does not hold the process open (a server's own handles do): this test holds it.
    const holdOpen = setInterval(() => {}, 1_000);
    t.faults.store.down = false;
    await connected;
    clearInterval(holdOpen);
    assert.equal(sessions.ready, true);
    assert.equal((await sessions.get('sid-o'))?.subject, 'u-6', 'the session survived the outage');
    sessions.close();
    await t.cache.close();
  });
});
