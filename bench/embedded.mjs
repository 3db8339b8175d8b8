// Embedded throughput of phicache against in-process peers, in one process and one run, so that the ratios
// compare like with like: same machine, same moment, same values, same working set. Prints markdown on stdout.
//
// Each tinybench iteration is a batch of BATCH operations over a rotating working set of KEYS keys, so the timer
// (about 0.1 µs a call) is paid once per batch, not once per 0.05 µs lru-cache read. Async caches are awaited one
// operation at a time, as a request handler would; lru-cache is called synchronously, as it is used.
//
// phicache's own figures are for phicache as users run it: a real AuditTrail over a FileSink at its default
// durability: access records `written` (an operation answers once its record is in the operating system, synced
// within 5 ms), admin records `durable`. The same cache without its audit trail
// is a labelled breakdown row, to show what the trail costs, never a figure of phicache's.
//
// Knobs (environment): BENCH_TIME_MS per measured task (default 2000), BENCH_KEYS (default 10000), BENCH_AUDIT_DIR
// parent of the audit log (default the OS temp dir: put it on the disk you care about).

import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes } from 'node:crypto';
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
import { Bench } from 'tinybench';

const KEYS = positiveInt('BENCH_KEYS', 10_000);
const TIME_MS = positiveInt('BENCH_TIME_MS', 2000);
const WARMUP_MS = Math.min(500, TIME_MS);
const COMPONENT_TIME_MS = Math.max(200, Math.round(TIME_MS / 2));
const BATCH = 200;
const TTL_MS = 300_000; // the encrypted-phi cap; every cache gets the same TTL, so every one pays for expiry checks
const CLASS = 'encrypted-phi';
const RESOURCE = 'lab-summary';
const CTX = Object.freeze({ tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' });

// A lab summary with a ~1 KiB free-text field: JSON of about 1.1 KiB. Deterministic, and not one repeated byte.
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
const VALUE_BYTES = Buffer.byteLength(JSON.stringify(VALUE));

const ids = Array.from({ length: KEYS }, (_, i) => `MRN${String(i).padStart(6, '0')}`);
const refs = ids.map((id) => Object.freeze({ class: CLASS, resource: RESOURCE, id }));
const plainKeys = ids.map((id) => `${RESOURCE}:${id}`);
let cursor = 0;
const nextIndex = () => {
  cursor = cursor + 1 === KEYS ? 0 : cursor + 1;
  return cursor;
};
let misses = 0;
let factoryCalls = 0;
const factory = () => {
  factoryCalls += 1;
  return VALUE;
};

/** An audit sink that drops every event: only for the breakdown row "phicache without its audit trail". */
const noopAudit = { write: async () => {}, close: async () => {} };

// ---------------------------------------------------------------------------------------------------- the caches

const loadAtStart = loadavg()[0];
const home = await mkdtemp(join(tmpdir(), 'phicache-bench-'));
const policy = await loadDefaultPolicy();
const keys = await LocalKeyring.open({ home, env: {} });
const storeOptions = { maxEntries: KEYS * 2, maxBytes: 256 * 1024 * 1024 };
const auditDir = await mkdtemp(join(process.env.BENCH_AUDIT_DIR ?? tmpdir(), 'phicache-bench-audit-'));
const auditKeys = await openAuditKeys({
  home,
  provider: await LocalKeyring.open({ home, domain: 'audit', env: {} }),
});
// The trail as PhiCache users build it: a FileSink with its defaults (access records `written`, synced within 5 ms).
const trail = new AuditTrail({ keys: auditKeys, sinks: [new FileSink({ dir: auditDir })] });
const phiReal = await PhiCache.create({
  service: 'bench',
  policy,
  keys,
  audit: trail,
  store: new MemoryStore(storeOptions),
});
const phiNoop = await PhiCache.create({
  service: 'bench',
  policy,
  keys,
  audit: noopAudit,
  store: new MemoryStore(storeOptions),
});

// The least an encrypting in-process cache must do, as a caller would write it: JSON, a fresh random nonce per
// value, the key name as AAD, AES-256-GCM, a Map of sealed buffers with an expiry time. No names hidden, no policy,
// no audit. Async, as phicache is, so both are awaited the same way.
const aesKey = createSecretKey(randomBytes(32));
const aesMap = new Map();
const aesAads = plainKeys.map((k) => Buffer.from(k));
const aesWrapper = {
  async set(i) {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: 16 });
    cipher.setAAD(aesAads[i]);
    const sealed = Buffer.concat([
      nonce,
      cipher.update(JSON.stringify(VALUE), 'utf8'),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    aesMap.set(plainKeys[i], { sealed, expiresAt: Date.now() + TTL_MS });
  },
  async get(i) {
    const entry = aesMap.get(plainKeys[i]);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= Date.now()) {
      aesMap.delete(plainKeys[i]);
      return undefined;
    }
    const { sealed } = entry;
    const decipher = createDecipheriv('aes-256-gcm', aesKey, sealed.subarray(0, 12), { authTagLength: 16 });
    decipher.setAAD(aesAads[i]);
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plain = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8'));
  },
};
const lru = new LRUCache({ max: KEYS * 2, ttl: TTL_MS });
// BentoCache's defaults for its memory tier (serialize: true, so values are JSON in the L1 as in phicache).
const bento = new BentoCache({
  default: 'memory',
  stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: KEYS * 2, maxSize: '256mb' })) },
});

