// Throughput over Redis of phicache against plain clients and other caches, in one process, one run and one
// redis-server that this script starts on a free port (no persistence) and stops at the end, so that every ratio
// compares like with like: same machine, same moment, same server, same values. Prints markdown on stdout.
//
// Every implementation is handed the same JS object (JSON of exactly 1 KiB or 16 KiB) and must give back an equal
// one, so the plain clients pay JSON.stringify/JSON.parse as their callers would. Load is 64 concurrent callers:
// each tinybench sample starts CALLERS async callers that each await PER_CALLER operations one after the other.
//
// phicache's rows run it as users run it: a real AuditTrail over a FileSink at its default durability (access
// records `written`: an operation answers once its record is in the operating system, synced within 5 ms; 64
// callers let one write carry many records). The same cache without its
// audit trail is a labelled breakdown row, to show what the trail costs, never a figure of phicache's.
//
// Knobs (environment): BENCH_AUDIT_DIR parent of the audit logs (default the OS temp dir), BENCH_TIME_MS per measured task (default 1500), BENCH_KEYS working set per implementation and
// value size (default 1000), BENCH_CALLERS (default 64), BENCH_PER_CALLER operations per caller per sample (default
// 4), BENCH_REDIS_SERVER (default `redis-server` on the PATH).

import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyv } from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Redis as IoRedis } from 'ioredis';
import {
  AuditTrail,
  FileSink,
  ioredisCommands,
  LocalKeyring,
  loadDefaultPolicy,
  nodeRedisCommands,
  openAuditKeys,
  PhiCache,
  RedisStore,
} from 'phicache';
import { createClient, RESP_TYPES } from 'redis';
import { Bench } from 'tinybench';
import { freePort, positiveInt, startRedis, stopRedis } from './redis-server.mjs';

const TIME_MS = positiveInt('BENCH_TIME_MS', 1500);
const WARMUP_MS = Math.min(300, TIME_MS);
const KEYS = positiveInt('BENCH_KEYS', 1000);
const CALLERS = positiveInt('BENCH_CALLERS', 64);
const PER_CALLER = positiveInt('BENCH_PER_CALLER', 4);
const OPS_PER_SAMPLE = CALLERS * PER_CALLER;
const ROUNDS = 2;
const SIZES = [1024, 16 * 1024];
const OPS = ['get', 'set'];
const CPU_MS = positiveInt('BENCH_CPU_MS', 2000);
const TTL_MS = 300_000; // the encrypted-phi cap; every implementation writes with the same PX
const CLASS = 'encrypted-phi';

// ---------------------------------------------------------------------------------------------------- the values

