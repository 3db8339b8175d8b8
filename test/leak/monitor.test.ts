import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';
import { type PrivateRedis, respCall, startRedis } from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS, type BindingName } from '../store/redis/bindings.js';
import { keysOf, type MonitoredCommand, MonitorTranscript, monitoredCommands } from './monitor.js';

/** An HMAC name (`phc:<kind>:[<class>:]<43 base64url chars>`), with `:<n>` on a tag index shard. */
const HMAC_NAME = /^phc:[ekmpstv]:(?:[a-z][a-z0-9-]*:)?[A-Za-z0-9_-]{43}(?::\d+)?$/;

/**
 * The whole corpus through one PhiCache on Redis: writes with patient tags, reads, read-through, refusals of every
 * kind carrying patient data, purges by tag, by user scope and of the tenant. Clinicians are named like patients
 * and ids are MRNs and SSNs, so every position a caller fills holds a needle.
 */
async function runCorpus(binding: BindingName, url: string, outside: string[]): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'phicache-leak-'));
  const audit = new MemoryAuditSink();
  const cache = await PhiCache.create({
    service: 'leak-scan',
    policy: await loadDefaultPolicy(),
    keys: await LocalKeyring.open({ home, env: {} }),
    audit,
    store: new RedisStore(await BINDINGS[binding]({ url })),
  });
  const remember = (error: unknown) => {
    const e = error as Error & { hint?: string; rule?: string };
    outside.push(`${e.name} ${e.message} ${e.hint ?? ''} ${e.rule ?? ''} ${String(e.cause ?? '')}`);
  };
  cache.on('store-error', (event) => outside.push(JSON.stringify({ ...event, cause: String(event.cause) })));
  cache.on('tamper', (event) => outside.push(JSON.stringify(event)));
  const tenant = `st-marys-${binding}`;
  try {
    for (const [i, p] of fakePatients.entries()) {
      const ctx = { tenant, user: p.name, principal: `clinician-${i}`, purpose: 'treatment' };
      const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: p.mrn };
      const value = {
        name: p.name,
        ssn: p.ssn,
        dob: p.dateOfBirth,
        phone: p.phone,
        address: p.address,
        note: p.note,
      };
      const receipt = await cache.set(ref, value, ctx, {
        tags: { patient: p.mrn, encounter: `${p.mrn}-${p.dateOfBirth}` },
      });
      assert.equal(receipt.stored, true, 'the corpus reaches Redis');
      assert.deepEqual(await cache.get(ref, ctx), value);
      assert.equal(await cache.get({ ...ref, id: p.ssn }, ctx), undefined);
      await cache.getOrSet({ ...ref, resource: 'chart-header', id: p.mrn }, ctx, () => ({ name: p.name }));
      const refusals = [
        cache.set({ ...ref, class: 'full-patient-record' }, value, ctx),
        cache.set(ref, value, ctx, { ttlMs: 999_999 }),
        cache.set(ref, value, { tenant, user: p.name }),
        cache.set(ref, value, ctx, { tags: { [p.name]: p.ssn } }),
        cache.set(
          { class: 'session-token', resource: 's', id: p.mrn },
          { sid: p.mrn, [p.name]: p.note },
          { tenant, session: p.ssn },
        ),
        cache.set({ ...ref, class: p.name }, value, ctx),
      ];
      for (const refusal of refusals) await refusal.then(() => assert.fail('should refuse'), remember);
      if (i % 4 === 0) await cache.purgeTag({ tenant, principal: 'lab' }, 'patient', p.mrn);
      if (i % 4 === 1) await cache.purgeScope({ tenant, principal: 'portal' }, { user: p.name });
      if (i % 4 === 2) await cache.delete(ref, ctx);
    }
    assert.ok((await cache.purgeTenant({ tenant, principal: 'offboarding' })) > 0, 'the tenant purge ran');
    outside.push(...audit.events.map((event) => JSON.stringify(event)));
  } finally {
    await cache.close();
    await rm(home, { recursive: true, force: true });
  }
}

describe('PHI-LEAK-01 on Redis: a MONITOR connection records every command while the corpus runs', () => {
  let redis: PrivateRedis;
  let monitor: MonitorTranscript;
  let transcript = '';
  const outside: string[] = [];

  before(async () => {
    // A private server: MONITOR is refused to the ACL user, and it must not watch other tests' traffic.
    redis = await startRedis('plain');
    monitor = await MonitorTranscript.open(redis.nodes[0]!.port);
    for (const binding of BINDING_NAMES) await runCorpus(binding, redis.url, outside);
    await monitor.flush();
    transcript = monitor.text();
  });
  after(async () => {
    monitor?.close();
    await redis?.stop();
  });

  test('the transcript holds the corpus traffic (so the scan below could fail)', () => {
    const commands = monitoredCommands(transcript);
    const named = (name: string) => commands.filter((c) => c.args[0] === name);
    const entryWrites = named('SET').filter((c) => c.args[1]?.startsWith('phc:e:'));
    assert.ok(entryWrites.length >= fakePatients.length * 2 * BINDING_NAMES.length, 'entry writes');
    for (const name of ['GET', 'DEL', 'EVALSHA', 'ZRANGE', 'ZREM', 'ZADD', 'GETRANGE']) {
      assert.ok(named(name).length > 0, `${name} was recorded`);
    }
    assert.ok(
      commands.some((c) => c.source === '0 lua'),
      'commands run by scripts were recorded too',
    );
  });

  test('no name, SSN, MRN, birth date, phone, address or note appears in any key, value or message', () => {
    assert.deepEqual(findLeaks(transcript), [], 'the MONITOR transcript');
    assert.deepEqual(findLeaks(outside.join('\n')), [], 'audit events, errors and events');
  });

  test('every key phicache touched is an HMAC name: nothing a caller passed in, no braces for hash slots', () => {
    const keyed = monitoredCommands(transcript).filter((c: MonitoredCommand) => keysOf(c).length > 0);
    assert.ok(keyed.length > 1000);
    const bad = keyed.flatMap(keysOf).filter((key) => !HMAC_NAME.test(key));
    assert.deepEqual(bad, []);
  });

  test('the scan finds plaintext planted in a raw SET (the check can fail)', async () => {
    const needle = fakePatients[7]!;
    await respCall({ port: redis.nodes[0]!.port }, 'SET', 'phc:planted', `${needle.name} ${needle.ssn}`);
    await monitor.flush();
    const leaks = findLeaks(monitor.text());
    assert.ok(leaks.includes(needle.ssn) && leaks.includes(needle.name), `found ${JSON.stringify(leaks)}`);
  });
});
