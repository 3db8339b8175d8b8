import type { AuditStream } from './audit-event.js';
import { macEpochOf } from './audit-keys.js';
import { MacCheck } from './mac-check.js';
import type { Notice } from './notice.js';
import { type ParsedLine, parseLine } from './parse-line.js';
import {
  type AuditLogFile,
  type BadLine,
  type LineBatch,
  lineBatches,
  type ReadLinesOptions,
} from './read-log.js';
import { genesisHash } from './record.js';

/** Where a finding is, and the function that records it. */
export interface FindingPlace {
  readonly file?: string;
  readonly line?: number;
  readonly seq?: number;
}
export type Report = (kind: RecordFindingKind, message: string, at?: FindingPlace) => void;

export type RecordFindingKind =
  | 'unparseable'
  | 'non-canonical'
  | 'modified'
  | 'chain-broken'
  | 'sequence-gap'
  | 'reordered'
  | 'duplicate'
  | 'inserted'
  | 'misplaced'
  | 'mac-bad'
  | 'mac-epoch';

export interface RecordWalkOptions {
  /** The stream key of a MAC epoch: with it, every record's MAC and epoch are checked. */
  readonly streamKey?: (epoch: number) => Buffer;
  readonly cache?: Map<string, ParsedLine>;
  readonly read?: ReadLinesOptions;
}

/** The time an outage record says no durable sink took records, in ms since the epoch. */
export interface OutageSpan {
  readonly from: number;
  readonly to: number;
}

/**
 * How many outage spans and notices a stream keeps: outages are rare, and a log made of nothing else must not make
 * the walk's memory grow without bound.
 */
const KEPT_OUTAGES = 10_000;

/**
 * How many recent records' hashes the walk remembers, for the checkpoints that point at them and to tell a
 * duplicate from a forged second record. A constant: the walk's memory does not grow with the log.
 */
const WINDOW = 65_536;

/**
 * The records of one stream, walked in file order one batch at a time: each line's hash over its own bytes, its
 * canonical form, its link and sequence, and its MAC and epoch with the stream key. The checkpoint walk pulls
 * records up to the seq each checkpoint covers, so the two files are read side by side and nothing is held whole.
 */
export class RecordWalker {
  /** Lines seen, good or bad. */
  count = 0;
  /** The highest seq accepted into the chain. */
  lastSeq = 0;
  /** With the stream key: the last seq up to which every record and MAC checked. */
  macVouchedUpTo = 0;
  /** The streams the chain declared in its opening record (`audit.open`, admin seq 1), if this stream holds it. */
  declaredStreams: readonly string[] | undefined;
  /**
   * The seq reached when the first record finding came: every record up to it passed every check (undefined while
   * none has failed).
   */
  intactUpTo: number | undefined;
  /** The outage records accepted into the chain, as notices, and the spans they cover. */
  readonly outages: Notice[] = [];
  readonly outageSpans: OutageSpan[] = [];
  readonly #chain: string;
  readonly #stream: AuditStream;
  readonly #options: RecordWalkOptions;
  readonly #report: Report;
  readonly #mac: MacCheck | undefined;
  readonly #batches: AsyncGenerator<{ file: AuditLogFile; batch: LineBatch; first: number }>;
  readonly #recent = new RecentHashes(WINDOW);
  /** Ranges of seqs skipped by a sequence gap: a record of one arriving later is reordered, not inserted. */
  readonly #gaps: [number, number][] = [];
  #expectedPrev: string;
  #lastMk = Number.NEGATIVE_INFINITY;
  #macIntact: boolean;
  #done = false;

  constructor(
    chain: string,
    stream: AuditStream,
    files: readonly AuditLogFile[],
    options: RecordWalkOptions,
    report: Report,
  ) {
    this.#chain = chain;
    this.#stream = stream;
    this.#options = options;
    this.#report = report;
    this.#expectedPrev = genesisHash(chain, stream, 'records');
    this.#macIntact = options.streamKey !== undefined;
    this.#mac = options.streamKey === undefined ? undefined : new MacCheck(options.streamKey);
    this.#batches = batchesOf(files, options.read);
  }