/** A lab summary whose free-text note is sized so that its JSON is exactly `bytes` long. */
function labSummaryOf(bytes) {
  const shell = {
    kind: 'lab-summary',
    patient: 'p-000123',
    collectedAt: '2024-05-01T08:30:00.000Z',
    note: '',
  };
  const length = bytes - Buffer.byteLength(JSON.stringify(shell));
  const note = Array.from(
    { length },
    (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789 .,'[(i * 7919) % 39],
  ).join('');
  const value = Object.freeze({ ...shell, note });
  const json = JSON.stringify(value);
  if (Buffer.byteLength(json) !== bytes) throw new Error(`value of ${bytes} bytes came out wrong`);
  return { value, json };
}
const VALUES = new Map(SIZES.map((size) => [size, labSummaryOf(size)]));
/** Text that appears in every value's note and nowhere else: found in Redis, it means plaintext is stored there. */
const PLAINTEXT_MARK = VALUES.get(SIZES[0]).value.note.slice(0, 32);
const ids = Array.from({ length: KEYS }, (_, i) => `MRN${String(i).padStart(6, '0')}`);

let cursor = 0;
const nextIndex = () => {
  cursor = cursor + 1 === KEYS ? 0 : cursor + 1;
  return cursor;
};
const failures = { misses: 0, wrong: 0, droppedWrites: 0, storeErrors: 0, leaks: 0, roundTrip: 0 };

// ---------------------------------------------------------------------------------------------------- the server

const loadAtStart = loadavg()[0];
const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
const server = await startRedis(port);

// ---------------------------------------------------------------------------------------------------- the caches

const home = await mkdtemp(join(tmpdir(), 'phicache-bench-redis-'));
const policy = await loadDefaultPolicy();
const keyring = await LocalKeyring.open({ home, env: {} });
/** An audit sink that drops every event: only for the breakdown row "phicache without its audit trail". */
const noopAudit = { write: async () => {}, close: async () => {} };
const auditParent = await mkdtemp(
  join(process.env.BENCH_AUDIT_DIR ?? tmpdir(), 'phicache-bench-redis-audit-'),
);
const auditKeys = await openAuditKeys({
  home,
  provider: await LocalKeyring.open({ home, domain: 'audit', env: {} }),
});
let auditDirs = 0;
/** The trail as PhiCache users build it: a FileSink of its own, with its defaults (access records `written`). */
function realTrail() {
  auditDirs += 1;
  return new AuditTrail({
    keys: auditKeys,
    sinks: [new FileSink({ dir: join(auditParent, `run-${auditDirs}`) })],
  });
}
const aesKey = createSecretKey(randomBytes(32));
const closers = [];

/** node-redis as a caller would create it; `timeout: 0` turns its per-command timer off (that timer costs most of its throughput). */
async function nodeRedis(commandOptions) {
  const client = createClient({ url, ...(commandOptions === undefined ? {} : { commandOptions }) });
  client.on('error', () => {});
  await client.connect();
  closers.push(() => client.close());
  return client;
}

/** One implementation: `get(size, i)` and `set(size, i)` on key i of the working set of one value size. */
function plainKeys(prefix) {
  return new Map(SIZES.map((size) => [size, ids.map((id) => `bench:${prefix}:${size}:${id}`)]));
}

async function phicacheOver(commands, tenant, options = {}, audit = realTrail()) {
  const cache = await PhiCache.create({
    service: 'bench',
    policy,
    keys: keyring,
    audit,
    store: new RedisStore(commands),
    ...options,
  });
  cache.on('store-error', () => {
    failures.storeErrors += 1;
  });
  closers.push(() => cache.close());
  const ctx = Object.freeze({ tenant, user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' });
  const refs = new Map(
    SIZES.map((size) => [
      size,
      ids.map((id) => Object.freeze({ class: CLASS, resource: `lab-summary-${size}`, id })),
    ]),
  );
  return {
    get: (size, i) => cache.get(refs.get(size)[i], ctx),
    set: async (size, i) => {
      const receipt = await cache.set(refs.get(size)[i], VALUES.get(size).value, ctx);
      if (!receipt.stored) failures.droppedWrites += 1;
    },
  };
}

const nrFast = await nodeRedis({ timeout: 0 });
const nrDefault = await nodeRedis();
const nrAes = (await nodeRedis({ timeout: 0 })).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
const io = new IoRedis(url, { enableAutoPipelining: true, lazyConnect: true });
io.on('error', () => {});
await io.connect();
closers.push(() => io.quit());
const bento = new BentoCache({
  default: 'redis',
  stores: {
    redis: bentostore().useL2Layer(
      redisDriver({ connection: { host: '127.0.0.1', port, enableAutoPipelining: true } }),
    ),
  },
});
closers.push(() => bento.disconnectAll());
const keyv = createKeyv(url);
const cacheManager = createCache({ stores: [keyv] });
closers.push(() => cacheManager.disconnect());

const impls = [];
{
  const keys = plainKeys('nr-t0');
  impls.push({
    name: 'node-redis, timeout 0',
    plaintext: 'nr-t0',
    get: async (size, i) => {
      const raw = await nrFast.get(keys.get(size)[i]);
      return raw === null ? undefined : JSON.parse(raw);
    },
    set: (size, i) =>
      nrFast.set(keys.get(size)[i], JSON.stringify(VALUES.get(size).value), {
        expiration: { type: 'PX', value: TTL_MS },
      }),
  });
}
{
  const keys = plainKeys('nr-default');
  impls.push({
    name: 'node-redis, default timer',
    plaintext: 'nr-default',
    get: async (size, i) => {
      const raw = await nrDefault.get(keys.get(size)[i]);
      return raw === null ? undefined : JSON.parse(raw);
    },
    set: (size, i) =>
      nrDefault.set(keys.get(size)[i], JSON.stringify(VALUES.get(size).value), {
        expiration: { type: 'PX', value: TTL_MS },
      }),
  });
}
{
  const keys = plainKeys('io');
  impls.push({
    name: 'ioredis, autopipelining',
    plaintext: 'io',
    get: async (size, i) => {
      const raw = await io.get(keys.get(size)[i]);
      return raw === null ? undefined : JSON.parse(raw);
    },
    set: (size, i) => io.set(keys.get(size)[i], JSON.stringify(VALUES.get(size).value), 'PX', TTL_MS),
  });
}
{
  // The least an encrypting cache must do: a fresh random nonce per value, the key name as AAD, SET PX.
  const keys = plainKeys('aes');
  const aads = new Map([...keys].map(([size, names]) => [size, names.map((name) => Buffer.from(name))]));
  impls.push({
    name: 'AES-256-GCM wrapper on node-redis',
    get: async (size, i) => {
      const sealed = await nrAes.get(keys.get(size)[i]);
      if (sealed === null) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', aesKey, sealed.subarray(0, 12), { authTagLength: 16 });
      decipher.setAAD(aads.get(size)[i]);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(12, sealed.length - 16)),
        decipher.final(),
      ]);
      return JSON.parse(plain.toString('utf8'));
    },
    set: (size, i) => {
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: 16 });
      cipher.setAAD(aads.get(size)[i]);
      const sealed = Buffer.concat([
        nonce,
        cipher.update(JSON.stringify(VALUES.get(size).value), 'utf8'),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      return nrAes.set(keys.get(size)[i], sealed, { expiration: { type: 'PX', value: TTL_MS } });
    },
  });
}
impls.push({
  name: 'phicache on node-redis',
  phicache: true,
  ...(await phicacheOver(await nodeRedisCommands({ url }), 'st-marys-node-redis')),
});
// The purge check's cost: the same, but with every get reading its purge markers from Redis (purgeRefreshMs: 1)
// instead of trusting what it read less than a second ago (the default).
impls.push({
  name: 'phicache on node-redis, purge markers read on every get',
  phicache: true,
  ...(await phicacheOver(await nodeRedisCommands({ url }), 'st-marys-node-redis-markers', {
    purgeRefreshMs: 1,
  })),
});
impls.push({
  name: 'phicache on ioredis',
  phicache: true,
  ...(await phicacheOver(await ioredisCommands({ url }), 'st-marys-ioredis')),
});
// What the trail costs: the first phicache row again, with an audit sink that drops every event.
impls.push({
  name: 'breakdown: phicache on node-redis without its audit trail',
  phicache: true,
  ...(await phicacheOver(await nodeRedisCommands({ url }), 'st-marys-node-redis-no-trail', {}, noopAudit)),
});
{
  const keys = plainKeys('bento');
  impls.push({
    name: 'BentoCache, Redis L2 only',
    plaintext: 'bento',
    get: (size, i) => bento.get({ key: keys.get(size)[i] }),
    set: async (size, i) => {
      if (!(await bento.set({ key: keys.get(size)[i], value: VALUES.get(size).value, ttl: TTL_MS })))
        failures.droppedWrites += 1;
    },
  });
}
{
  const keys = plainKeys('cm');
  impls.push({
    name: 'cache-manager + @keyv/redis',
    plaintext: 'cm',
    get: (size, i) => cacheManager.get(keys.get(size)[i]),
    set: (size, i) => cacheManager.set(keys.get(size)[i], VALUES.get(size).value, TTL_MS),
  });
}
const baseline = impls[0];
const redisVersion = /^redis_version:(\S+)/m.exec(await nrFast.info('server'))?.[1] ?? 'unknown';

