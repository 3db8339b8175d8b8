import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';
import { integerOption } from '../options.js';
import { DeadlineTracker, type Pending } from '../runtime/deadlines.js';
import { type AuditEvent, type AuditStream, STREAMS } from './audit-event.js';
import { type AuditKeys, MAC_EPOCH_MS } from './audit-keys.js';
import type { AuditSink } from './audit-sink.js';
import { canonicalJson } from './canonical-json.js';
import { chainHasLog, findStreamEnd, restartNote, type StreamEnd } from './chain-recovery.js';
import {
  type AuditDurability,
  type AuditDurabilityOption,
  resolveDurability,
  resolveSyncEveryMs,
} from './durability.js';
import { isoOf } from './iso-time.js';
import { sealOrphanChains } from './orphan-chains.js';
import { causeName, type Outage, outageEvent } from './outage-record.js';
import { type Checkpoint, checkpointHash, genesisHash, type RestartNote, signCheckpoint } from './record.js';
import { RecordLineWriter } from './record-line.js';
import { RecordMacKey } from './record-mac.js';
import { sha256Hex as sha256HexOf } from './sha256.js';
import { type CheckpointWitness, DirectoryWitness } from './sinks/checkpoint-witness.js';
import { FileSink } from './sinks/file-sink.js';
import type { RecordBatch, RecordSink } from './sinks/record-sink.js';
import { acquireWriterLock, releaseWriterLock } from './writer-lock.js';

export type { AuditDurability, AuditDurabilityOption } from './durability.js';

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
  /**
   * When an operation's record counts as kept: `durable` (after the fdatasync that carried it) or `written` (in the
   * operating system, synced within `syncEveryMs`), for both streams or each. Default: access `written`, admin
   * `durable`. See `AuditDurability`.
   */
  readonly durability?: AuditDurabilityOption;
  /** The longest a `written` record waits for its fdatasync, in ms. Default 5; 1 to 1,000. */
  readonly syncEveryMs?: number;
  /**
   * This writer's chain id. Default: the start time and random bytes, new per process. A stable id (one per
   * service instance) is taken up again after a restart: the writer checks the tail the last one left and seals it
   * with a restart checkpoint before it continues (docs/audit-log.md).
   */
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
  /**
   * At start, a chain of this host whose writer died without closing it was sealed with a final restart checkpoint,
   * or could not be (its tail failed the check: `cause` says why, and the chain is left as found).
   */
  orphan: [{ chain: string; sealed: boolean; cause?: unknown }];
}

/** The callers whose records go out in one flush: one promise and one deadline for all of them. */
interface Batch {
  readonly promise: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly events: AuditEvent[];
  pending: Pending | undefined;
}

interface StreamState {
  readonly stream: AuditStream;
  readonly level: AuditDurability;
  readonly lines: RecordLineWriter;
  readonly flushSoon: () => void;
  /** The committed head: moved only once a durable sink holds the batch. */
  seq: number;
  head: string;
  lastTs: number;
  sinceCheckpoint: number;
  checkpointHash: string;
  queued: Batch | undefined;
  flushing: Promise<void> | undefined;
  outage: Outage | undefined;
  /** The next batch starts a new records file (after an outage). */
  newSegment: boolean;
  /** The first checkpoint of this writer: made at open, with the restart note when the chain was taken up. */
  opened: boolean;
  restart: RestartNote | undefined;
  /** Checkpoints of a stream are made one after another, each linking to the one before. */
  checkpointing: Promise<void>;
}

/**
 * The tamper-evident audit trail. Events queue per stream; one flush seals the queued batch from the committed
 * head (seq, prev, hash, MAC per record), hands its text to the sinks, and only when a durable sink holds it moves
 * the head and answers every caller of the batch. When none does, nothing moves, the batch's callers are refused
 * (ERR_AUDIT_UNAVAILABLE, and the PHI operation that asked fails closed) and an outage begins: the first batch taken
 * again starts with an `audit.outage` record, so a gap in the log reads as what it was. Ed25519-signed checkpoints
 * of each stream's head are written at open, every N records and every T ms, also when idle, and at close.
 */