/** Each implementation as three operations on key index i, plus a check that a read came back whole. */
const impls = [
  {
    name: 'lru-cache',
    sync: true,
    set: (i) => lru.set(plainKeys[i], VALUE),
    get: (i) => lru.get(plainKeys[i]),
    getOrSet: (i) => {
      let v = lru.get(plainKeys[i]);
      if (v === undefined) {
        v = factory();
        lru.set(plainKeys[i], v);
      }
      return v;
    },
  },
  {
    name: 'BentoCache (memory L1)',
    set: (i) => bento.set({ key: plainKeys[i], value: VALUE, ttl: TTL_MS }),
    get: (i) => bento.get({ key: plainKeys[i] }),
    getOrSet: (i) => bento.getOrSet({ key: plainKeys[i], factory, ttl: TTL_MS }),
  },
  {
    name: 'minimal AES-256-GCM + Map wrapper',
    set: (i) => aesWrapper.set(i),
    get: (i) => aesWrapper.get(i),
    getOrSet: async (i) => {
      let v = await aesWrapper.get(i);
      if (v === undefined) {
        v = factory();
        await aesWrapper.set(i);
      }
      return v;
    },
  },
  {
    name: 'phicache (AuditTrail + FileSink)',
    set: (i) => phiReal.set(refs[i], VALUE, CTX),
    get: (i) => phiReal.get(refs[i], CTX),
    getOrSet: (i) => phiReal.getOrSet(refs[i], CTX, factory),
  },
  {
    name: 'breakdown: phicache without its audit trail',
    set: (i) => phiNoop.set(refs[i], VALUE, CTX),
    get: (i) => phiNoop.get(refs[i], CTX),
    getOrSet: (i) => phiNoop.getOrSet(refs[i], CTX, factory),
  },
];
const [lruImpl, bentoImpl, aesImpl, realImpl, noopImpl] = impls;

for (const impl of impls) {
  for (let i = 0; i < KEYS; i++) await impl.set(i);
  const back = await impl.get(KEYS - 1);
  if (back?.note !== NOTE || back.patient !== VALUE.patient)
    throw new Error(`${impl.name} did not read back the value`);
  impl.afterTask?.();
}

// ---------------------------------------------------------------------------------------------------- measuring

function batch(impl, op) {
  const fn = impl[op];
  const counts = op === 'get';
  if (impl.sync) {
    return () => {
      for (let n = 0; n < BATCH; n++) {
        const v = fn(nextIndex());
        if (counts && v === undefined) misses += 1;
      }
    };
  }
  return async () => {
    for (let n = 0; n < BATCH; n++) {
      const v = await fn(nextIndex());
      if (counts && v === undefined) misses += 1;
    }
  };
}

