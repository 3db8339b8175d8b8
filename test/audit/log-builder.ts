import { sign } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditStream } from '../../src/audit/audit-event.js';
import { type AuditKeys, macEpochOf } from '../../src/audit/audit-keys.js';
import type { AuditLogFile } from '../../src/audit/read-log.js';
import {
  type AuditRecord,
  type Checkpoint,
  checkpointHash,
  checkpointSigningInput,
  genesisHash,
  recordMac,
  sealRecordBody,
} from '../../src/audit/record.js';
import type { RestartMark } from '../../src/audit/restart-mark.js';
import { event, FIXTURE_START, keys as fixtureKeys } from './trail-fixture.js';

const STREAMS: readonly AuditStream[] = ['access', 'admin'];

interface StreamState {
  seq: number;
  head: string;
  checkpointHash: string;
  /** Records files, each a list of lines. */
  files: string[][];
  checkpoints: string[];
  lastTs: number;
  lastCheckpointAt: number;
}

export interface LogBuilderOptions {
  readonly chain?: string;
  readonly keys?: AuditKeys;
  /** The writer's checkpoint period promise. Default 60 s. */
  readonly everyMs?: number;
  readonly everyRecords?: number;
  readonly start?: number;
}

/**
 * Writes an audit chain line by line in the format of docs/audit-log.md, with the record and checkpoint functions
 * of src/audit/record.ts and the test keys, independent of any writer: records sealed and MACed, checkpoints
 * signed (a seq-0 one when the chain opens), outage records that start a new records file, restart checkpoints,
 * torn bytes and a writer.lock. Time is a field the test moves.
 */
export class LogBuilder {
  readonly chain: string;
  readonly keys: AuditKeys;
  readonly everyMs: number;
  readonly everyRecords: number;
  /** The builder's clock, ms since the epoch. */
  now: number;
  readonly #streams = new Map<AuditStream, StreamState>();
  readonly #torn: { path: string; bytes: Buffer }[] = [];
  #lock: string | undefined;