// ------------------------------------------------------------------------------------ filling, and checking reads

/** Runs `op` on every key, CALLERS at a time. */
async function everyKey(op) {
  let next = 0;
  const caller = async () => {
    while (next < KEYS) await op(next++);
  };
  await Promise.all(Array.from({ length: CALLERS }, caller));
}

/** Reads every key of every implementation and size back, comparing the whole value. */
async function checkRoundTrips(when) {
  for (const impl of impls) {
    for (const size of SIZES) {
      const { json } = VALUES.get(size);
      let bad = 0;
      await everyKey(async (i) => {
        const back = await impl.get(size, i);
        if (back === undefined || JSON.stringify(back) !== json) bad += 1;
      });
      if (bad > 0) {
        failures.roundTrip += bad;
        console.error(`error: ${impl.name}, ${size} B: ${bad} of ${KEYS} values did not read back ${when}`);
      }
    }
  }
}

for (const impl of impls) for (const size of SIZES) await everyKey((i) => impl.set(size, i));
await checkRoundTrips('after the fill');

// ---------------------------------------------------------------------------------------------------- measuring

function task(impl, op, size) {
  const { value } = VALUES.get(size);
  const caller =
    op === 'get'
      ? async () => {
          for (let n = 0; n < PER_CALLER; n++) {
            const back = await impl.get(size, nextIndex());
            if (back === undefined) failures.misses += 1;
            else if (back.patient !== value.patient || back.note?.length !== value.note.length)
              failures.wrong += 1;
          }
        }
      : async () => {
          for (let n = 0; n < PER_CALLER; n++) await impl.set(size, nextIndex());
        };
  const callers = Array.from({ length: CALLERS }, () => caller);
  return () => Promise.all(callers.map((c) => c()));
}

