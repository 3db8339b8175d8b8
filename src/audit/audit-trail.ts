import { randomBytes, sign } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PhiCacheError } from '../errors.js';
import { integerOption } from '../options.js';
import { DeadlineTracker } from '../runtime/deadlines.js';
import type { AuditEvent, AuditStream } from './audit-event.js';
import { type AuditKeys, macEpochOf } from './audit-keys.js';
import type { AuditSink } from './audit-sink.js';
import {
  type AuditRecord,
  type Checkpoint,
  checkpointHash,
  checkpointSigningInput,
  genesisHash,
  recordMac,
  sealRecordBody,
} from './record.js';
import { type CheckpointWitness, DirectoryWitness } from './sinks/checkpoint-witness.js';
import type { RecordSink } from './sinks/record-sink.js';

export interface AuditTrailOptions {
  readonly keys: AuditKeys;
  /** Where records go; at least one must be durable. An operation succeeds when one durable sink has its record. */
  readonly sinks: readonly RecordSink[];
  /** A checkpoint after this many records of a stream. Default 1,000; 1 to 1,000,000. */
  readonly checkpointEveryRecords?: number;
  /** A checkpoint at least this often, also when idle, in ms. Default 10,000; 100 to 3,600,000. */
  readonly checkpointEveryMs?: number;
  /** How long a record may wait for a durable sink before the operation fails closed, in ms. Default 5,000; 100 to 120,000. */
  readonly deliveryTimeoutMs?: number;
  /** This writer's chain id. Default: the start time and random bytes, new per process. */
  readonly chain?: string;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
  /**
   * Where checkpoints also go, apart from the log: a directory (on another disk or mount than the log's) or a
   * `CheckpointWitness` such as a collector. `audit verify --witness` then finds a chain, stream or tail deleted
   * together with the checkpoints that sealed it. Default: none.
   */
  readonly witness?: string | CheckpointWitness;
}

export interface AuditTrailEvents {
  /**
   * A sink or the witness failed to take a record or checkpoint; the operation still succeeded if another durable
   * sink took it (the witness is never what an operation waits for).
   */
  'sink-error': [{ sink: string; stream: AuditStream; seq: number; cause: unknown }];
}

interface StreamState {
  seq: number;
  head: string;
  lastTs: number;
  sinceCheckpoint: number;
  checkpointHash: string;
  /** Settles when the newest record has reached a durable sink (or failed to). */
  lastDelivery: Promise<unknown>;
  /** Checkpoints of a stream are made one after another, each linking to the one before. */
  checkpointing: Promise<void>;
}

const STREAMS: readonly AuditStream[] = ['access', 'admin'];

/**
 * The tamper-evident audit trail: each event becomes a record chained to the one before it by hash and MACed under
 * the stream key of its epoch, and Ed25519-signed checkpoints of each stream's head are written every N records or
 * T ms, also when idle. `write` resolves once a durable sink holds the record; when none does, it rejects, and the
 * PHI operation that asked fails closed.
 */
