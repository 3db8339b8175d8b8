// Rewrap after a KEK rotation, for a small and a large cache with the same data keys: the target is that its
// cost follows the number of data keys, not of entries ("within a factor of two for 1,000 and 1,000,000 entries").
// Each size gets a redis-server of its own (started by this script on a free port, no persistence, no eviction),
// is filled through PhiCache's public API, rotated (publish, wait for the fleet bound, promote), then rewrapped.
// The rewrap finds the data key records through the index every record is written into (a tag of the fleet's), so
// its walk follows the data keys. For comparison the script also times a SCAN MATCH phc:k:* walk, which visits
// every key of the instance whatever it matches: what finding the records would cost without the index.
//
// Run `npx tsc -p .` in the repository first: this script imports the built library from ../build.
// Knobs (environment): BENCH_REWRAP_SIZES (default 1000,1000000), BENCH_TENANTS (default 10), BENCH_CONCURRENCY
// (callers filling at once, default 64), BENCH_ROUNDS (rotations and walks per size, default 5), BENCH_CLASS
// (default rate-limit-counter), BENCH_AUDIT_DIR (parent of the audit logs, default the OS temp dir),
// BENCH_REDIS_SERVER (default `redis-server` on the PATH).

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AuditTrail,
  FileSink,
  LocalKeyring,
  loadDefaultPolicy,
  nodeRedisCommands,
  openAuditKeys,
  PhiCache,
  RedisStore,
} from '../build/src/index.js';
import { freePort, positiveInt, startRedis, stopRedis } from './redis-server.mjs';

const SIZES = (process.env.BENCH_REWRAP_SIZES ?? '1000,1000000').split(',').map(Number);
const TENANTS = positiveInt('BENCH_TENANTS', 10);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 64);
/**
 * A class whose cap (3600 s) outlasts the fill of the large cache on a loaded machine: the 300 s of encrypted-phi
 * would let the first entries expire before the rewrap. Data keys, their records and the rewrap are the same for
 * every class.
 */
const CLASS = process.env.BENCH_CLASS ?? 'rate-limit-counter';
/** What a service that wants rotations to settle quickly sets; the bound is 2 × this + 1 s. */
const KEY_STATE_REFRESH_MS = 100;
/** Rotations (each followed by a timed rewrap) and walks per size; figures are medians. */
const ROUNDS = positiveInt('BENCH_ROUNDS', 5);
const VALUE = Object.freeze({ note: 'n'.repeat(240) }); // 253 bytes of JSON
const admin = Object.freeze({ principal: 'ops:bench' });
const execFileP = promisify(execFile);

const policy = await loadDefaultPolicy();
const auditParent = await mkdtemp(join(process.env.BENCH_AUDIT_DIR ?? tmpdir(), 'phicache-bench-rewrap-'));

async function redisCli(port, ...args) {
  const { stdout } = await execFileP('redis-cli', ['-p', String(port), ...args]);
  return stdout.trim();
}