const redisCpuAtStart = await redisCpuSeconds();
const nodeCpuAtStart = process.cpuUsage();
const perRound = new Map(); // task name -> [ops/s] over rounds
const rmes = new Map();
const started = performance.now();
for (let round = 0; round < ROUNDS; round++) {
  const bench = new Bench({ time: TIME_MS, warmupTime: WARMUP_MS, iterations: 16, throws: true });
  // Reads before writes in each size; the second round runs the implementations in the opposite order.
  const order = round % 2 === 0 ? impls : [...impls].reverse();
  for (const size of SIZES) {
    for (const op of OPS) {
      for (const impl of order) bench.add(taskName(op, size, impl), task(impl, op, size), { async: true });
    }
  }
  await bench.run();
  for (const t of bench.tasks) {
    perRound.set(t.name, [...(perRound.get(t.name) ?? []), (OPS_PER_SAMPLE * 1000) / t.result.latency.mean]);
    rmes.set(t.name, Math.max(rmes.get(t.name) ?? 0, t.result.latency.rme));
  }
}
const mainSeconds = (performance.now() - started) / 1000;
const nodeCpu = process.cpuUsage(nodeCpuAtStart);
const redisCpu = (await redisCpuSeconds()) - redisCpuAtStart;
const cpuPerOp = await measureCpuPerOperation();

await checkRoundTrips('after the run');
await checkNoPlaintext();

const result = new Map(
  [...perRound].map(([name, all]) => {
    const ops = all.reduce((a, b) => a + b, 0) / all.length;
    return [name, { ops, spread: ((Math.max(...all) - Math.min(...all)) / ops) * 100, rme: rmes.get(name) }];
  }),
);
const at = (op, size, impl) => result.get(taskName(op, size, impl));

for (const close of closers.reverse()) await close();
await stopRedis(server);
await rm(home, { recursive: true, force: true });
await rm(auditParent, { recursive: true, force: true });

// ---------------------------------------------------------------------------------------------------- the report

const fmtOps = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);
const fmtRatio = (r) => (r >= 0.1 ? r.toFixed(2) : r.toFixed(3));
const kib = (size) => `${size / 1024} KiB`;
const columns = SIZES.flatMap((size) => OPS.map((op) => ({ size, op })));
const out = [];
const line = (s = '') => out.push(s);