export class AuditTrail extends EventEmitter<AuditTrailEvents> implements AuditSink {
  readonly chain: string;
  readonly #keys: AuditKeys;
  readonly #sinks: readonly RecordSink[];
  readonly #witness: CheckpointWitness | undefined;
  readonly #durableSinks: number;
  /** One coarse timer for every record in flight, not a timer per record: a hung disk or collector cannot hang a PHI operation. */
  readonly #deadlines: DeadlineTracker;
  readonly #everyRecords: number;
  readonly #everyMs: number;
  readonly #clock: () => number;
  readonly #streams = new Map<AuditStream, StreamState>();
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(options: AuditTrailOptions) {
    super();
    if (!options.sinks.some((sink) => sink.durable))
      throw new TypeError('an audit trail needs at least one durable sink');
    this.#keys = options.keys;
    this.#sinks = [...options.sinks];
    this.#witness =
      typeof options.witness === 'string' ? new DirectoryWitness(options.witness) : options.witness;
    this.#durableSinks = this.#sinks.filter((sink) => sink.durable).length;
    this.#everyRecords = integerOption(
      'audit trail',
      'checkpointEveryRecords',
      options.checkpointEveryRecords ?? 1000,
      1,
      1_000_000,
    );
    this.#everyMs = integerOption(
      'audit trail',
      'checkpointEveryMs',
      options.checkpointEveryMs ?? 10_000,
      100,
      3_600_000,
    );
    this.#clock = options.clock ?? Date.now;
    const deliveryTimeoutMs = integerOption(
      'audit trail',
      'deliveryTimeoutMs',
      options.deliveryTimeoutMs ?? 5000,
      100,
      120_000,
    );
    this.#deadlines = new DeadlineTracker(
      deliveryTimeoutMs,
      Math.max(25, Math.floor(deliveryTimeoutMs / 4)),
      ({ command, elapsedMs }) =>
        new PhiCacheError(
          'ERR_AUDIT_UNAVAILABLE',
          `no durable audit sink took ${command} within ${elapsedMs} ms`,
        ),
    );
    this.chain = options.chain ?? defaultChainId(this.#clock());
    // The chain id names a directory: no leading dot, so `.` and `..` can never lead a sink out of its folder.
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(this.chain)) {
      throw new TypeError('a chain id is 1-64 of [A-Za-z0-9._-], starting with a letter or digit');
    }
    for (const stream of STREAMS) {
      this.#streams.set(stream, {
        seq: 0,
        head: genesisHash(this.chain, stream, 'records'),
        lastTs: 0,
        sinceCheckpoint: 0,
        checkpointHash: genesisHash(this.chain, stream, 'checkpoints'),
        lastDelivery: Promise.resolve(),
        checkpointing: Promise.resolve(),
      });
    }
    this.#timer = setInterval(() => void this.checkpoint().catch(() => undefined), this.#everyMs);
    this.#timer.unref();
    // The configuration a chain was written under is itself an admin record (an audit configuration change). It
    // opens the admin stream and names every stream of the chain, so a verifier finds a stream deleted whole.
    const opened: AuditEvent = {
      v: 1,
      stream: 'admin',
      ts: new Date(this.#clock()).toISOString(),
      actor: { service: 'phicache', principal: null },
      purpose: 'audit-configuration',
      tenant: '*',
      class: null,
      action: 'audit.open',
      key: null,
      kid: this.#keys.signingKid,
      dek: null,
      decision: null,
      outcome: { result: 'ok' },
      detail: {
        streams: STREAMS.join(','),
        sinks: this.#sinks.map((sink) => `${sink.name}${sink.durable ? '' : '(volatile)'}`).join(','),
        checkpointEveryRecords: this.#everyRecords,
        checkpointEveryMs: this.#everyMs,
        ...(this.#witness === undefined ? {} : { witness: this.#witness.name }),
      },
    };
    this.write(opened).catch(() => undefined);
  }

  write(event: AuditEvent): Promise<void> {
    if (this.#closed)
      return Promise.reject(new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit trail is closed'));
    const state = this.#streams.get(event.stream)!;
    // Time never runs backwards within a chain, so the MAC epoch of each record is at least the previous one's.
    const eventTs = Date.parse(event.ts);
    const ts = eventTs >= state.lastTs ? eventTs : Math.max(state.lastTs, this.#clock());
    const mk = macEpochOf(ts);
    const body = {
      ...event,
      ts: ts === eventTs ? event.ts : new Date(ts).toISOString(),
      chain: this.chain,
      seq: state.seq + 1,
      mk,
      prev: state.head,
    };
    const streamKey = this.#keys.streamKey(mk);
    const sealed = sealRecordBody(body, (hash) => recordMac(streamKey, hash));
    // The body becomes the record: one object per event, not three.
    const record = Object.assign(body, { hash: sealed.hash, mac: sealed.mac }) satisfies AuditRecord;
    state.seq = record.seq;
    state.head = sealed.hash;
    state.lastTs = ts;
    const delivered = this.#deliver(
      record.stream,
      record.seq,
      (sink, line) => sink.append(record, line),
      sealed.line,
    );
    state.lastDelivery = delivered.catch(() => undefined);
    state.sinceCheckpoint += 1;
    if (state.sinceCheckpoint >= this.#everyRecords)
      void this.#checkpoint(record.stream, false).catch(() => undefined);
    return delivered;
  }

  /** Writes a checkpoint of every stream now. */
  async checkpoint(): Promise<void> {
    await Promise.all(STREAMS.map((stream) => this.#checkpoint(stream, false)));
  }

  /** Writes the final checkpoints and closes the sinks. Later writes are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Refuse new records first, so that nothing lands after the final checkpoints.
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.all(STREAMS.map((stream) => this.#checkpoint(stream, true)));
    for (const sink of this.#sinks) await sink.close();
    await this.#witness?.close();
  }

  #checkpoint(stream: AuditStream, final: boolean): Promise<void> {
    const state = this.#streams.get(stream)!;
    const { seq, head } = state;
    state.sinceCheckpoint = 0;
    const run = state.checkpointing.then(async () => {
      // A checkpoint vouches only for records already held by a durable sink, so a crash cannot leave one that
      // claims more than the log holds.
      await state.lastDelivery;
      const unsigned: Omit<Checkpoint, 'sig'> = {
        v: 1,
        type: 'checkpoint',
        chain: this.chain,
        stream,
        seq,
        head,
        ts: new Date(Math.max(this.#clock(), state.lastTs)).toISOString(),
        everyMs: this.#everyMs,
        everyRecords: this.#everyRecords,
        prevCheckpoint: state.checkpointHash,
        final,
        kid: this.#keys.signingKid,
      };
      const checkpoint: Checkpoint = {
        ...unsigned,
        sig: sign(null, checkpointSigningInput(unsigned), this.#keys.signingKey).toString('base64'),
      };
      state.checkpointHash = checkpointHash(checkpoint);
      const line = JSON.stringify(checkpoint);
      await this.#deliver(stream, seq, (sink, text) => sink.appendCheckpoint(checkpoint, text), line);
      // The witness gets a checkpoint only once the log holds it, so an outage of the log never leaves the witness
      // holding more than the log, which would read as a deletion. It is not awaited: the witness keeps the order
      // it receives, and `close` waits for it.
      const witness = this.#witness;
      witness?.appendCheckpoint(checkpoint, line).catch((cause: unknown) => {
        this.emit('sink-error', { sink: witness.name, stream, seq, cause });
      });
    });
    state.checkpointing = run.catch(() => undefined);
    return run;
  }

  /** Hands one line to every sink; resolves when a durable sink has it, rejects when no durable sink can. */
  #deliver(
    stream: AuditStream,
    seq: number,
    append: (sink: RecordSink, line: string) => Promise<void>,
    line: string,
  ): Promise<void> {
    return new Promise((resolve, reject) => {
      const pending = this.#deadlines.start(`${stream} record ${seq}`, reject);
      let durableLeft = this.#durableSinks;
      const causes: unknown[] = [];
      for (const sink of this.#sinks) {
        append(sink, line).then(
          () => {
            if (sink.durable && this.#deadlines.finish(pending)) resolve();
          },
          (cause: unknown) => {
            this.emit('sink-error', { sink: sink.name, stream, seq, cause });
            if (!sink.durable) return;
            causes.push(cause);
            durableLeft -= 1;
            if (durableLeft === 0 && this.#deadlines.finish(pending)) {
              const message = `no durable audit sink took ${stream} record ${seq}`;
              reject(
                new PhiCacheError('ERR_AUDIT_UNAVAILABLE', message, { cause: new AggregateError(causes) }),
              );
            }
          },
        );
      }
    });
  }
}

function defaultChainId(now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}
