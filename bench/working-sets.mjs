// Working sets and memory: phicache get and set over working sets of 10,000 and 100,000 names beside lru-cache and
// BentoCache's memory tier in the same process and run, then the heap a MemoryStore-backed phicache holds after a
// million overwrites of a few keys. phicache runs as users run it: a real AuditTrail over a FileSink at its default
// durability (access records `written`, synced within 5 ms). Prints markdown on stdout.
//
// Every cache is driven the same way: CALLERS concurrent async loops (a server's concurrent requests; with one
// caller, every operation would wait for its own record), each picking keys uniformly at random from the working
// set (a seeded generator: a cyclic scan is the one pattern any LRU memo misses on entirely, and not what traffic
// looks like). Run with `node --expose-gc` (`npm run bench:working-sets`).
//
// Knobs (environment): BENCH_TIME_MS per measured task (default 2000), BENCH_CALLERS (default 32),
// BENCH_OVERWRITES (default 1,000,000), BENCH_OVERWRITE_KEYS (default 1,000), BENCH_AUDIT_DIR parent of the audit
// logs (default the OS temp dir).

import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { LRUCache } from 'lru-cache';
import {
  AuditTrail,
  FileSink,
  LocalKeyring,
  loadDefaultPolicy,
  MemoryStore,
  openAuditKeys,
  PhiCache,
} from 'phicache';

if (typeof globalThis.gc !== 'function')
  throw new Error('run with node --expose-gc (npm run bench:working-sets)');

const TIME_MS = positiveInt('BENCH_TIME_MS', 2000);
const CALLERS = positiveInt('BENCH_CALLERS', 32);
const OVERWRITES = positiveInt('BENCH_OVERWRITES', 1_000_000);
const OVERWRITE_KEYS = positiveInt('BENCH_OVERWRITE_KEYS', 1_000);
const WORKING_SETS = [10_000, 100_000];
const ROUNDS = 2;
const TTL_MS = 300_000; // the encrypted-phi cap, for every cache
const CLASS = 'encrypted-phi';
const RESOURCE = 'lab-summary';
const CTX = Object.freeze({ tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' });
const NOTE = Array.from(
  { length: 1000 },
  (_, i) => 'abcdefghijklmnopqrstuvwxyz0123456789 .,'[(i * 7919) % 39],
).join('');
const VALUE = Object.freeze({
  kind: 'lab-summary',
  patient: 'p-000123',
  collectedAt: '2024-05-01T08:30:00.000Z',
  flags: ['H', 'N', 'N'],
  note: NOTE,
});

const loadAtStart = loadavg()[0];
const home = await mkdtemp(join(tmpdir(), 'phicache-bench-ws-'));
const auditParent = await mkdtemp(join(process.env.BENCH_AUDIT_DIR ?? tmpdir(), 'phicache-bench-ws-audit-'));
const policy = await loadDefaultPolicy();
const keys = await LocalKeyring.open({ home, env: {} });
const auditKeys = await openAuditKeys({
  home,
  provider: await LocalKeyring.open({ home, domain: 'audit', env: {} }),
});
let misses = 0;
let auditDirs = 0;

/** A phicache as users run it: AuditTrail over a FileSink of its own, a MemoryStore for the working set. */
async function phicache(storeOptions) {
  auditDirs += 1;
  const audit = new AuditTrail({
    keys: auditKeys,
    sinks: [new FileSink({ dir: join(auditParent, `run-${auditDirs}`) })],
  });
  const store = new MemoryStore(storeOptions);
  const cache = await PhiCache.create({ service: 'bench', policy, keys, audit, store });
  return { cache, store };
}

// A seeded xorshift: the same key sequence for every cache and every run.
function randomIndexes(size) {
  let state = 0x9e3779b9;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % size;
  };
}

/** Operations per second of `op` over TIME_MS, CALLERS loops awaiting one operation at a time. */
async function measure(op, size) {
  const next = randomIndexes(size);
  let done = 0;
  const deadline = performance.now() + TIME_MS;
  const caller = async () => {
    while (performance.now() < deadline) {
      for (let n = 0; n < 50; n++) await op(next());
      done += 50;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  return (done * 1000) / (performance.now() - started);
}

async function workingSet(size) {
  const ids = Array.from({ length: size }, (_, i) => `MRN${String(i).padStart(6, '0')}`);
  const refs = ids.map((id) => Object.freeze({ class: CLASS, resource: RESOURCE, id }));
  const plainKeys = ids.map((id) => `${RESOURCE}:${id}`);
  const lru = new LRUCache({ max: size * 2, ttl: TTL_MS });
  const bento = new BentoCache({
    default: 'memory',
    stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: size * 2, maxSize: '1gb' })) },
  });
  const phi = await phicache({ maxEntries: size * 2, maxBytes: 1024 * 1024 * 1024 });
  const impls = [
    {
      name: 'lru-cache',
      get: async (i) => lru.get(plainKeys[i]),
      set: async (i) => lru.set(plainKeys[i], VALUE),
    },
    {
      name: 'BentoCache (memory L1)',
      get: (i) => bento.get({ key: plainKeys[i] }),
      set: (i) => bento.set({ key: plainKeys[i], value: VALUE, ttl: TTL_MS }),
    },
    {
      name: 'phicache (AuditTrail + FileSink)',
      get: (i) => phi.cache.get(refs[i], CTX),
      set: (i) => phi.cache.set(refs[i], VALUE, CTX),
    },
  ];
  for (const impl of impls) {
    let filled = 0;
    const filler = async () => {
      while (filled < size) await impl.set(filled++);
    };
    await Promise.all(Array.from({ length: CALLERS }, filler));
  }
  const runs = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? impls : [...impls].reverse();
    for (const opName of ['get', 'set']) {
      for (const impl of order) {
        const op =
          opName === 'get'
            ? async (i) => {
                const v = await impl.get(i);
                if (v?.note !== NOTE) misses += 1;
              }
            : impl.set;
        const ops = await measure(op, size);
        const key = `${opName} | ${impl.name}`;
        runs.set(key, [...(runs.get(key) ?? []), ops]);
      }
    }
  }
  await phi.cache.close();
  await bento.disconnectAll();
  lru.clear();
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    size,
    rows: ['get', 'set'].flatMap((opName) =>
      impls.map((impl) => {
        const all = runs.get(`${opName} | ${impl.name}`);
        const ops = mean(all);
        return {
          op: opName,
          name: impl.name,
          ops,
          spread: ((Math.max(...all) - Math.min(...all)) / ops) * 100,
        };
      }),
    ),
  };
}