/** Mean ops/s of a batched task, and its relative margin of error (%). */
function opsOf(task) {
  const { latency } = task.result;
  return { ops: (BATCH * 1000) / latency.mean, rme: latency.rme };
}

const OPS = ['get', 'getOrSet', 'set'];
const ROUNDS = 2;
const perRound = new Map(); // task name -> [{ ops, rme }] over rounds
const started = performance.now();
for (let round = 0; round < ROUNDS; round++) {
  const bench = new Bench({ time: TIME_MS, warmupTime: WARMUP_MS, iterations: 16, throws: true });
  // Reads first: the set tasks overwrite the whole working set many times over, and whatever that leaves behind
  // (garbage, or memory a store still holds) should not slow the reads down. The second round runs the caches in
  // the opposite order, so that no cache always runs right after the same neighbour's garbage.
  const order = round % 2 === 0 ? impls : [...impls].reverse();
  for (const op of OPS) {
    for (const impl of order) {
      bench.add(`${op} | ${impl.name}`, batch(impl, op), {
        async: !impl.sync,
        afterAll: () => impl.afterTask?.(),
      });
    }
  }
  await bench.run();
  for (const task of bench.tasks) {
    const runs = perRound.get(task.name) ?? [];
    runs.push(opsOf(task));
    perRound.set(task.name, runs);
  }
}
const mainSeconds = (performance.now() - started) / 1000;
/** Mean ops/s over the rounds, and how far apart the rounds were (max - min over the mean, %). */
const result = new Map(
  [...perRound].map(([name, runs]) => {
    const all = runs.map((r) => r.ops);
    const ops = all.reduce((a, b) => a + b, 0) / all.length;
    return [
      name,
      {
        ops,
        spread: ((Math.max(...all) - Math.min(...all)) / ops) * 100,
        rme: Math.max(...runs.map((r) => r.rme)),
      },
    ];
  }),
);
const at = (op, impl) => result.get(`${op} | ${impl.name}`);

// ------------------------------------------------------------------------- what one phicache operation is made of
// The same primitives phicache calls, measured alone with node:crypto and the exported Policy, to attribute time.

const dekBytes = randomBytes(32);
const dekObject = createSecretKey(dekBytes);
const nameKeyBytes = randomBytes(32);
const nameKeyObject = createSecretKey(nameKeyBytes);
const nameInput = Buffer.from(`\u0000\u0000\u0000\u0006entry${CLASS}${RESOURCE}MRN000123dr.ada`); // ~ canonical parts
const payload = {
  v: VALUE,
  createdAt: Date.now(),
  expiresAt: Date.now() + TTL_MS,
  tags: [`phc:s:${'x'.repeat(43)}`, `phc:s:${'y'.repeat(43)}`],
};
const plaintext = Buffer.from(JSON.stringify(payload));
const aad = randomBytes(120); // header (~45 B) + canonical binding (tenant, class, 48-char store key)
const nonce = randomBytes(12);
function seal(key) {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(aad);
  const ct = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([aad.subarray(0, 45), nonce, ct, cipher.getAuthTag()]);
}
const sealed = seal(dekBytes);
const ct = sealed.subarray(57, sealed.length - 16);
const tag = sealed.subarray(sealed.length - 16);
function open(key) {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const out = decipher.update(ct);
  decipher.final();
  return out;
}
const writeRequest = {
  className: CLASS,
  ttlMs: undefined,
  scope: CTX,
  principal: CTX.principal,
  purpose: CTX.purpose,
  value: VALUE,
  tagKinds: [],
};
const readRequest = { className: CLASS, scope: CTX, principal: CTX.principal, purpose: CTX.purpose };