export class AuditTrail extends EventEmitter<AuditTrailEvents> implements AuditSink {
  readonly chain: string;
  readonly #keys: AuditKeys;
  readonly #sinks: readonly RecordSink[];
  readonly #witness: CheckpointWitness | undefined;
  readonly #durableSinks: number;
  /** One coarse timer for every batch in flight, not a timer per record: a hung disk cannot hang a PHI operation. */
  readonly #deadlines: DeadlineTracker;
  readonly #everyRecords: number;
  readonly #everyMs: number;
  readonly #syncEveryMs: number;
  readonly #levels: Record<AuditStream, AuditDurability>;
  readonly #clock: () => number;
  readonly #streams: Record<AuditStream, StreamState>;
  readonly #timer: NodeJS.Timeout;
  /** The directory of the first file sink: where the writer lock lives and where restarts and orphans are found. */
  readonly #logDir: string | undefined;
  readonly #starting: Promise<void>;
  #macEpoch = Number.NaN;
  #macKey: RecordMacKey | undefined;
  #lockHeld = false;
  /** Set when the chain cannot be written at all (held by a live writer, or damaged). */
  #fatal: PhiCacheError | undefined;
  /** True once the opening checkpoints and the `audit.open` record are held by a durable sink. */
  #ready = false;
  #opening: Promise<void> | undefined;
  #closed = false;

  constructor(options: AuditTrailOptions) {
    super();
    if (!Array.isArray(options.sinks) || !options.sinks.some((sink) => sink.durable))
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
    this.#syncEveryMs = resolveSyncEveryMs(options.syncEveryMs);
    this.#levels = resolveDurability(options.durability);
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
    this.#logDir = this.#sinks.find((sink): sink is FileSink => sink instanceof FileSink)?.dir;
    const stateOf = (stream: AuditStream): StreamState => {
      const state: StreamState = {
        stream,
        level: this.#levels[stream],
        lines: new RecordLineWriter(this.chain, stream),
        flushSoon: () => this.#flush(state),
        seq: 0,
        head: genesisHash(this.chain, stream, 'records'),
        lastTs: 0,
        sinceCheckpoint: 0,
        checkpointHash: genesisHash(this.chain, stream, 'checkpoints'),
        queued: undefined,
        flushing: undefined,
        outage: undefined,
        newSegment: false,
        opened: false,
        restart: undefined,
        checkpointing: Promise.resolve(),
      };
      return state;
    };
    this.#streams = { access: stateOf('access'), admin: stateOf('admin') };
    this.#timer = setInterval(() => void this.checkpoint().catch(() => undefined), this.#everyMs);
    this.#timer.unref();
    // Taking up the chain reads files: it runs now, and writes wait for it.
    this.#starting = this.#start();
  }