function heapUsed() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

/** The heap a MemoryStore-backed phicache holds after OVERWRITES sets over OVERWRITE_KEYS keys. */
async function heapAfterOverwrites() {
  const phi = await phicache({});
  const refs = Array.from({ length: OVERWRITE_KEYS }, (_, i) =>
    Object.freeze({ class: CLASS, resource: RESOURCE, id: `OW${String(i).padStart(6, '0')}` }),
  );
  let filled = 0;
  const filler = async () => {
    while (filled < OVERWRITE_KEYS) await phi.cache.set(refs[filled++], VALUE, CTX);
  };
  await Promise.all(Array.from({ length: CALLERS }, filler));
  const before = heapUsed();
  let written = 0;
  const started = performance.now();
  const caller = async () => {
    while (written < OVERWRITES) {
      const i = written % OVERWRITE_KEYS;
      written += 1;
      await phi.cache.set(refs[i], VALUE, CTX);
    }
  };
  await Promise.all(Array.from({ length: CALLERS }, caller));
  const setsPerSecond = (written * 1000) / (performance.now() - started);
  const after = heapUsed();
  const stats = phi.store.stats();
  await phi.cache.close();
  const closed = heapUsed();
  return { written, before, after, closed, stats, setsPerSecond };
}

const started = performance.now();
const sets = [];
for (const size of WORKING_SETS) sets.push(await workingSet(size));
const overwrites = await heapAfterOverwrites();
const seconds = (performance.now() - started) / 1000;

const fmtOps = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);
const fmtRatio = (r) => (r >= 0.1 ? r.toFixed(2) : r >= 0.01 ? r.toFixed(3) : r.toFixed(4));
const mib = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const out = [];
const line = (s = '') => out.push(s);
line('## phicache working sets and memory');
line();
line(
  `- date: ${new Date().toISOString()}; node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`,
);
line(
  `- ${CALLERS} concurrent callers per task, keys drawn uniformly at random; ${TIME_MS} ms per task, ${ROUNDS} rounds (the second in reverse cache order), mean of the rounds; the whole run took ${seconds.toFixed(0)} s`,
);
line(
  `- phicache: class \`${CLASS}\`, MemoryStore, AuditTrail over a FileSink at its default durability (access records \`written\`), one tenant`,
);
line(
  `- 1-minute load average: ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end (above ~1 means something else shared the ${cpus().length} cores)`,
);
line(`- reads that missed or came back different: ${misses} (must be 0)`);
line();
line('| working set | operation | cache | ops/s | rounds apart | vs lru-cache | vs BentoCache |');
line('|---:|---|---|---:|---:|---:|---:|');
for (const { size, rows } of sets) {
  for (const row of rows) {
    const lruOps = rows.find((r) => r.op === row.op && r.name === 'lru-cache').ops;
    const bentoOps = rows.find((r) => r.op === row.op && r.name.startsWith('BentoCache')).ops;
    const vsBento = row.name.startsWith('phicache') ? `${fmtRatio(row.ops / bentoOps)}×` : '';
    line(
      `| ${size.toLocaleString('en')} | ${row.op} | ${row.name} | ${fmtOps(row.ops)} | ${row.spread.toFixed(0)}% | ${fmtRatio(row.ops / lruOps)}× | ${vsBento} |`,
    );
  }
}
line();
line(
  `Heap after ${overwrites.written.toLocaleString('en')} overwrites of ${OVERWRITE_KEYS.toLocaleString('en')} keys (MemoryStore defaults, AuditTrail + FileSink, \`heapUsed\` after two \`gc()\`):`,
);
line();
line(
  '| heap after the first fill | after the overwrites | after close() | store entries | store bytes | expiry heap slots | set ops/s |',
);
line('|---:|---:|---:|---:|---:|---:|---:|');
line(
  `| ${mib(overwrites.before)} | ${mib(overwrites.after)} | ${mib(overwrites.closed)} | ${overwrites.stats.entries.toLocaleString('en')} | ${mib(overwrites.stats.bytes)} | ${overwrites.stats.heapSlots?.toLocaleString('en') ?? 'n/a'} | ${fmtOps(overwrites.setsPerSecond)} |`,
);
console.log(out.join('\n'));

await rm(home, { recursive: true, force: true });
await rm(auditParent, { recursive: true, force: true });
if (misses !== 0) {
  console.error(`error: ${misses} reads missed or came back different; the figures are not for hits`);
  process.exitCode = 1;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`);
  return n;
}