const components = [
  [
    'HMAC-SHA256 store name, Buffer key (as phicache)',
    () => createHmac('sha256', nameKeyBytes).update(nameInput).digest('base64url'),
  ],
  [
    'HMAC-SHA256 store name, KeyObject key',
    () => createHmac('sha256', nameKeyObject).update(nameInput).digest('base64url'),
  ],
  ['AES-256-GCM seal 1.2 KiB, Buffer key (as phicache)', () => seal(dekBytes)],
  ['AES-256-GCM seal 1.2 KiB, KeyObject key', () => seal(dekObject)],
  ['AES-256-GCM open 1.2 KiB, Buffer key (as phicache)', () => open(dekBytes)],
  ['AES-256-GCM open 1.2 KiB, KeyObject key', () => open(dekObject)],
  ['JSON.stringify payload + Buffer.from', () => Buffer.from(JSON.stringify(payload))],
  ['JSON.parse payload from Buffer', () => JSON.parse(plaintext.toString('utf8'))],
  ['Policy.decideWrite', () => policy.decideWrite(writeRequest, Date.now())],
  ['Policy.decideRead', () => policy.decideRead(readRequest, Date.now())],
  ['audit timestamp: new Date(now).toISOString()', () => new Date(Date.now()).toISOString()],
];
const parts = new Bench({ time: COMPONENT_TIME_MS, warmupTime: 200, iterations: 16, throws: true });
for (const [name, fn] of components) {
  parts.add(name, () => {
    for (let n = 0; n < BATCH; n++) fn();
  });
}
await parts.run();
const usOf = (task) => (task.result.latency.mean * 1000) / BATCH;

// -------------------------------------------------------------------- memory held after overwriting the working set
// A cache of KEYS entries that is overwritten again and again should hold about KEYS entries' worth of memory.

async function heldAfterOverwrites(passes) {
  const store = new MemoryStore(storeOptions);
  const cache = await PhiCache.create({ service: 'bench', policy, keys, audit: noopAudit, store });
  const external = () => {
    globalThis.gc?.();
    globalThis.gc?.();
    return process.memoryUsage().arrayBuffers;
  };
  for (let i = 0; i < KEYS; i++) await cache.set(refs[i], VALUE, CTX);
  const before = external();
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) for (let i = 0; i < KEYS; i++) await cache.set(refs[i], VALUE, CTX);
  const setsPerSecond = (passes * KEYS * 1000) / (performance.now() - t0);
  const after = external();
  const stats = store.stats();
  await cache.close();
  const released = external();
  return { passes, storeBytes: stats.bytes, entries: stats.entries, before, after, released, setsPerSecond };
}
// The caches measured above are closed first, so that what they hold does not count here.
await Promise.all([phiReal.close(), phiNoop.close(), bento.disconnectAll()]);
lru.clear();
aesMap.clear();
const held = await heldAfterOverwrites(10);

// ---------------------------------------------------------------------------------------------------- the report

const fmtOps = (n) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);
const fmtUs = (ops) => (1e6 / ops >= 10 ? (1e6 / ops).toFixed(1) : (1e6 / ops).toFixed(2));
const fmtRatio = (r) => (r >= 0.1 ? r.toFixed(2) : r >= 0.01 ? r.toFixed(3) : r.toFixed(4));
const mib = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const out = [];
const line = (s = '') => out.push(s);