  write(event: AuditEvent): Promise<void> {
    if (this.#closed)
      return Promise.reject(new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit trail is closed'));
    if (this.#ready) return this.#enqueue(event);
    return this.#whenOpen(event.stream).then(() => this.#enqueue(event));
  }

  /** Writes a checkpoint of every stream now. */
  async checkpoint(): Promise<void> {
    await this.#starting;
    if (this.#fatal !== undefined) throw this.#fatal;
    await Promise.all(STREAMS.map((stream) => this.#checkpoint(this.#streams[stream], false)));
  }

  /** Writes what is queued, then the final checkpoints, and closes the sinks. Later writes are refused. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Refuse new records first, so that nothing lands after the final checkpoints.
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#starting;
    try {
      if (this.#fatal === undefined) {
        for (const stream of STREAMS) {
          const state = this.#streams[stream];
          // An outage that no later record closed is still written down before the final checkpoint.
          if (this.#ready && state.outage !== undefined && state.queued === undefined)
            state.queued = this.#newBatch(state);
          while (state.flushing !== undefined || state.queued !== undefined) {
            if (state.flushing === undefined) this.#flush(state);
            await state.flushing;
          }
        }
        await Promise.all(STREAMS.map((stream) => this.#checkpoint(this.#streams[stream], true)));
      }
    } finally {
      for (const sink of this.#sinks) await sink.close();
      await this.#witness?.close();
      this.#deadlines.clear(new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit trail is closed'));
      if (this.#lockHeld && this.#logDir !== undefined)
        await releaseWriterLock(join(this.#logDir, this.chain));
      this.#lockHeld = false;
    }
  }

  async #whenOpen(stream: AuditStream): Promise<void> {
    await this.#starting;
    if (this.#fatal !== undefined) throw this.#fatal;
    if (this.#ready) return;
    try {
      this.#opening ??= this.#open().finally(() => {
        this.#opening = undefined;
      });
      await this.#opening;
    } catch (cause) {
      const state = this.#streams[stream];
      if (state !== undefined) this.#beginOutage(state, cause, 1);
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit trail could not open its chain', { cause });
    }
  }

  async #start(): Promise<void> {
    try {
      if (this.#logDir !== undefined) {
        await this.#takeUpChain(this.#logDir);
        await sealOrphanChains(this.#logDir, this.chain, {
          keys: this.#keys,
          everyMs: this.#everyMs,
          everyRecords: this.#everyRecords,
          clock: this.#clock,
          sealed: (checkpoint, line) => this.#toWitness(checkpoint, line),
          orphan: (event) => this.emit('orphan', event),
        });
      }
    } catch (error) {
      this.#fatal =
        error instanceof PhiCacheError
          ? error
          : new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `audit chain ${this.chain} could not be opened`, {
              cause: error,
            });
      return;
    }
    this.#opening = this.#open().finally(() => {
      this.#opening = undefined;
    });
    // A failed open is tried again by the next write, which fails with its cause until it succeeds.
    await this.#opening.catch(() => undefined);
  }

  /**
   * The chain's first moment: a checkpoint of every stream (seq 0, or the restart checkpoint sealing what the last
   * writer left), so a witness knows the chain at once, then the `audit.open` record, which must not be lost: until
   * a durable sink holds it, every write fails.
   */
  async #open(): Promise<void> {
    await Promise.all(
      STREAMS.map(async (stream) => {
        const state = this.#streams[stream];
        if (state.opened) return;
        await this.#checkpoint(state, false, state.restart);
        state.opened = true;
      }),
    );
    await this.#enqueue(this.#openingEvent());
    this.#ready = true;
  }

  #openingEvent(): AuditEvent {
    const now = this.#clock();
    // The configuration a chain was written under is itself an admin record (an audit configuration change). It
    // opens the admin stream and names every stream of the chain, so a verifier finds a stream deleted whole.
    return {
      v: 1,
      stream: 'admin',
      ts: isoOf(now),
      at: now,
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
        durability: `access=${this.#levels.access},admin=${this.#levels.admin}`,
        syncEveryMs: this.#syncEveryMs,
        ...(this.#witness === undefined ? {} : { witness: this.#witness.name }),
      },
    };
  }

  #enqueue(event: AuditEvent): Promise<void> {
    const state = this.#streams[event.stream];
    if (state === undefined)
      return Promise.reject(new TypeError('an audit event names stream access or admin'));
    // Values canonical JSON cannot hold are the caller's mistake, refused here so they never fail a whole batch.
    const count = (event.outcome as { count?: unknown } | undefined)?.count;
    if (event.detail !== undefined || count !== undefined) {
      try {
        canonicalJson({ detail: event.detail, count });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    let batch = state.queued;
    if (batch === undefined) {
      batch = this.#newBatch(state);
      state.queued = batch;
      // Flushed once the callers of this turn have queued their events, so that they share one batch.
      if (state.flushing === undefined) queueMicrotask(state.flushSoon);
    }
    batch.events.push(event);
    return batch.promise;
  }

  #newBatch(state: StreamState): Batch {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const batch: Batch = { promise, resolve, reject, events: [], pending: undefined };
    batch.pending = this.#deadlines.start(`${state.stream} records`, (error) => {
      // Past its deadline, queued or in flight: its callers are refused now. A batch still queued is never sealed.
      if (state.queued === batch) state.queued = undefined;
      this.#beginOutage(state, 'ETIMEDOUT', this.#ready ? batch.events.length : 0);
      reject(error);
    });
    return batch;
  }

  /** Seals the queued batch from the committed head and hands it to the sinks; one flush per stream at a time. */
  #flush(state: StreamState): void {
    const batch = state.queued;
    if (state.flushing !== undefined || batch === undefined) return;
    state.queued = undefined;
    const now = this.#clock();
    // The outage record goes first only once the chain is open: `audit.open` must stay admin record 1.
    const outage = this.#ready ? state.outage : undefined;
    const refusedSealed = outage?.refused ?? 0;
    let seq = state.seq;
    let head = state.head;
    let lastTs = state.lastTs;
    let text = '';
    const seal = (event: AuditEvent) => {
      const eventTs = event.at ?? Date.parse(event.ts);
      // Time never runs backwards within a chain, so the MAC epoch of each record is at least the previous one's.
      const ts = eventTs >= lastTs ? eventTs : Math.max(lastTs, now);
      const mk = Math.floor(ts / MAC_EPOCH_MS);
      const body = state.lines.body(event, seq + 1, mk, head, isoOf(ts));
      const hash = sha256HexOf(body);
      text += `${body.slice(0, -1)},"hash":"${hash}","mac":"${this.#macFor(mk).mac(hash)}"}\n`;
      seq += 1;
      head = hash;
      lastTs = ts;
    };
    try {
      if (outage !== undefined) seal(outageEvent(state.stream, outage, now));
      for (const event of batch.events) seal(event);
    } catch (error) {
      // Input the checks in #enqueue let through; never an outage.
      if (batch.pending !== undefined && this.#deadlines.finish(batch.pending)) batch.reject(error);
      return;
    }
    const firstSeq = state.seq + 1;
    const committed = () => {
      state.seq = seq;
      state.head = head;
      state.lastTs = lastTs;
      state.newSegment = false;
      if (outage !== undefined && state.outage === outage) {
        // Refusals counted while this batch was in flight belong to an outage the record did not cover.
        const later = outage.refused - refusedSealed;
        state.outage = later > 0 ? { from: now, cause: outage.cause, refused: later } : undefined;
      }
      state.sinceCheckpoint += seq - firstSeq + 1;
      if (batch.pending !== undefined && this.#deadlines.finish(batch.pending)) batch.resolve();
      if (state.sinceCheckpoint >= this.#everyRecords) {
        // Counted from now: a checkpoint still waiting for the disk must not be asked for again per batch.
        state.sinceCheckpoint = 0;
        this.#checkpointSoon(state);
      }
    };
    let delivery: Promise<void> | undefined;
    try {
      delivery = this.#deliver({
        chain: this.chain,
        stream: state.stream,
        firstSeq,
        lastSeq: seq,
        text,
        level: state.level,
        syncWithinMs: this.#syncEveryMs,
        newSegment: state.newSegment || outage !== undefined,
      });
    } catch (error) {
      delivery = Promise.reject(error);
    }
    // Taken at its level before the sink returned (a file sink's `written` batch): the head moves now, and the
    // callers are answered without a round of promises, which is most of what a lone caller's record costs.
    if (delivery === undefined) {
      committed();
      return;
    }
    state.flushing = delivery
      .then(committed, (cause: unknown) => {
        if (batch.pending === undefined || !this.#deadlines.finish(batch.pending)) return;
        this.#beginOutage(state, cause, this.#ready ? batch.events.length : 0);
        const message = `no durable audit sink took ${state.stream} records ${firstSeq}-${seq}`;
        batch.reject(new PhiCacheError('ERR_AUDIT_UNAVAILABLE', message, { cause }));
      })
      .then(() => {
        state.flushing = undefined;
        if (state.queued !== undefined) this.#flush(state);
      });
  }

  #beginOutage(state: StreamState, cause: unknown, refused: number): void {
    state.outage ??= { from: this.#clock(), cause: causeName(cause), refused: 0 };
    state.outage.refused += refused;
  }

  #macFor(epoch: number): RecordMacKey {
    if (epoch !== this.#macEpoch || this.#macKey === undefined) {
      this.#macKey = new RecordMacKey(this.#keys.streamKey(epoch));
      this.#macEpoch = epoch;
    }
    return this.#macKey;
  }

  /**
   * Hands a batch to every sink; resolves when a durable sink has it, rejects when no durable sink can. Undefined
   * when the only sink took the batch at its level before returning.
   */
  #deliver(batch: RecordBatch): Promise<void> | undefined {
    const sinks = this.#sinks;
    if (sinks.length === 1) {
      const sink = sinks[0]!;
      return sink.appendBatch(batch)?.catch((cause: unknown) => {
        this.emit('sink-error', { sink: sink.name, stream: batch.stream, seq: batch.firstSeq, cause });
        throw cause;
      });
    }
    return this.#anyDurable(
      batch.stream,
      batch.firstSeq,
      (sink) => sink.appendBatch(batch) ?? Promise.resolve(),
    );
  }

  #anyDurable(stream: AuditStream, seq: number, append: (sink: RecordSink) => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      let durableLeft = this.#durableSinks;
      let answered = false;
      const causes: unknown[] = [];
      for (const sink of this.#sinks) {
        let appended: Promise<void>;
        try {
          appended = append(sink);
        } catch (error) {
          appended = Promise.reject(error);
        }
        appended.then(
          () => {
            if (sink.durable && !answered) {
              answered = true;
              resolve();
            }
          },
          (cause: unknown) => {
            this.emit('sink-error', { sink: sink.name, stream, seq, cause });
            if (!sink.durable) return;
            causes.push(cause);
            durableLeft -= 1;
            if (durableLeft === 0 && !answered) {
              answered = true;
              reject(causes.length === 1 ? causes[0] : new AggregateError(causes));
            }
          },
        );
      }
    });
  }

  /**
   * A checkpoint asked for by a flush, started outside the flush's scope: a closure made inside it would keep the
   * batch's text alive for as long as the checkpoint chain holds on to it.
   */
  #checkpointSoon(state: StreamState): void {
    this.#checkpoint(state, false).catch(() => undefined);
  }

  #checkpoint(state: StreamState, final: boolean, restart?: RestartNote): Promise<void> {
    const stream = state.stream;
    const run = state.checkpointing.then(async () => {
      // A checkpoint vouches only for records a durable sink holds: it waits for the batch in flight, then takes
      // the committed head (and the file sink syncs the records it covers before writing it).
      await state.flushing;
      const { seq, head } = state;
      state.sinceCheckpoint = 0;
      const unsigned: Omit<Checkpoint, 'sig'> = {
        v: 1,
        type: 'checkpoint',
        chain: this.chain,
        stream,
        seq,
        head,
        ts: isoOf(Math.max(this.#clock(), state.lastTs)),
        everyMs: this.#everyMs,
        everyRecords: this.#everyRecords,
        prevCheckpoint: state.checkpointHash,
        final,
        ...(restart === undefined ? {} : { restart }),
        kid: this.#keys.signingKid,
      };
      const { checkpoint, line } = signCheckpoint(unsigned, this.#keys.signingKey);
      await this.#deadlines.track(
        `${stream} checkpoint ${seq}`,
        this.#anyDurable(stream, seq, (sink) => sink.appendCheckpoint(checkpoint, line)),
      );
      // The next checkpoint links to this one only once the log holds it.
      state.checkpointHash = checkpointHash(checkpoint);
      this.#toWitness(checkpoint, line);
    });
    state.checkpointing = run.catch(() => undefined);
    return run;
  }

  /**
   * The witness gets a checkpoint only once the log holds it, so an outage of the log never leaves the witness
   * holding more than the log, which would read as a deletion. It is not awaited: the witness keeps the order it
   * receives, and `close` waits for it.
   */
  #toWitness(checkpoint: Checkpoint, line: string): void {
    const witness = this.#witness;
    witness?.appendCheckpoint(checkpoint, line).catch((cause: unknown) => {
      this.emit('sink-error', { sink: witness.name, stream: checkpoint.stream, seq: checkpoint.seq, cause });
    });
  }

  /**
   * A chain directory that already holds a log is taken up: its lock must not name a live process of this host
   * (ERR_AUDIT_CHAIN_BUSY), each stream's tail is repaired and checked (ERR_AUDIT_CHAIN_DAMAGED, and nothing is
   * written), and the opening checkpoint of each stream becomes its restart checkpoint.
   */
  async #takeUpChain(logDir: string): Promise<void> {
    const chainDir = join(logDir, this.chain);
    const existing = await chainHasLog(chainDir);
    await mkdir(chainDir, { recursive: true, mode: 0o700 });
    await acquireWriterLock(chainDir, this.chain, this.#clock());
    this.#lockHeld = true;
    if (!existing) return;
    const ends: StreamEnd[] = [];
    try {
      for (const stream of STREAMS) ends.push(await findStreamEnd(chainDir, this.chain, stream, this.#keys));
    } catch (error) {
      await releaseWriterLock(chainDir);
      this.#lockHeld = false;
      throw error;
    }
    for (const end of ends) {
      if (!end.found) continue;
      const state = this.#streams[end.stream];
      state.seq = end.seq;
      state.head = end.head;
      state.lastTs = end.lastTs;
      state.checkpointHash = end.checkpointHash;
      state.restart = restartNote(end, this.chain);
    }
  }
}

function defaultChainId(now: number): string {
  const stamp = new Date(now).toISOString().replace(/[:.]/g, '-');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}