  constructor(options: LogBuilderOptions = {}) {
    this.chain = options.chain ?? 'built-chain';
    this.keys = options.keys ?? fixtureKeys;
    this.everyMs = options.everyMs ?? 60_000;
    this.everyRecords = options.everyRecords ?? 1000;
    this.now = options.start ?? FIXTURE_START;
    for (const stream of STREAMS) {
      this.#streams.set(stream, {
        seq: 0,
        head: genesisHash(this.chain, stream, 'records'),
        checkpointHash: genesisHash(this.chain, stream, 'checkpoints'),
        files: [[]],
        checkpoints: [],
        lastTs: this.now,
        lastCheckpointAt: this.now,
      });
    }
  }

  /** The chain opens: a checkpoint at seq 0 of each stream, then the opening record that declares the streams. */
  open(): this {
    for (const stream of STREAMS) this.checkpoint(stream);
    this.#append('admin', {
      v: 1,
      stream: 'admin',
      ts: this.#ts(),
      actor: { service: 'phicache', principal: null },
      purpose: 'audit-configuration',
      tenant: '*',
      class: null,
      action: 'audit.open',
      key: null,
      kid: 'local:cache:v1',
      dek: null,
      decision: null,
      outcome: { result: 'ok' },
      detail: { streams: 'access,admin', everyMs: this.everyMs },
    });
    return this;
  }

  /**
   * `count` events of a stream, `stepMs` apart, with a checkpoint whenever `everyRecords` are reached, and of every
   * stream whenever `everyMs` has passed since its last one (also when idle), as a live writer does.
   */
  records(stream: AuditStream, count: number, stepMs = 1000): this {
    for (let i = 0; i < count; i++) {
      this.now += stepMs;
      this.idle(0);
      const body = event(stream, this.now) as unknown as Record<string, unknown>;
      this.#append(stream, body);
      if (this.#state(stream).seq % this.everyRecords === 0) this.checkpoint(stream);
    }
    return this;
  }

  /** The clock moves `ms` while nothing is written but the checkpoints a live writer writes when idle. */
  idle(ms: number, stepMs = 1000): this {
    const until = this.now + ms;
    for (let moved = false; !moved || this.now < until; moved = true) {
      if (moved) this.now = Math.min(until, this.now + stepMs);
      for (const stream of STREAMS) {
        if (this.now - this.#state(stream).lastCheckpointAt >= this.everyMs) this.checkpoint(stream);
      }
    }
    return this;
  }

  /** A signed checkpoint of the stream's head now; a restart mark makes it a restart checkpoint. */
  checkpoint(stream: AuditStream, options: { final?: boolean; restart?: RestartMark } = {}): this {
    const state = this.#state(stream);
    const unsigned = {
      v: 1,
      type: 'checkpoint',
      chain: this.chain,
      stream,
      seq: state.seq,
      head: state.head,
      ts: this.#ts(),
      everyMs: this.everyMs,
      everyRecords: this.everyRecords,
      prevCheckpoint: state.checkpointHash,
      final: options.final ?? false,
      ...(options.restart ? { restart: options.restart } : {}),
      kid: this.keys.signingKid,
    } as Omit<Checkpoint, 'sig'>;
    const checkpoint = {
      ...unsigned,
      sig: sign(null, checkpointSigningInput(unsigned), this.keys.signingKey).toString('base64'),
    } as Checkpoint;
    state.checkpointHash = checkpointHash(checkpoint);
    state.checkpoints.push(JSON.stringify(checkpoint));
    state.lastCheckpointAt = this.now;
    return this;
  }

  /** A final checkpoint of every stream: the writer closed. */
  close(): this {
    for (const stream of STREAMS) this.checkpoint(stream, { final: true });
    return this;
  }

  /**
   * No durable sink took records for `ms`: the clock moves on, and the first record taken after is the outage
   * record, in a new records file.
   */
  outage(stream: AuditStream, ms: number, refused = 12): this {
    const from = new Date(this.now).toISOString();
    this.now += ms;
    this.#state(stream).files.push([]);
    this.#append(stream, {
      v: 1,
      stream,
      ts: this.#ts(),
      actor: { service: 'phicache', principal: null },
      purpose: 'audit',
      tenant: '*',
      class: null,
      action: 'audit.outage',
      key: null,
      kid: 'local:cache:v1',
      dek: null,
      decision: null,
      outcome: { count: refused, result: 'ok' },
      detail: { cause: 'ENOSPC', from, ms, refused: refused * 2, to: new Date(this.now).toISOString() },
    });
    return this;
  }

  /**
   * The writer was down for `downMs`, and a new one takes the chain up: a restart checkpoint of each stream, and a
   * new records file for what follows. After a crash, `tornBytes` of a torn last line go to a `.torn` file.
   */
  restart(
    after: 'crash' | 'close',
    downMs: number,
    options: { tornBytes?: number; final?: boolean } = {},
  ): this {
    this.now += downMs;
    for (const stream of STREAMS) {
      const state = this.#state(stream);
      const torn = stream === 'access' ? (options.tornBytes ?? 0) : 0;
      if (torn > 0) {
        const number = String(state.files.length).padStart(6, '0');
        this.#torn.push({
          path: `${this.chain}/${stream}-${number}.torn`,
          bytes: Buffer.from('{"action":"get","ac'.padEnd(torn, 'x').slice(0, torn)),
        });
      }
      this.checkpoint(stream, {
        final: options.final ?? false,
        restart: {
          after,
          by: `${this.chain}-restarted`,
          checked: after === 'crash' ? state.seq - this.#lastCheckpointSeq(stream) : 0,
          lastTs: new Date(state.lastTs).toISOString(),
          tornBytes: torn,
        },
      });
      state.files.push([]);
    }
    return this;
  }

  /** A writer holds the chain: its lock file, which readers ignore. */
  lock(): this {
    this.#lock = JSON.stringify({ pid: 4242, host: 'ward-7', startedAt: new Date(this.now).toISOString() });
    return this;
  }

  seq(stream: AuditStream): number {
    return this.#state(stream).seq;
  }

  /** The lines of a stream: its records in order, and its checkpoints. */
  lines(stream: AuditStream): { records: string[]; checkpoints: string[] } {
    const state = this.#state(stream);
    return { records: state.files.flat(), checkpoints: [...state.checkpoints] };
  }

  /** The log in memory, as `verifyAuditLog` takes it (torn bytes as text). */
  files(): AuditLogFile[] {
    const out: AuditLogFile[] = [];
    for (const stream of STREAMS) {
      const state = this.#state(stream);
      for (const [n, lines] of state.files.entries()) {
        if (lines.length > 0) out.push({ path: this.#recordsPath(stream, n), lines: [...lines] });
      }
      out.push({ path: `${this.chain}/${stream}-checkpoints.jsonl`, lines: [...state.checkpoints] });
    }
    for (const torn of this.#torn) out.push({ path: torn.path, text: torn.bytes.toString('latin1') });
    return out;
  }

  /** Writes the log under `dir` (a new temporary directory by default); returns the audit directory. */
  async writeTo(dir?: string): Promise<string> {
    const root = dir ?? (await mkdtemp(join(tmpdir(), 'phicache-built-')));
    await mkdir(join(root, this.chain), { recursive: true });
    for (const file of this.files()) {
      if ('lines' in file) await writeFile(join(root, file.path), file.lines.map((l) => `${l}\n`).join(''));
    }
    for (const torn of this.#torn) await writeFile(join(root, torn.path), torn.bytes);
    if (this.#lock !== undefined) await writeFile(join(root, this.chain, 'writer.lock'), this.#lock);
    return root;
  }

  #recordsPath(stream: AuditStream, n: number): string {
    return `${this.chain}/${stream}-${String(n + 1).padStart(6, '0')}.jsonl`;
  }

  #lastCheckpointSeq(stream: AuditStream): number {
    const last = this.#state(stream).checkpoints.at(-1);
    return last === undefined ? 0 : (JSON.parse(last) as Checkpoint).seq;
  }

  #state(stream: AuditStream): StreamState {
    return this.#streams.get(stream)!;
  }

  #ts(): string {
    return new Date(this.now).toISOString();
  }

  #append(stream: AuditStream, event: Record<string, unknown>): void {
    const state = this.#state(stream);
    const ts = Date.parse(event.ts as string);
    const mk = macEpochOf(ts);
    const body = { ...event, chain: this.chain, seq: state.seq + 1, mk, prev: state.head };
    const sealed = sealRecordBody(body as Omit<AuditRecord, 'hash' | 'mac'>, (hash) =>
      recordMac(this.keys.streamKey(mk), hash),
    );
    state.seq += 1;
    state.head = sealed.hash;
    state.lastTs = ts;
    state.files.at(-1)!.push(sealed.line);
  }
}