async function usedMemory(port) {
  const info = await redisCli(port, 'info', 'memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);
}

const ctxOf = (tenant) =>
  Object.freeze({ tenant: `tenant-${tenant}`, user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' });
const contexts = Array.from({ length: TENANTS }, (_, t) => ctxOf(t));
const refOf = (i) => ({ class: CLASS, resource: 'Observation', id: `obs-${i}` });

/** Fills `entries` entries, spread over the tenants, with CONCURRENCY callers each awaiting its own writes. */
async function fill(cache, entries) {
  let next = 0;
  let dropped = 0;
  const started = performance.now();
  const caller = async () => {
    for (let i = next++; i < entries; i = next++) {
      // A write the class's failure mode dropped (a store command past its deadline on a loaded machine) is
      // written again: the fill only sets the stage, and the table must count the entries it says.
      let attempts = 0;
      while (!(await cache.set(refOf(i), VALUE, contexts[i % TENANTS])).stored) {
        dropped += 1;
        if (++attempts === 5) throw new Error(`entry ${i} was dropped 5 times`);
        await new Promise((resolve) => setTimeout(resolve, 200 * attempts));
      }
      if (process.stderr.isTTY && i % 50_000 === 0) process.stderr.write(`\rfilled ${i}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, entries) }, caller));
  if (process.stderr.isTTY) process.stderr.write('\n');
  return { ms: performance.now() - started, dropped };
}

/** A walk the rewrap does not make, for comparison: SCAN MATCH phc:k:* COUNT 1000 over the whole keyspace. */
async function scanOnly(store) {
  const started = performance.now();
  let found = 0;
  for await (const _key of store.scan('phc:k:')) found += 1;
  return { ms: performance.now() - started, found };
}

/** The same walk with COUNT 10,000: a tenth of the round trips, the same work on the server. */
async function wideScan(commands) {
  const started = performance.now();
  for (const node of commands.masters()) {
    let cursor = '0';
    do {
      cursor = (await node.scan(cursor, 'phc:k:*', 10_000)).cursor;
    } while (cursor !== '0');
  }
  return performance.now() - started;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function run(entries) {
  const port = await freePort();
  const server = await startRedis(port);
  const home = await mkdtemp(join(auditParent, `home-${entries}-`));
  try {
    // No eviction: an evicted data key record would make the counts meaningless (and entries unreadable).
    await redisCli(port, 'config', 'set', 'maxmemory', '0');
    await redisCli(port, 'config', 'set', 'maxmemory-policy', 'noeviction');
    // The real keyring; this only times its rewrap calls (the data key part of a rewrap: one per record).
    const keyring = await LocalKeyring.open({ home, env: {} });
    const keyCalls = [];
    const keys = new Proxy(keyring, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        if (property !== 'rewrapDataKey') return value.bind(target);
        return async (...args) => {
          const started = performance.now();
          try {
            return await value.apply(target, args);
          } finally {
            keyCalls.push(performance.now() - started);
          }
        };
      },
    });
    const auditKeys = await openAuditKeys({
      home,
      provider: await LocalKeyring.open({ home, domain: 'audit', env: {} }),
    });
    const trail = new AuditTrail({ keys: auditKeys, sinks: [new FileSink({ dir: join(home, 'audit') })] });
    // The real trail; this only times how long the rewrap's own (admin, durable) record takes to be written.
    const adminWrites = [];
    const audit = {
      async write(event) {
        const started = performance.now();
        await trail.write(event);
        if (event.action === 'key.rewrap') adminWrites.push(performance.now() - started);
      },
      close: () => trail.close(),
    };
    const commands = await nodeRedisCommands({ url: `redis://127.0.0.1:${port}` });
    // 5 s rather than the default 500 ms per command: the fill keeps Redis and node busy on a shared machine, and a
    // dropped write only slows the fill down. The rewrap runs on the same store with the same deadline.
    const store = new RedisStore(commands, { commandTimeoutMs: 5_000 });
    const cache = await PhiCache.create({
      service: 'bench',
      policy,
      keys,
      audit,
      store,
      keyStateRefreshMs: KEY_STATE_REFRESH_MS,
    });
    let firstFailure;
    cache.on('store-error', ({ cause }) => {
      firstFailure ??= cause;
    });
    cache.on('key-service-error', ({ cause }) => {
      firstFailure ??= cause;
    });
    try {
      const { ms: fillMs, dropped } = await fill(cache, entries).catch((error) => {
        throw new Error(`${error.message}; first failure: ${firstFailure?.message}`, { cause: firstFailure });
      });
      const keysInRedis = Number(await redisCli(port, 'dbsize'));
      const memory = await usedMemory(port);
      const rewraps = [];
      let dekRecords = 0;
      const keyServiceMs = [];
      for (let r = 0; r < ROUNDS; r++) {
        const { from } = await cache.rotation.rotate(admin);
        keyCalls.length = 0;
        dekRecords = (await cache.rotation.list()).dekRecords[from] ?? 0;
        const rewrapStarted = performance.now();
        const report = await cache.rotation.rewrap(admin);
        rewraps.push(performance.now() - rewrapStarted);
        keyServiceMs.push(keyCalls.reduce((sum, ms) => sum + ms, 0));
        if (report.failed > 0 || report.rewrapped !== dekRecords || dekRecords === 0) {
          throw new Error(`rewrap: ${JSON.stringify(report)}, expected ${dekRecords} rewrapped`);
        }
        const after = await cache.rotation.list();
        if ((after.dekRecords[from] ?? 0) !== 0) throw new Error(`records left under ${from}`);
      }

      const scans = [];
      const wideScans = [];
      for (let r = 0; r < ROUNDS; r++) {
        scans.push(await scanOnly(store));
        wideScans.push(await wideScan(commands));
      }
      // A rewrap with nothing to rewrap: the walk plus reading each record, no key service call.
      const again = await cache.rotation.rewrap(admin);

      // Every entry sampled still reads after the rewrap (its data key now unwrapped under the new version).
      const fresh = await PhiCache.create({
        service: 'bench-check',
        policy,
        keys: await LocalKeyring.open({ home, env: {} }),
        audit: new AuditTrail({ keys: auditKeys, sinks: [new FileSink({ dir: join(home, 'audit-check') })] }),
        store: new RedisStore(await nodeRedisCommands({ url: `redis://127.0.0.1:${port}` })),
      });
      try {
        for (let s = 0; s < 100; s++) {
          const i = Math.floor((s * entries) / 100);
          const value = await fresh.get(refOf(i), contexts[i % TENANTS]);
          if (value?.note !== VALUE.note) throw new Error(`entry ${i} did not read back after the rewrap`);
        }
      } finally {
        await fresh.close();
      }
      return {
        entries,
        keysInRedis,
        memoryMiB: memory / 2 ** 20,
        fillMs,
        loadAfter: loadavg()[0],
        dropped,
        firstFailure: firstFailure?.message,
        dekRecords,
        rewrapMs: median(rewraps),
        rewrapRange: [Math.min(...rewraps), Math.max(...rewraps)],
        rewrapAuditMs: median(adminWrites.slice(0, ROUNDS)),
        keyServiceMs: median(keyServiceMs),
        wideScanMs: median(wideScans),
        scanMs: median(scans.map((s) => s.ms)),
        scanFound: scans[0].found,
        againMs: again.ms,
      };
    } finally {
      await cache.close();
    }
  } finally {
    await stopRedis(server);
    await rm(home, { recursive: true, force: true });
  }
}

const startedAt = new Date();
const load = loadavg()[0];
const results = [];
for (const size of SIZES) results.push(await run(size));
await rm(auditParent, { recursive: true, force: true });

const fmt = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const out = [];
out.push(
  `- Date ${startedAt.toISOString().slice(0, 19)}Z; 1-minute load average ${load.toFixed(2)} at the start; ${cpus().length} × ${cpus()[0]?.model.trim()}; Node ${process.version}.`,
  `- One redis-server per size, started by the script (no persistence, maxmemory 0, noeviction); class \`${CLASS}\`, ${TENANTS} tenants, values of ${JSON.stringify(VALUE).length} bytes of JSON written by ${CONCURRENCY} concurrent callers through \`PhiCache.set\`; a LocalKeyring; a real AuditTrail over a FileSink; \`keyStateRefreshMs\` ${KEY_STATE_REFRESH_MS} (rotation bound ${2 * KEY_STATE_REFRESH_MS + 1000} ms).`,
  `- "rewrap" is \`cache.rotation.rewrap\` timed around the call, after \`rotation.rotate\` (median of ${ROUNDS} rotations, each rewrapping the same data key records; range in brackets); "SCAN walk" is a \`SCAN MATCH phc:k:* COUNT 1000\` walk over the keyspace, which the rewrap does not make (it lists the records through their index), timed for comparison (median of ${ROUNDS}); "key service calls" is the time of the rewrap's key service calls summed (one per data key record, 16 at once; median over the rotations); "its audit record" is the write of its admin record (durable); "rewrap, nothing to do" is a second rewrap (the index walk and record reads, no key service call). After each rewrap 100 entries spread over the keyspace were read back by a new instance.`,
  '',
  '| entries | keys in Redis | Redis memory | fill (load after) | data key records | rewrap | SCAN walk | walk, COUNT 10,000 | key service calls | its audit record | rewrap, nothing to do |',
  '| ------: | ------------: | -----------: | ----------------: | ---------------: | -----: | --------: | -----------------: | ----------------: | ---------------: | --------------------: |',
);
for (const r of results) {
  out.push(
    `| ${fmt(r.entries)} | ${fmt(r.keysInRedis)} | ${fmt(r.memoryMiB)} MiB | ${fmt(r.fillMs / 1000, 1)} s, ${fmt((r.entries / r.fillMs) * 1000)}/s (${r.loadAfter.toFixed(1)}) | ${r.dekRecords} | ${fmt(r.rewrapMs, 1)} ms [${fmt(r.rewrapRange[0], 1)}–${fmt(r.rewrapRange[1], 1)}] | ${fmt(r.scanMs, 1)} ms | ${fmt(r.wideScanMs, 1)} ms | ${fmt(r.keyServiceMs, 1)} ms | ${fmt(r.rewrapAuditMs, 1)} ms | ${fmt(r.againMs)} ms |`,
  );
}
for (const r of results.filter((x) => x.dropped > 0)) {
  out.push(
    '',
    `The fill of ${fmt(r.entries)} entries had ${fmt(r.dropped)} writes dropped by the class's failure mode and written again (first cause: ${r.firstFailure}).`,
  );
}
if (results.length >= 2) {
  const [small, large] = [results[0], results.at(-1)];
  const ratio = (a, b) => (b > 0 ? `${(a / b).toFixed(1)}×` : 'n/a');
  out.push(
    '',
    `Ratio ${fmt(large.entries)} / ${fmt(small.entries)} entries: rewrap ${ratio(large.rewrapMs, small.rewrapMs)}, SCAN walk ${ratio(large.scanMs, small.scanMs)}, key service calls ${ratio(large.keyServiceMs, small.keyServiceMs)}; data key records ${small.dekRecords} and ${large.dekRecords}.`,
  );
}
process.stdout.write(`${out.join('\n')}\n`);
