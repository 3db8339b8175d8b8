import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import type { Checkpoint } from '../../src/audit/record.js';
import type { CheckpointWitness } from '../../src/audit/sinks/checkpoint-witness.js';
import { SwitchableSink } from './switchable-sink.js';
import { event, FIXTURE_START, keys } from './trail-fixture.js';

/** A witness that keeps what it gets, and fails on demand (a collector down). */
class RecordingWitness implements CheckpointWitness {
  readonly name = 'recording-witness';
  readonly checkpoints: Checkpoint[] = [];
  down = false;
  async appendCheckpoint(checkpoint: Checkpoint): Promise<void> {
    if (this.down) throw new Error('the witness is down');
    this.checkpoints.push(checkpoint);
  }
  async close(): Promise<void> {}
}

describe('AuditTrail witness', () => {
  const trailWith = (sink: SwitchableSink, witness: CheckpointWitness) => {
    const clock = { now: FIXTURE_START };
    const trail = new AuditTrail({
      keys,
      sinks: [sink],
      witness,
      chain: 'witnessed',
      checkpointEveryRecords: 1_000_000,
      checkpointEveryMs: 3_600_000,
      deliveryTimeoutMs: 100,
      clock: () => (clock.now += 1000),
    });
    return { trail, clock };
  };

  test('the witness knows the chain from its first moment, the opening record names it, and it gets each checkpoint the log holds', async () => {
    const sink = new SwitchableSink('log');
    const witness = new RecordingWitness();
    const { trail, clock } = trailWith(sink, witness);
    await trail.write(event('access', clock.now));
    await trail.checkpoint();
    await trail.close();
    const lines = sink.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    // A checkpoint of each stream at seq 0 comes before any record.
    assert.deepEqual(
      lines
        .slice(0, 2)
        .map((line) => [line.type, line.stream, line.seq])
        .sort(),
      [
        ['checkpoint', 'access', 0],
        ['checkpoint', 'admin', 0],
      ],
    );
    const opening = lines[2] as { action: string; seq: number; detail: Record<string, unknown> };
    assert.equal(opening.action, 'audit.open');
    assert.equal(opening.seq, 1);
    assert.equal(opening.detail.witness, 'recording-witness');
    const logged = sink.lines.filter((line) => line.includes('"type":"checkpoint"'));
    assert.deepEqual(
      witness.checkpoints.map((c) => JSON.stringify(c)),
      logged,
      'the same checkpoints, in the same order',
    );
    assert.equal(witness.checkpoints.length, 6, 'access and admin, at open, at the checkpoint and at close');
  });

  test('a checkpoint the log did not take never reaches the witness', async () => {
    const sink = new SwitchableSink('log');
    const witness = new RecordingWitness();
    const { trail, clock } = trailWith(sink, witness);
    await trail.write(event('access', clock.now));
    const heldBefore = witness.checkpoints.length;
    sink.down = true;
    await assert.rejects(trail.checkpoint());
    assert.equal(
      witness.checkpoints.length,
      heldBefore,
      'the witness would otherwise hold more than the log',
    );
    const logged = sink.lines.filter((line) => line.includes('"type":"checkpoint"'));
    assert.deepEqual(
      witness.checkpoints.map((c) => JSON.stringify(c)),
      logged,
    );
    sink.down = false;
    await trail.close();
  });

  test('a witness that fails is a sink error, never a failed operation', async () => {
    const sink = new SwitchableSink('log');
    const witness = new RecordingWitness();
    witness.down = true;
    const { trail, clock } = trailWith(sink, witness);
    const errors: string[] = [];
    trail.on('sink-error', ({ sink: name, stream }) => errors.push(`${name} ${stream}`));
    await trail.write(event('access', clock.now));
    await trail.checkpoint();
    await trail.close();
    // At open, at the checkpoint and at close, for each stream.
    assert.deepEqual(errors.sort(), [
      'recording-witness access',
      'recording-witness access',
      'recording-witness access',
      'recording-witness admin',
      'recording-witness admin',
      'recording-witness admin',
    ]);
  });
});