  /** Reads on until the chain reaches `seq` or the records end. */
  async advanceTo(seq: number): Promise<void> {
    while (!this.#done && this.lastSeq < seq) await this.#next();
  }

  async finish(): Promise<void> {
    while (!this.#done) await this.#next();
  }

  /** Closes the files of a walk given up half way (the caller failed). */
  async abandon(): Promise<void> {
    await this.#batches.return(undefined);
  }

  /** The hash of the record accepted at `seq`, if it is recent enough to be remembered. */
  hashAt(seq: number): string | undefined {
    return this.#recent.get(seq);
  }

  /** True when `seq` is older than every remembered record: a checkpoint there cannot be compared any more. */
  forgotten(seq: number): boolean {
    const oldest = this.#recent.oldest();
    return oldest !== undefined && seq < oldest && !this.#inGap(seq);
  }

  async #next(): Promise<void> {
    const next = await this.#batches.next();
    if (next.done) {
      this.#done = true;
      return;
    }
    const { file, batch, first } = next.value;
    for (let i = 0; i < batch.lines.length; i++)
      this.#line(file, first + i + 1, batch.lines[i]!, batch.bad.get(i));
  }

  #line(file: AuditLogFile, line: number, text: string, bad: BadLine | undefined): void {
    this.count += 1;
    const at = (seq?: number): FindingPlace => ({
      file: file.path,
      line,
      ...(seq === undefined ? {} : { seq }),
    });
    if (bad === 'too-long') {
      this.#fail('unparseable', 'the line is too long to be an audit record', at());
      return;
    }
    const parsed = parseLine(text, this.#options.cache);
    if (parsed.kind !== 'record') {
      this.#fail('unparseable', 'the line is not a well-formed audit record', at());
      return;
    }
    const record = parsed.record;
    if (bad === 'not-utf8') {
      this.#fail('non-canonical', 'the line is not valid UTF-8', at(record.seq));
    } else if (!parsed.canonical) {
      this.#fail(
        'non-canonical',
        'the line is not written as the writer writes it (an escape, a repeated key, the key order or spacing)',
        at(record.seq),
      );
    }
    // After its form: a repeated `chain` key is first of all a line the writer never wrote.
    if (record.chain !== this.#chain || record.stream !== this.#stream) {
      this.#fail('misplaced', 'the record belongs to another chain or stream', at(record.seq));
      return;
    }
    if (parsed.hash !== undefined && parsed.hash !== record.hash)
      this.#fail('modified', 'the record does not match its hash', at(record.seq));

    const expectedSeq = this.lastSeq + 1;
    if (record.seq < expectedSeq) {
      const earlier = this.#recent.get(record.seq);
      if (earlier === undefined && !this.forgotten(record.seq))
        this.#fail('reordered', 'the record appears after records that follow it', at(record.seq));
      else if (earlier === record.hash) this.#fail('duplicate', 'the record appears twice', at(record.seq));
      else this.#fail('inserted', 'a second record claims a sequence number already used', at(record.seq));
      return;
    }
    if (record.seq === expectedSeq) {
      if (record.prev !== this.#expectedPrev)
        this.#fail('chain-broken', 'the record does not link to the one before it', at(record.seq));
    } else {
      this.#fail('sequence-gap', `records ${expectedSeq} to ${record.seq - 1} are missing`, at(record.seq));
      this.#gaps.push([expectedSeq, record.seq - 1]);
    }
    // The hash computed here is a string of its own; the record's fields may be slices of a whole chunk of the
    // file, which the window must not keep alive.
    this.#recent.add(record.seq, parsed.hash === record.hash ? parsed.hash : record.hash);
    this.lastSeq = record.seq;
    this.#expectedPrev = record.hash;
    if (record.seq === 1 && record.action === 'audit.open') this.declaredStreams = declared(record.detail);
    else if ((record.action as string) === OUTAGE_ACTION) this.#outage(record, at(record.seq));
    this.#checkMac(record.seq, record.ts, record.mk, record.hash, record.mac, at);
  }

  /** An outage record (docs/audit-log.md, "Outage records"): a notice, and a span no checkpoint is owed for. */
  #outage(record: AuditRecordLike, at: FindingPlace): void {
    const detail = record.detail ?? {};
    const from = typeof detail.from === 'string' ? Date.parse(detail.from) : Number.NaN;
    const to = typeof detail.to === 'string' ? Date.parse(detail.to) : Number.NaN;
    const times =
      Number.isNaN(from) || Number.isNaN(to) || to < from
        ? {}
        : { from: detail.from as string, to: detail.to as string };
    const counts: Record<string, number> = {};
    const refused = (record.outcome as { count?: unknown } | undefined)?.count;
    if (typeof refused === 'number') counts.records = refused;
    if (typeof detail.refused === 'number') counts.operations = detail.refused;
    if (typeof detail.ms === 'number') counts.ms = detail.ms;
    if (this.outages.length >= KEPT_OUTAGES) return;
    this.outages.push({
      kind: 'outage',
      chain: this.#chain,
      stream: this.#stream,
      ...at,
      ...times,
      counts,
      message: `no durable sink took records${'from' in times ? ` from ${times.from} to ${times.to}` : ''}${typeof detail.cause === 'string' ? ` (${detail.cause})` : ''}; ${counts.records ?? 'some'} records were refused, and their operations failed closed`,
    });
    if ('from' in times) this.outageSpans.push({ from, to });
  }

