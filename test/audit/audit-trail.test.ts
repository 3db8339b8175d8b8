import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openAuditKeys } from '../../src/audit/audit-keys.js';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { readAuditLog } from '../../src/audit/read-log.js';
import type { Checkpoint } from '../../src/audit/record.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { HttpForwarder } from '../../src/audit/sinks/http-forwarder.js';
import type { RecordSink } from '../../src/audit/sinks/record-sink.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { CheckpointWitness } from './checkpoint-witness.js';
import { SwitchableSink } from './switchable-sink.js';
import { event, FIXTURE_START, keys } from './trail-fixture.js';

const tempDir = () => mkdtemp(join(tmpdir(), 'phicache-trail-'));

describe('AuditTrail', () => {
  test('with every sink failing, a write is refused with ERR_AUDIT_UNAVAILABLE', async () => {
    const a = new SwitchableSink('a');
    const b = new SwitchableSink('b');
    a.down = true;
    b.down = true;
    const trail = new AuditTrail({ keys, sinks: [a, b] });
    await assert.rejects(trail.write(event('access', Date.now())), (error: unknown) => {
      return error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE';
    });
    a.down = false;
    b.down = false;
    await trail.close();
  });

  test('with one of two sinks failing, the write succeeds and the partial failure is reported', async () => {
    const a = new SwitchableSink('a');
    const b = new SwitchableSink('b');
    b.down = true;
    const trail = new AuditTrail({ keys, sinks: [a, b] });
    const reported: string[] = [];
    trail.on('sink-error', (failure) => reported.push(`${failure.sink}:${failure.stream}:${failure.seq}`));
    await trail.write(event('access', Date.now()));
    const records = a.lines.map((line) => JSON.parse(line)).filter((line) => line.type !== 'checkpoint');
    assert.equal(records.filter((record) => record.stream === 'access').length, 1);
    assert.ok(reported.includes('b:access:1'), reported.join());
    b.down = false;
    await trail.close();
  });

  test('a durable sink that never answers (a hung disk) fails the write within deliveryTimeoutMs', async () => {
    const hung: RecordSink = {
      name: 'hung',
      durable: true,
      appendBatch: () => new Promise(() => undefined),
      appendCheckpoint: () => new Promise(() => undefined),
      close: async () => {},
    };
    const trail = new AuditTrail({ keys, sinks: [hung], deliveryTimeoutMs: 200 });
    // The monotonic clock: a step of the wall clock cannot make the wait look shorter or longer than it was.
    const started = performance.now();
    await assert.rejects(trail.write(event('access', Date.now())), (error: unknown) => {
      return error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE';
    });
    const elapsed = performance.now() - started;
    // Never before the deadline; a sweep delayed by a loaded machine is late, a hang never ends.
    assert.ok(elapsed >= 200 && elapsed < 10 * 200, `failed after ${Math.round(elapsed)} ms`);
  });

  test('a trail without a durable sink is refused at construction, and bad options are RangeErrors', () => {
    const volatile = { ...new SwitchableSink('x'), durable: false } as unknown as RecordSink;
    assert.throws(() => new AuditTrail({ keys, sinks: [volatile] }), TypeError);
    assert.throws(
      () => new AuditTrail({ keys, sinks: [new SwitchableSink('a')], checkpointEveryMs: 5 }),
      RangeError,
    );
    assert.throws(
      () => new AuditTrail({ keys, sinks: [new SwitchableSink('a')], checkpointEveryRecords: 0 }),
      RangeError,
    );
  });

  test('checkpoints come every T ms also when idle, signed, and the idle log verifies', {
    timeout: 30_000,
  }, async () => {
    const dir = await tempDir();
    const witness = new CheckpointWitness();
    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir }), witness], checkpointEveryMs: 100 });
    // No record is written: only the timer can make these.
    await witness.seen('access', 3);
    await trail.close();
    const files = await readAuditLog(dir);
    const access = files.find((f) => f.path.endsWith('access-checkpoints.jsonl')) as { text: string };
    const checkpoints = access.text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Checkpoint);
    assert.ok(checkpoints.length >= 3, `${checkpoints.length} checkpoints`);
    assert.ok(checkpoints.every((c) => c.seq === 0));
    assert.equal(checkpoints.at(-1)?.final, true);
    assert.deepEqual((await verifyAuditLog(files, { publicKey: keys.publicKey })).findings, []);
  });

  test('records are on disk when the write resolves (group commit, fsync per batch)', async () => {
    const dir = await tempDir();
    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })] });
    await Promise.all(Array.from({ length: 50 }, (_, i) => trail.write(event('access', Date.now() + i))));
    const text = await readFile(join(dir, trail.chain, 'access-000001.jsonl'), 'utf8');
    assert.equal(text.trimEnd().split('\n').length, 50);
    await trail.close();
  });

  test('the file sink rotates records files by age', async () => {
    const dir = await tempDir();
    const clock = { now: FIXTURE_START };
    // One clock for the trail and its sink: the records' timestamps and the file ages tell the same time.
    const trail = new AuditTrail({
      keys,
      sinks: [new FileSink({ dir, maxFileAgeMs: 1000, clock: () => clock.now })],
      clock: () => clock.now,
    });
    for (let i = 0; i < 3; i++) {
      await trail.write(event('access', clock.now));
      clock.now += 1000;
    }
    await trail.close();
    const names = (await readdir(join(dir, trail.chain))).filter((n) => n.startsWith('access-0'));
    assert.deepEqual(names.sort(), ['access-000001.jsonl', 'access-000002.jsonl', 'access-000003.jsonl']);
    assert.equal(
      (await verifyAuditLog(await readAuditLog(dir), { publicKey: keys.publicKey, now: clock.now })).ok,
      true,
    );
  });

  test('the HTTP forwarder posts NDJSON batches to a collector, and a failing collector is a sink error', {
    timeout: 30_000,
  }, async () => {
    const received: string[] = [];
    let status = 200;
    const collector = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      request.on('end', () => {
        if (status === 200) received.push(...body.trimEnd().split('\n'));
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/audit`;
    const dir = await tempDir();
    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir }), new HttpForwarder({ url })] });
    const errors: string[] = [];
    trail.on('sink-error', (failure) => errors.push(failure.sink));
    await Promise.all(Array.from({ length: 20 }, (_, i) => trail.write(event('access', Date.now() + i))));
    // The file sink answers first; wait until the collector has the batch too before it starts failing.
    const accessReceived = () =>
      received.filter((l) => JSON.parse(l).stream === 'access' && JSON.parse(l).seq).length;
    for (let waited = 0; accessReceived() < 20 && waited < 5000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    status = 503;
    const refused = once(trail, 'sink-error');
    await trail.write(event('admin', Date.now()));
    // The write resolved when the file sink had it; the collector's refusal comes when the forwarder posts.
    await refused;
    status = 200;
    await trail.close();
    collector.close();
    assert.ok(accessReceived() >= 20);
    assert.ok(
      received.some((l) => JSON.parse(l).type === 'checkpoint'),
      'the collector witnesses checkpoints',
    );
    assert.ok(errors.includes('http'));
  });

  test('audit keys come from the key provider, kept wrapped, with the public key at $PHICACHE_HOME/audit-signing.pub', async () => {
    const home = await tempDir();
    const provider = await LocalKeyring.open({ home, env: {}, domain: 'audit' });
    const first = await openAuditKeys({ provider, home });
    const second = await openAuditKeys({ provider, home });
    assert.equal(first.signingKid, second.signingKid);
    assert.deepEqual(first.streamKey(5), second.streamKey(5));
    assert.notDeepEqual(first.streamKey(5), first.streamKey(6));
    const pem = await readFile(join(home, 'audit-signing.pub'), 'utf8');
    assert.ok(createPublicKey(pem).equals(first.publicKey));
    const stored = await readFile(join(home, 'keyring', 'audit-keys.json'), 'utf8');
    assert.ok(!stored.includes(first.streamKey(5).toString('base64')));
  });
});
