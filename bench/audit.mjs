// Audit trail throughput: appends with durable group commit (AuditTrail + FileSink, many concurrent
// writers, each awaiting its record on disk as a PHI operation does), then verification of the log just written.
// A reference floor (a naive single-threaded writer: ~130k appends/s, ~160k verified/s) is printed beside.
// Prints markdown on stdout.
//
// It imports the built package by path (`npm run build` in the repository root first), including internals such
// as the canonical serializer that it times step by step.
//
// Knobs (environment): BENCH_AUDIT_WRITERS concurrent writers (default 64), BENCH_AUDIT_MS per append run (default
// 3000), BENCH_AUDIT_DIR parent of the log directory (default the OS temp dir: put it on the disk you care about).

import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

// Every fdatasync is counted and timed (the number of group commits and the time the disk took). The file sink
// calls fs.fdatasync; the patch is in place before the build is imported, so its bindings see it.
const syncs = { count: 0, ms: 0, enabled: true };
const realFdatasync = fs.fdatasync;
fs.fdatasync = (fd, callback) => {
  if (!syncs.enabled) return process.nextTick(callback, null);
  const start = performance.now();
  realFdatasync(fd, (error) => {
    syncs.count += 1;
    syncs.ms += performance.now() - start;
    callback(error);
  });
};
syncBuiltinESMExports();

const build = new URL('../build/src/audit/', import.meta.url);
const { auditKeysFrom } = await import(new URL('audit-keys.js', build).href);
const { AuditTrail } = await import(new URL('audit-trail.js', build).href);
const { FileSink } = await import(new URL('sinks/file-sink.js', build).href);
const { readAuditLog } = await import(new URL('read-log.js', build).href);
const { verifyAuditLog } = await import(new URL('verify.js', build).href);
const { canonicalJson } = await import(new URL('canonical-json.js', build).href);

const WRITERS = positiveInt('BENCH_AUDIT_WRITERS', 64);
const RUN_MS = positiveInt('BENCH_AUDIT_MS', 3000);
const PARENT = process.env.BENCH_AUDIT_DIR ?? tmpdir();
const FLOOR = { append: 130_000, verify: 160_000 };

const streamRoot = randomBytes(32);
const keys = auditKeysFrom(randomBytes(32), streamRoot);

let counter = 0;
let isoMs = 0;
let iso = '';
/** An access event as PhiCache emits it for a cache read: ids and hashes only. */
function accessEvent() {
  counter += 1;
  const now = Date.now();
  // As PhiCache stamps it: epoch ms, and the ISO text made once per millisecond.
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return {
    v: 1,
    stream: 'access',
    ts: iso,
    at: now,
    actor: { service: 'patient-portal', principal: `clinician-${counter % 97}` },
    purpose: 'treatment',
    tenant: 'st-marys',
    class: 'encrypted-phi',
    action: counter % 4 === 0 ? 'set' : 'get',
    key: `hmac-sha256:${counter.toString(36).padStart(43, 'x')}`,
    kid: 'local:cache:v1',
    dek: 'dek:2026-11-23:0001',
    decision: { effect: 'allow', rule: 'POL-ALLOW-01' },
    outcome: { result: counter % 3 ? 'hit' : 'miss' },
  };
}

/** A durable sink that keeps nothing: what the trail itself costs (JSON, canonical JSON, SHA-256, HMAC). */
const nullSink = () => ({
  name: 'null',
  durable: true,
  appendBatch: async () => {},
  appendCheckpoint: async () => {},
  close: async () => {},
});

/** `writers` loops, each awaiting its own write before the next, for RUN_MS; then the trail is closed. */
async function appendRun(label, sink, { fsync, durability = 'durable', writers = WRITERS }) {
  const trail = new AuditTrail({ keys, sinks: [sink], durability });
  // The chain opens (checkpoints, audit.open) before the clock starts.
  await trail.checkpoint();
  syncs.enabled = fsync;
  syncs.count = 0;
  syncs.ms = 0;
  const latencies = [];
  let written = 0;
  const started = performance.now();
  const deadline = started + RUN_MS;
  const writer = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await trail.write(accessEvent());
      latencies.push(performance.now() - t0);
      written += 1;
    }
  };
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: writers }, writer));
  const elapsed = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const synced = { count: syncs.count, ms: syncs.ms };
  await trail.close();
  syncs.enabled = true;
  latencies.sort((a, b) => a - b);
  return {
    label,
    written,
    perSecond: (written / elapsed) * 1000,
    p50: latencies[Math.floor(latencies.length * 0.5)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
    cpuShare: (cpu.user + cpu.system) / 1000 / elapsed,
    syncs: synced.count,
    syncMsShare: synced.ms / elapsed,
    chain: trail.chain,
    cpuMicrosPerRecord: (cpu.user + cpu.system) / written,
  };
}