line(`## phicache over Redis`);
line();
line(`- date: ${new Date().toISOString()}`);
line(
  `- node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; redis-server ${redisVersion}, started by this script on 127.0.0.1:${port} (no RDB, no AOF)`,
);
line(
  `- load: ${CALLERS} concurrent callers, each awaiting ${PER_CALLER} operations per sample (${OPS_PER_SAMPLE} operations per sample); working set ${KEYS.toLocaleString('en')} keys per implementation and value size; every write with PX ${TTL_MS / 1000} s`,
);
line(
  `- values: one JS object whose JSON is exactly 1,024 or 16,384 bytes; every implementation must give back an equal object (the plain clients JSON.stringify and JSON.parse)`,
);
line(
  `- phicache: class \`${CLASS}\` of the default policy (AES-256-GCM envelope, HMAC store names, policy decision, audit record per operation; a set also updates the tenant and user tag indexes), a LocalKeyring, RedisStore with its defaults; every phicache row has its real AuditTrail over a FileSink of its own at the default durability (access records \`written\`: each operation answers once its record is in the operating system, synced within 5 ms), except the row labelled "breakdown", whose audit sink drops every event`,
);
line(
  `- BentoCache: its Redis driver (ioredis, enableAutoPipelining) as the only layer: no memory L1, no bus, so every read goes to Redis. cache-manager: v7 over Keyv and @keyv/redis (its own node-redis 5 client)`,
);
line(
  `- tinybench: ${TIME_MS} ms per task after ${WARMUP_MS} ms warm-up, ${ROUNDS} rounds (the second in reverse order), figures are the mean of the rounds; the matrix took ${mainSeconds.toFixed(0)} s, of which node used ${((nodeCpu.user + nodeCpu.system) / 1e6).toFixed(0)} s of CPU and redis-server ${redisCpu.toFixed(0)} s`,
);
line(
  `- 1-minute load average: ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end (above ~1 means something else shared the ${cpus().length} cores with node and redis-server)`,
);
line(
  `- checks: reads that missed ${failures.misses}, wrong values ${failures.wrong}, dropped writes ${failures.droppedWrites}, store errors ${failures.storeErrors}, values not read back whole after the fill or the run ${failures.roundTrip}, values holding plaintext outside the plaintext rows ${failures.leaks} (all must be 0)`,
);
line();
const phiNodeRedis = impls.find((impl) => impl.name === 'phicache on node-redis');
const headline = (op) => fmtRatio(at(op, SIZES[0], phiNodeRedis).ops / at(op, SIZES[0], baseline).ops);
line(
  `### Headline: phicache on node-redis, with its real audit trail, relative to plain node-redis with timeout 0`,
);
line();
line(
  `${CALLERS} callers, ${kib(SIZES[0])} values: **${headline('get')}× on GET, ${headline('set')}× on SET** (higher is better).`,
);
line();
line(`### Throughput relative to node-redis with timeout 0 (higher is better)`);
line();
line(`| implementation | ${columns.map(({ size, op }) => `${kib(size)} ${op.toUpperCase()}`).join(' | ')} |`);
line(`|---|${columns.map(() => '---:').join('|')}|`);
for (const impl of impls.slice(1)) {
  line(
    `| ${impl.name} | ${columns
      .map(({ size, op }) => `${fmtRatio(at(op, size, impl).ops / at(op, size, baseline).ops)}×`)
      .join(' | ')} |`,
  );
}
line();
line(`### Throughput (operations per second)`);
line();
line(`| implementation | ${columns.map(({ size, op }) => `${kib(size)} ${op.toUpperCase()}`).join(' | ')} |`);
line(`|---|${columns.map(() => '---:').join('|')}|`);
for (const impl of impls) {
  line(`| ${impl.name} | ${columns.map(({ size, op }) => fmtOps(at(op, size, impl).ops)).join(' | ')} |`);
}
line();
line(
  `How far apart the two rounds were (max - min over the mean) and the largest tinybench relative margin of error:`,
);
line();
line(`| implementation | ${columns.map(({ size, op }) => `${kib(size)} ${op.toUpperCase()}`).join(' | ')} |`);
line(`|---|${columns.map(() => '---:').join('|')}|`);
for (const impl of impls) {
  line(
    `| ${impl.name} | ${columns
      .map(({ size, op }) => {
        const { spread, rme } = at(op, size, impl);
        return `${spread.toFixed(0)}% / ±${rme.toFixed(1)}%`;
      })
      .join(' | ')} |`,
  );
}
line();
line(
  `### CPU per operation, ${kib(SIZES[0])} values, ${CALLERS} callers (${CPU_MS} ms each after the matrix; one run each)`,
);
line();
line(
  "Where each operation's time goes: the node process's CPU per operation (its main thread, where every caller's work runs, plus its few helper threads), how busy its main thread was (event loop utilization; 1.00 means every operation waited for the thread), and redis-server's CPU per operation.",
);
line();
line('| implementation | op | ops/s | node CPU µs/op | main thread busy | redis-server CPU µs/op |');
line('|---|---|---:|---:|---:|---:|');
for (const row of cpuPerOp) {
  line(
    `| ${row.impl} | ${row.op.toUpperCase()} | ${fmtOps(row.ops)} | ${row.nodeUs.toFixed(1)} | ${row.busy.toFixed(2)} | ${row.redisUs.toFixed(1)} |`,
  );
}
console.log(out.join('\n'));

