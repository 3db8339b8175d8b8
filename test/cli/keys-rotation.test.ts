import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AccessContext, type EntryRef, PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type PrivateRedis, startRedis } from '../harness/redis.js';
import { FlakyAuditSink } from '../helpers/chaos.js';
import { connectionOptions } from '../store/redis/bindings.js';
import { type CliRun, runCli } from './run-cli.js';

/**
 * `phicache keys list | rotate | rewrap | reencrypt | retire` as an operator runs them: the binary, against a real
 * redis-server that a service-like PhiCache shares, both on one development keyring (one PHICACHE_HOME). The
 * service keeps its own audit sink, so what it seals under is visible.
 */

const TENANTS = ['st-marys', 'north-clinic', 'harbour'];
const phi = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'Observation', id });
const counter = (id: string): EntryRef => ({ class: 'rate-limit-counter', resource: 'login', id });
const user = (tenant: string): AccessContext => ({
  tenant,
  user: 'dr.ada',
  principal: 'dr.ada',
  purpose: 'treatment',
});

let redis: PrivateRedis;
let home: string;
let service: PhiCache;
let audit: FlakyAuditSink;
/** A copy of the keyring taken before the rotation: the same name secret, but no KEK version 2. */
let staleHome: string;

async function openService(events: FlakyAuditSink): Promise<PhiCache> {
  return PhiCache.create({
    service: 'clinic-api',
    policy: await loadDefaultPolicy(),
    keys: await LocalKeyring.open({ home, env: {} }),
    store: new RedisStore(await nodeRedisCommands(connectionOptions(redis))),
    audit: events,
  });
}

/** The CLI with the service's keyring and the shared store. */
function keys(args: readonly string[]): Promise<CliRun> {
  return runCli(['keys', ...args, '--redis', redis.url], { PHICACHE_HOME: home });
}

async function keysJson<T>(args: readonly string[]): Promise<T> {
  const run = await keys([...args, '--json']);
  assert.equal(run.exitCode, 0, `keys ${args.join(' ')}: ${run.stderr}${run.stdout}`);
  return JSON.parse(run.stdout) as T;
}

interface ListedKek {
  kid: string;
  state: string;
  dekRecords: number;
  decryptOnlyAt: string | null;
}
interface Listing {
  generation: number;
  keks: ListedKek[];
  settledAt: string | null;
  service: { current: string } | null;
}

const kek = (listing: Listing, kid: string) => listing.keks.find((k) => k.kid === kid);

before(async () => {
  redis = await startRedis('plain');
  home = await mkdtemp(join(tmpdir(), 'phicache-keys-cli-'));
  audit = new FlakyAuditSink({ down: false });
  service = await openService(audit);
  for (const tenant of TENANTS) {
    for (const id of ['a', 'b']) await service.set(phi(id), { tenant, id }, user(tenant));
    await service.set(counter('c'), { count: 3 }, user(tenant));
    await service.set(counter('idle'), { count: 1 }, user(tenant)); // nobody reads it: only the sweep moves it
  }
  staleHome = await mkdtemp(join(tmpdir(), 'phicache-keys-cli-stale-'));
  await cp(join(home, 'keyring'), join(staleHome, 'keyring'), { recursive: true });
});