async function timed(fn) {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const dir = await mkdtemp(join(PARENT, 'phicache-bench-audit-'));
try {
  // Warm-up: the JIT sees the trail's paths before anything is measured.
  await appendRun('warm-up', nullSink(), { fsync: false }).then(() => undefined);
  const cpuOnly = await appendRun('trail only (null durable sink)', nullSink(), { fsync: false });
  const scratch = await mkdtemp(join(PARENT, 'phicache-bench-audit-nosync-'));
  const written = await appendRun(
    'FileSink, `written` (the access default: synced every 5 ms)',
    new FileSink({ dir: scratch }),
    { fsync: true, durability: 'written' },
  );
  const lone = await appendRun('FileSink, `written`, one lone caller', new FileSink({ dir: scratch }), {
    fsync: true,
    durability: 'written',
    writers: 1,
  });
  await rm(scratch, { recursive: true, force: true });
  const durable = await appendRun('FileSink, `durable` group commit', new FileSink({ dir }), {
    fsync: true,
    durability: 'durable',
  });

  const read = await timed(() => readAuditLog(dir));
  const files = read.value;
  const runs = { pub: [], mac: [] };
  let report;
  for (let i = 0; i < 3; i++) {
    const pub = await timed(() => verifyAuditLog(files, { publicKey: keys.publicKey }));
    const mac = await timed(() => verifyAuditLog(files, { publicKey: keys.publicKey, streamRoot }));
    runs.pub.push(pub.ms);
    runs.mac.push(mac.ms);
    report = mac.value;
  }
  if (!report.ok)
    throw new Error(`the log just written does not verify: ${JSON.stringify(report.findings[0])}`);
  const bytes = files.reduce((sum, f) => sum + Buffer.byteLength(f.text), 0);

  // The steps one record is made of (and checked by), alone, on one record of this log: where the time goes.
  const line = files[0].text.slice(files[0].text.indexOf('\n') + 1).split('\n')[0];
  const sample = JSON.parse(line);
  const { hash: _hash, mac: _mac, ...body } = sample;
  const canonical = canonicalJson(body);
  const macKey = randomBytes(32);
  const parts = [
    ['canonical JSON of the record (for its hash)', () => canonicalJson(body)],
    ['SHA-256 of it, hex', () => createHash('sha256').update(canonical).digest('hex')],
    ['HMAC-SHA256 of the hash, hex', () => createHmac('sha256', macKey).update(sample.hash).digest('hex')],
    ['JSON.stringify of the line', () => JSON.stringify(sample)],
    ['JSON.parse of the line', () => JSON.parse(line)],
  ].map(([name, fn]) => [name, microseconds(fn)]);

  const fmt = (n) => Math.round(n).toLocaleString('en-US');
  const ms = (n) => n.toFixed(2);
  const out = [];
  out.push(
    `Node ${process.version}, ${cpus().length} x ${cpus()[0]?.model.trim()}, load ${loadavg()[0]?.toFixed(2)}; ` +
      `${WRITERS} concurrent writers, ${RUN_MS} ms per append run, log on ${PARENT}.`,
  );
  out.push('');
  out.push(
    '| appends | records/s | vs floor | p50 ms | p99 ms | CPU (cores) | CPU µs/record | datasyncs | records/datasync | time in datasync |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of [cpuOnly, written, lone, durable]) {
    out.push(
      `| ${r.label} | ${fmt(r.perSecond)} | ${(r.perSecond / FLOOR.append).toFixed(2)}x | ${ms(r.p50)} | ${ms(r.p99)} | ` +
        `${r.cpuShare.toFixed(2)} | ${r.cpuMicrosPerRecord.toFixed(2)} | ${r.syncs ? fmt(r.syncs) : '-'} | ${r.syncs ? fmt(r.written / r.syncs) : '-'} | ` +
        `${r.syncs ? `${Math.round(r.syncMsShare * 100)}%` : '-'} |`,
    );
  }
  out.push(
    `| floor (naive single writer, fsync every 5 ms; a reference figure) | ${fmt(FLOOR.append)} | 1.00x | | | | | | | |`,
  );
  out.push('');
  const records = report.records;
  out.push(
    `Verification of the durable run's log: ${fmt(records)} records, ${(bytes / 1048576).toFixed(1)} MiB in ${files.length} files (median of 3).`,
  );
  out.push('');
  out.push('| verify | ms | records/s | vs floor |');
  out.push('|---|---:|---:|---:|');
  out.push(
    `| readAuditLog (read and decode the files) | ${fmt(read.ms)} | ${fmt((records / read.ms) * 1000)} | |`,
  );
  const pubMs = median(runs.pub);
  const macMs = median(runs.mac);
  out.push(
    `| verifyAuditLog, public key (hash chain + checkpoint signatures) | ${fmt(pubMs)} | ${fmt((records / pubMs) * 1000)} | ${(((records / pubMs) * 1000) / FLOOR.verify).toFixed(2)}x |`,
  );
  out.push(
    `| verifyAuditLog, + stream root (every MAC and epoch too) | ${fmt(macMs)} | ${fmt((records / macMs) * 1000)} | ${(((records / macMs) * 1000) / FLOOR.verify).toFixed(2)}x |`,
  );
  out.push(`| floor (naive verifier; a reference figure) | | ${fmt(FLOOR.verify)} | 1.00x |`);
  out.push('');
  out.push(`| one step, alone (${Buffer.byteLength(JSON.stringify(sample))}-byte record) | µs |`);
  out.push('|---|---:|');
  for (const [name, us] of parts) out.push(`| ${name} | ${us.toFixed(2)} |`);
  process.stdout.write(`${out.join('\n')}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

function microseconds(fn) {
  for (let i = 0; i < 20_000; i++) fn();
  const n = 100_000;
  const start = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - start) * 1000) / n;
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer`);
  return value;
}