line(`## phicache embedded benchmark`);
line();
line(`- date: ${new Date().toISOString()}`);
line(
  `- node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`,
);
line(
  `- values: JSON object of ${VALUE_BYTES} bytes (a ${NOTE.length}-character note); working set ${KEYS.toLocaleString('en')} keys; TTL ${TTL_MS / 1000} s; class \`${CLASS}\``,
);
line(
  `- tinybench: ${TIME_MS} ms per task after ${WARMUP_MS} ms warm-up, ${BATCH} operations per sample, ${ROUNDS} rounds (the second in reverse cache order), figures are the mean of the rounds; the matrix took ${mainSeconds.toFixed(0)} s`,
);
line(
  `- 1-minute load average: ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end (above ~1 means something else shared the ${cpus().length} cores)`,
);
line(
  `- reads that missed: ${misses} (must be 0); getOrSet factory calls during the run: ${factoryCalls} (must be 0)`,
);
line();
line(
  `### Headline: one caller's \`${CLASS}\` operations, phicache with its real audit trail relative to the minimal AES-256-GCM + Map wrapper`,
);
line();
line(
  `One caller awaiting one operation at a time, so every phicache operation waits for its own audit record to be written to the operating system (the trail's default \`written\` level for access records; its fdatasync follows within 5 ms). Higher is better; 1 = as fast as the wrapper.`,
);
line();
line(
  `| operation | wrapper µs/op | phicache (AuditTrail + FileSink) µs/op | ratio | breakdown: without its audit trail, µs/op | ratio |`,
);
line(`|---|---:|---:|---:|---:|---:|`);
for (const op of OPS) {
  const base = at(op, aesImpl).ops;
  const real = at(op, realImpl).ops;
  const noop = at(op, noopImpl).ops;
  line(
    `| ${op} | ${fmtUs(base)} | ${fmtUs(real)} | ${fmtRatio(real / base)}× | ${fmtUs(noop)} | ${fmtRatio(noop / base)}× |`,
  );
}
line();
line(`### Throughput relative to lru-cache (higher is better; 1 = as fast as lru-cache)`);
line();
line(
  `| operation | ${impls
    .slice(1)
    .map((i) => i.name)
    .join(' | ')} |`,
);
line(
  `|---|${impls
    .slice(1)
    .map(() => '---:')
    .join('|')}|`,
);
for (const op of OPS) {
  const base = at(op, lruImpl).ops;
  line(
    `| ${op} | ${impls
      .slice(1)
      .map((impl) => `${fmtRatio(at(op, impl).ops / base)}×`)
      .join(' | ')} |`,
  );
}
line();
line(`### Throughput`);
line();
line(`| operation | cache | ops/s | µs/op | rounds apart | vs lru-cache | vs BentoCache |`);
line(`|---|---|---:|---:|---:|---:|---:|`);
for (const op of OPS) {
  for (const impl of impls) {
    const { ops, spread } = at(op, impl);
    const vsBento = impl === lruImpl || impl === bentoImpl ? '' : `${fmtRatio(ops / at(op, bentoImpl).ops)}×`;
    line(
      `| ${op} | ${impl.name} | ${fmtOps(ops)} | ${fmtUs(ops)} | ${spread.toFixed(0)}% | ${fmtRatio(ops / at(op, lruImpl).ops)}× | ${vsBento} |`,
    );
  }
}
line();
line(`### Breakdown: what the audit trail costs one caller (same cache otherwise)`);
line();
line(
  `| operation | without its audit trail µs/op | AuditTrail + FileSink µs/op | µs the trail adds | with / without throughput |`,
);
line(`|---|---:|---:|---:|---:|`);
for (const op of OPS) {
  const a = at(op, noopImpl).ops;
  const b = at(op, realImpl).ops;
  line(`| ${op} | ${fmtUs(a)} | ${fmtUs(b)} | ${(1e6 / b - 1e6 / a).toFixed(1)} | ${fmtRatio(b / a)}× |`);
}
line();
line(`### Parts of one phicache operation, measured alone (µs per call)`);
line();
line(`| primitive | µs/call | ± (rme) |`);
line(`|---|---:|---:|`);
for (const task of parts.tasks)
  line(`| ${task.name} | ${usOf(task).toFixed(2)} | ${task.result.latency.rme.toFixed(1)}% |`);
line();
line(`### Memory held by a MemoryStore after overwriting the working set`);
line();
line(
  `${held.passes} passes of set over the same ${KEYS.toLocaleString('en')} keys (breakdown: without its audit trail, so that only the store's memory is measured), after a full GC:`,
);
line();
line(
  `| store says it holds | ArrayBuffer memory after the first fill | after ${held.passes} more passes | after close() | set ops/s during the passes |`,
);
line(`|---:|---:|---:|---:|---:|`);
line(
  `| ${held.entries.toLocaleString('en')} entries, ${mib(held.storeBytes)} | ${mib(held.before)} | ${mib(held.after)} | ${mib(held.released)} | ${fmtOps(held.setsPerSecond)} |`,
);
console.log(out.join('\n'));

await rm(home, { recursive: true, force: true });
await rm(auditDir, { recursive: true, force: true });
if (misses !== 0 || factoryCalls !== 0) {
  console.error(
    `error: ${misses} reads missed and the factory ran ${factoryCalls} times; the figures are not for hits`,
  );
  process.exitCode = 1;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive integer`);
  return n;
}