after(async () => {
  await service?.close();
  await redis?.stop();
  for (const dir of [home, staleHome]) if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('phicache keys: usage', () => {
  test('a rotation command without --redis or --sentinel could not run (exit 2) and says why', async () => {
    for (const command of ['list', 'rotate', 'rewrap', 'reencrypt']) {
      const run = await runCli(['keys', command], { PHICACHE_HOME: home });
      assert.equal(run.exitCode, 2, command);
      assert.match(run.stderr, /ERR_CLI_USAGE/);
      assert.match(run.stderr, /hint: Give --redis/);
    }
    const json = await runCli(['keys', 'retire', 'local:cache:v1', '--json'], { PHICACHE_HOME: home });
    assert.equal(json.exitCode, 2);
    assert.equal(JSON.parse(json.stdout).error.code, 'ERR_CLI_USAGE');
  });

  test('retire without a kid, two modes of rotate, --kid without --promote and a bad --rate are usage errors', async () => {
    for (const args of [
      ['retire'],
      ['rotate', '--rekey', '--promote'],
      ['rotate', '--kid', 'local:cache:v1'],
      ['reencrypt', '--rate', '0'],
    ]) {
      const run = await keys(args);
      assert.equal(run.exitCode, 2, args.join(' '));
      assert.match(run.stderr, /ERR_CLI_USAGE/, args.join(' '));
    }
  });
});

describe('phicache keys: a rotation on a shared Redis', () => {
  let v1: string;
  let v2: string;

  test('list shows the first version active, with the data key records the service made', async () => {
    const listing = await keysJson<Listing>(['list']);
    assert.equal(listing.keks.length, 1);
    v1 = listing.keks[0]!.kid;
    assert.equal(listing.keks[0]!.state, 'active');
    // One data key per (tenant, class) so far: 3 tenants × 2 classes.
    assert.equal(listing.keks[0]!.dekRecords, TENANTS.length * 2);
    assert.equal(listing.service?.current, v1);
    const text = await keys(['list']);
    assert.equal(text.exitCode, 0);
    assert.match(text.stdout, new RegExp(`${v1}\\s+active`));
  });

  test('rotate publishes, waits for the bound, promotes; the service reads old entries and seals new ones under the new version', async () => {
    const rotated = await keysJson<{ from: string; to: string; steps: { step: string; at: string }[] }>([
      'rotate',
    ]);
    assert.equal(rotated.from, v1);
    v2 = rotated.to;
    assert.notEqual(v2, v1);
    assert.deepEqual(
      rotated.steps.map((s) => s.step),
      ['publish', 'wait', 'promote'],
    );
    const [published, , promoted] = rotated.steps.map((s) => Date.parse(s.at));
    assert.ok(promoted! > published!, 'promoted after it was published');

    const listing = await keysJson<Listing>(['list']);
    assert.equal(kek(listing, v2)?.state, 'active');
    assert.equal(kek(listing, v1)?.state, 'decrypt-only');

    await service.rotation.states(); // the service's next refresh, now rather than within its interval
    for (const tenant of TENANTS) {
      assert.deepEqual(await service.get(phi('a'), user(tenant)), { tenant, id: 'a' }, 'dual-read');
    }
    await service.set(phi('new'), { fresh: true }, user('st-marys'));
    const sets = audit.events.filter((e) => e.action === 'set');
    assert.equal(sets.at(-1)!.kid, v2, 'a new write is sealed under the new KEK version');
    assert.equal(sets[0]!.kid, v1);
  });

  test('retire of the old version before rewrap is refused (exit 2) with the reason and the earliest safe time', async () => {
    const run = await keys(['retire', v1]);
    assert.equal(run.exitCode, 2);
    assert.match(run.stderr, /ERR_KEY_STATE/);
    assert.match(run.stderr, /data key record\(s\) are still wrapped under/);
    assert.match(run.stderr, /earliest safe time is \d{4}-\d\d-\d\dT/);
    const listing = await keysJson<Listing>(['list']);
    assert.equal(kek(listing, v1)?.state, 'decrypt-only', 'nothing changed');
  });

  test('rewrap from a keyring that lacks the new version rewraps nothing: exit 1, with the records still under the old one', async () => {
    const run = await runCli(['keys', 'rewrap', '--redis', redis.url, '--json'], {
      PHICACHE_HOME: staleHome,
    });
    assert.equal(run.exitCode, 1, run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      kid: string;
      error: { code: string; message: string };
      remaining: Record<string, number>;
    };
    assert.equal(report.ok, false);
    assert.equal(report.kid, v2);
    assert.equal(report.error.code, 'ERR_KEY_STATE');
    assert.match(report.error.message, /data key records did not rewrap/);
    assert.equal(report.remaining[v1], TENANTS.length * 2);
    const text = await runCli(['keys', 'rewrap', '--redis', redis.url], { PHICACHE_HOME: staleHome });
    assert.equal(text.exitCode, 1);
    assert.match(text.stdout, new RegExp(`${TENANTS.length * 2} data key record\\(s\\) still under ${v1}`));
  });

  test('rewrap moves every data key record under the new version; list shows none left under the old one', async () => {
    const before = await keysJson<Listing>(['list']);
    const under = kek(before, v1)!.dekRecords;
    assert.ok(under > 0);
    const report = await keysJson<{ ok: boolean; kid: string; rewrapped: number; failed: number }>([
      'rewrap',
    ]);
    assert.equal(report.ok, true);
    assert.equal(report.kid, v2);
    assert.equal(report.rewrapped, under);
    assert.equal(report.failed, 0);
    const listing = await keysJson<Listing>(['list']);
    assert.equal(kek(listing, v1)?.dekRecords, 0);
    const again = await keys(['rewrap']);
    assert.equal(again.exitCode, 0);
    assert.match(again.stdout, / 0 rewrapped, \d+ already current/);
  });

  test('after the bound, retire succeeds; a new instance (no data key in memory) still reads every entry', async () => {
    const listing = await keysJson<Listing>(['list']);
    const safe = Date.parse(listing.settledAt!);
    // A lower bound, not a race: waiting longer only makes the retire surer.
    await sleep(Math.max(0, safe - Date.now()) + 50);
    const retired = await keysJson<{ kid: string; forced: boolean }>(['retire', v1]);
    assert.deepEqual([retired.kid, retired.forced], [v1, false]);
    assert.equal(kek(await keysJson<Listing>(['list']), v1)?.state, 'retired');

    const fresh = await openService(new FlakyAuditSink({ down: false }));
    try {
      for (const tenant of TENANTS) {
        assert.deepEqual(await fresh.get(phi('b'), user(tenant)), { tenant, id: 'b' });
        assert.deepEqual(await fresh.get(counter('c'), user(tenant)), { count: 3 });
      }
    } finally {
      await fresh.close();
    }
  });

  test('reencrypt sweeps class by class, relies on expiry for short caps, and with --state resumes: a second run skips every class', async () => {
    const state = join(home, 'reencrypt-state.json');
    const policy = await loadDefaultPolicy();
    const classes = [...policy.classes.values()].map((c) => c.name).sort();
    type Run = {
      resumed: boolean;
      partitions: {
        className: string;
        method: string;
        reencrypted: number;
        current: number;
        allExpireBy?: string;
      }[];
    };
    const first = await keysJson<Run>(['reencrypt', '--state', state, '--expiry-under', '300']);
    assert.equal(first.resumed, false);
    const byClass = new Map(first.partitions.map((p) => [p.className, p]));
    assert.deepEqual([...byClass.keys()].sort(), classes);
    assert.equal(byClass.get('encrypted-phi')?.method, 'expiry', 'a 300 s cap relies on expiry');
    assert.ok(Date.parse(byClass.get('encrypted-phi')!.allExpireBy!) > 0);
    const counters = byClass.get('rate-limit-counter')!;
    assert.equal(counters.method, 'sweep');
    // Reads re-encrypt lazily, so the counters read above may have moved already; the idle ones only move now.
    assert.ok(counters.reencrypted >= TENANTS.length, 'the counters nobody read were moved');
    assert.equal(counters.reencrypted + counters.current, 2 * TENANTS.length);

    const saved = JSON.parse(await readFile(state, 'utf8')) as { partitions: { className: string }[] };
    assert.deepEqual(saved.partitions.map((p) => p.className).sort(), classes);

    const second = await keysJson<Run>(['reencrypt', '--state', state, '--expiry-under', '300']);
    assert.equal(second.resumed, true);
    assert.deepEqual(
      second.partitions.map((p) => p.method),
      classes.map(() => 'skipped'),
    );
    const text = await keys(['reencrypt', '--state', state]);
    assert.equal(text.exitCode, 0);
    assert.match(text.stdout, /rate-limit-counter: skipped, finished in an earlier run/);
  });

  test('a pending version is refused retirement before the bound; --force retires it and says so, in its audit record too', async () => {
    const published = await keysJson<{ to: string; steps: { kid: string }[] }>(['rotate', '--publish-only']);
    const v3 = published.steps[0]!.kid;
    assert.equal(published.to, v2, 'publish-only promotes nothing');
    assert.equal(kek(await keysJson<Listing>(['list']), v3)?.state, 'pending');

    const refused = await keys(['retire', v3]);
    assert.equal(refused.exitCode, 2);
    assert.match(refused.stderr, /instances may still be sealing under .*earliest safe time/);

    const forced = await keys(['retire', v3, '--force']);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.match(forced.stdout, /forced: 0 data key record\(s\) .* 0 cached entries are now unreadable/);
    assert.match(forced.stdout, /key\.retire audit record/);
    const retired = kek(await keysJson<Listing>(['list']), v3);
    assert.equal(retired?.state, 'retired');

    const records = await auditText(join(home, 'audit'));
    assert.match(records, /key\.retire/);
    assert.match(records, /"forced":1/);
  });

  test('promote with nothing pending is refused (exit 2); --rekey starts a new generation under the same version', async () => {
    const refused = await keys(['rotate', '--promote']);
    assert.equal(refused.exitCode, 2);
    assert.match(refused.stderr, /ERR_KEY_STATE: no KEK version is pending/);
    const before = await keysJson<Listing>(['list']);
    const rekeyed = await keysJson<{ from: string; to: string; generation: number }>(['rotate', '--rekey']);
    assert.deepEqual([rekeyed.from, rekeyed.to], [v2, v2]);
    assert.equal(rekeyed.generation, before.generation + 1);
  });
});

/** Every records file under an audit directory, as one text (the test looks for actions, not structure). */
async function auditText(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath, entry.name), 'utf8'));
  }
  return parts.join('\n');
}