const failed = Object.entries(failures).filter(([, n]) => n !== 0);
if (failed.length > 0) {
  console.error(`error: ${failed.map(([what, n]) => `${what} ${n}`).join(', ')}; the figures are not valid`);
  process.exitCode = 1;
}

// ---------------------------------------------------------------------------------------------------- helpers

function taskName(op, size, impl) {
  return `${op} ${size} | ${impl.name}`;
}

/**
 * Every string value in Redis that holds a note's text must belong to a plaintext implementation (its key name
 * carries its prefix); the AES wrapper's and phicache's values must not hold it.
 */
async function checkNoPlaintext() {
  const markers = impls.filter((impl) => impl.plaintext).map((impl) => `bench:${impl.plaintext}:`);
  const seen = new Set();
  let scanCursor = '0';
  do {
    const reply = await nrFast.scan(scanCursor, { COUNT: 1000, TYPE: 'string' });
    scanCursor = String(reply.cursor);
    const names = reply.keys.filter((name) => !markers.some((m) => name.includes(m)) && !seen.has(name));
    for (const name of names) seen.add(name);
    const values = await Promise.all(names.map((name) => nrFast.get(name)));
    for (const [n, v] of values.entries()) {
      if (v?.includes(PLAINTEXT_MARK)) {
        failures.leaks += 1;
        console.error(`error: ${names[n]} holds plaintext`);
      }
    }
  } while (scanCursor !== '0');
  // The check must have looked at the encrypted values: the AES wrapper's and both phicaches' entries at least.
  if (seen.size < 3 * KEYS * SIZES.length) {
    failures.leaks += 1;
    console.error(`error: the plaintext check saw only ${seen.size} encrypted values`);
  }
}

/**
 * For each implementation and operation on the smaller value: CALLERS callers for CPU_MS, with the node process's
 * CPU, its main thread's event loop utilization and redis-server's CPU over the same span, each per operation.
 */
async function measureCpuPerOperation() {
  const rows = [];
  const size = SIZES[0];
  for (const op of OPS) {
    for (const impl of impls) {
      const run = task(impl, op, size);
      const until = performance.now() + CPU_MS;
      let ops = 0;
      const redisBefore = await redisCpuSeconds();
      const cpuBefore = process.cpuUsage();
      const loopBefore = performance.eventLoopUtilization();
      const from = performance.now();
      while (performance.now() < until) {
        await run();
        ops += OPS_PER_SAMPLE;
      }
      const seconds = (performance.now() - from) / 1000;
      const busy = performance.eventLoopUtilization(loopBefore).utilization;
      const cpu = process.cpuUsage(cpuBefore);
      const redisSeconds = (await redisCpuSeconds()) - redisBefore;
      rows.push({
        impl: impl.name,
        op,
        ops: ops / seconds,
        nodeUs: (cpu.user + cpu.system) / ops,
        busy,
        redisUs: (redisSeconds * 1e6) / ops,
      });
    }
  }
  return rows;
}

async function redisCpuSeconds() {
  const info = await nrFast.info('cpu');
  const field = (name) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 'NaN');
  return field('used_cpu_user') + field('used_cpu_sys');
}