  /** `at` makes the finding's place only when there is a finding: most records have none, and pay for no object. */
  #checkMac(
    seq: number,
    ts: string,
    mk: number,
    hash: string,
    mac: string,
    at: (seq: number) => FindingPlace,
  ): void {
    const check = this.#mac;
    if (check === undefined) return;
    // The MAC must be made with the key of the epoch the record's own time falls in, and epochs never go back:
    // a key leaked later cannot re-vouch for older records (journald CVE-2023-31439).
    // The record is in the chain already: the records before it are the intact ones.
    if (mk !== macEpochOf(Date.parse(ts)) || mk < this.#lastMk) {
      this.intactUpTo ??= seq - 1;
      this.#fail('mac-epoch', 'the MAC claims a key epoch other than the one of its time', at(seq));
    } else if (!check.matches(mk, hash, mac)) {
      this.intactUpTo ??= seq - 1;
      this.#fail('mac-bad', 'the MAC does not match', at(seq));
    }
    this.#lastMk = Math.max(this.#lastMk, mk);
    if (this.#macIntact) this.macVouchedUpTo = seq;
  }

  #inGap(seq: number): boolean {
    return this.#gaps.some(([from, to]) => seq >= from && seq <= to);
  }

  #fail(kind: RecordFindingKind, message: string, at: FindingPlace): void {
    this.#macIntact = false;
    this.intactUpTo ??= this.lastSeq;
    this.#report(kind, message, at);
  }
}

/**
 * The hashes of the last `size` records accepted, in a ring: seqs only grow, so adding is a write and a lookup
 * (one per checkpoint or out-of-order record) a binary search.
 */
class RecentHashes {
  readonly #seqs: Float64Array;
  readonly #hashes: string[];
  #count = 0;
  #next = 0;

  constructor(size: number) {
    this.#seqs = new Float64Array(size);
    this.#hashes = new Array<string>(size);
  }

  add(seq: number, hash: string): void {
    this.#seqs[this.#next] = seq;
    this.#hashes[this.#next] = hash;
    this.#next = (this.#next + 1) % this.#seqs.length;
    this.#count = Math.min(this.#count + 1, this.#seqs.length);
  }

  oldest(): number | undefined {
    return this.#count === 0 ? undefined : this.#seqs[this.#slot(0)];
  }

  get(seq: number): string | undefined {
    let low = 0;
    let high = this.#count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = this.#seqs[this.#slot(middle)]!;
      if (at === seq) return this.#hashes[this.#slot(middle)];
      if (at < seq) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  /** The ring slot of the i-th oldest entry. */
  #slot(i: number): number {
    return (this.#next - this.#count + i + this.#seqs.length) % this.#seqs.length;
  }
}

async function* batchesOf(
  files: readonly AuditLogFile[],
  read: ReadLinesOptions | undefined,
): AsyncGenerator<{ file: AuditLogFile; batch: LineBatch; first: number }> {
  for (const file of files) {
    let first = 0;
    for await (const batch of lineBatches(file, read)) {
      yield { file, batch, first };
      first += batch.lines.length;
    }
  }
}

/** The `streams` an opening record declares (`"access,admin"`); an opening record without them had both. */
function declared(detail: Readonly<Record<string, string | number>> | undefined): readonly string[] {
  const streams = detail?.streams;
  return typeof streams === 'string' ? streams.split(',').filter((s) => s !== '') : ['access', 'admin'];
}

/** The action of an outage record: not one an operation makes, so not in the event's union. */
const OUTAGE_ACTION = 'audit.outage';

interface AuditRecordLike {
  readonly detail?: Readonly<Record<string, string | number>> | undefined;
  readonly outcome?: object | undefined;
}
