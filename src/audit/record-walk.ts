import type { AuditStream } from './audit-event.js';
import { macEpochOf } from './audit-keys.js';
import { type BatchSummary, summarizeBatch } from './batch-summary.js';
import { MacCheck } from './mac-check.js';
import type { Notice } from './notice.js';
import { type ParsedLine, parseLine } from './parse-line.js';
import type { ParsedBatch, ParsePool } from './parse-pool.js';
import {
  type AuditLogFile,
  type BadLine,
  type ByteLineBatch,
  decodeLines,
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
  /**
   * Threads that parse batches ahead of the walk. Used only without `streamKey` (every MAC is checked here, record
   * by record) and without `cache` (its parsed lines live in this thread).
   */
  readonly pool?: ParsePool;
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
 * Batches sent to each thread ahead of the walk: one parsed while the next waits, so a thread seldom waits for
 * this one. (3 measured ~10 ms faster in 350 on 2 cores, within the noise of a shared machine, for 1 MiB more
 * per thread; the memory a verification of a large archive may take is the tighter bound.)
 */
const AHEAD_PER_THREAD = 2;
/**
 * Batches this thread may parse ahead of the walk while the pool is full: enough to keep it busy while a thread
 * starts (tens of ms) or runs slow, few enough to keep memory to a few chunks.
 */
const OWN_AHEAD = 4;

/**
 * A batch read ahead of the walk: sent to a thread (`answer`), or parsed by this one (`summary`), or neither (a
 * line of it is not text: the walk alone says so).
 */
interface Ahead {
  readonly file: AuditLogFile;
  readonly first: number;
  readonly count: number;
  readonly bad: ReadonlyMap<number, BadLine>;
  /** The lines, while they may be walked: not kept for a batch this thread found clean, or sent as bytes. */
  lines?: readonly string[];
  answer?: Promise<ParsedBatch>;
  summary?: BatchSummary;
}

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
  readonly #batches: AsyncGenerator<{ file: AuditLogFile; batch: LineBatch | ByteLineBatch; first: number }>;
  readonly #recent = new RecentHashes(WINDOW);
  /** Ranges of seqs skipped by a sequence gap: a record of one arriving later is reordered, not inserted. */
  readonly #gaps: [number, number][] = [];
  readonly #pool: ParsePool | undefined;
  /** Batches read ahead of the walk, in file order. */
  readonly #ahead: Ahead[] = [];
  #allRead = false;
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
    this.#pool = options.streamKey === undefined && options.cache === undefined ? options.pool : undefined;
    // With the pool, the bytes of a chunk go to a thread, which decodes them: this one decodes only the batches it
    // parses itself, and a batch that is not clean.
    this.#batches = batchesOf(files, options.read, this.#pool !== undefined);
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
    this.#ahead.length = 0;
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
    if (this.#pool !== undefined) return this.#nextParsedAhead(this.#pool);
    const next = await this.#batches.next();
    if (next.done) {
      this.#done = true;
      return;
    }
    const { file, batch, first } = next.value;
    this.#walkBatch(file, batch, first);
  }

  /**
   * The next batch, its lines parsed while the walk went through the batches before it: by the pool's threads,
   * or by this one when the pool had no room for it. A bounded number of batches is read ahead (memory stays a
   * few chunks), and they are taken strictly in file order, so the walk's state and findings are the ones of a
   * walk line by line. A clean batch is taken from its summary (its bytes are not kept to walk it again, see
   * `#takeClean`); any other batch is walked line by line, to say what is wrong and where.
   */
  async #nextParsedAhead(pool: ParsePool): Promise<void> {
    await this.#readAhead(pool);
    const ahead = this.#ahead.shift();
    if (ahead === undefined) {
      this.#done = true;
      return;
    }
    let { summary, lines } = ahead;
    if (ahead.answer !== undefined) {
      const parsed = await ahead.answer;
      summary = parsed.summary;
      // The bytes sent to a thread come back only with a batch that is not clean: then they are walked.
      if (parsed.bytes !== undefined) lines = decodeLines(parsed.bytes);
    }
    const { file, first } = ahead;
    if (summary?.clean === true) {
      if (summary.count !== ahead.count)
        throw new Error(
          `a parsed batch of ${ahead.file.path} holds ${summary.count} of its ${ahead.count} lines`,
        );
      this.#takeClean(file, first, summary);
      return;
    }
    if (lines === undefined) throw new Error(`the lines of a batch of ${ahead.file.path} were not kept`);
    this.#walkBatch(file, { lines, bad: ahead.bad }, first);
  }

  /**
   * Reads batches ahead: each goes to the pool while it has room (`AHEAD_PER_THREAD` batches a thread), else
   * this thread parses it at once (its lines die young, and only its summary waits), up to `OWN_AHEAD` batches
   * past what the pool holds. The bytes of a batch go to its thread as they are, not copied.
   */
  async #readAhead(pool: ParsePool): Promise<void> {
    const room = AHEAD_PER_THREAD * pool.size;
    while (!this.#allRead && this.#ahead.length < room + OWN_AHEAD) {
      const next = await this.#batches.next();
      if (next.done) {
        this.#allRead = true;
        return;
      }
      const { file, batch, first } = next.value;
      const ahead: Ahead = { file, first, count: linesOf(batch), bad: batch.bad };
      this.#ahead.push(ahead);
      // A line marked bad is not the text its bytes say: only the walk reports it.
      if (batch.bad.size > 0) ahead.lines = batch.lines;
      // Until a thread has started, this one parses the first batches itself: one sent now would be waited for.
      else if (pool.waiting < room && (pool.ready > 0 || this.#ahead.length > OWN_AHEAD)) {
        ahead.answer = pool.check(
          'bytes' in batch ? { bytes: batch.bytes } : batch,
          this.#chain,
          this.#stream,
        );
        // A batch never taken (the walk gave up half way) must not leave a rejection nobody handles.
        ahead.answer.catch(() => undefined);
        if (!('bytes' in batch)) ahead.lines = batch.lines;
      } else {
        ahead.summary = summarizeBatch(batch.lines, this.#chain, this.#stream);
        if (!ahead.summary.clean) ahead.lines = batch.lines;
        // The threads' answers come in as messages, taken before the next immediate runs: the pool may have room.
        await new Promise(setImmediate);
      }
    }
  }

  /**
   * A clean batch: every line a canonical record of this chain and stream whose hash covers its bytes, none an
   * opening or outage record, each linked to the one before. `#line` finds nothing in such a record until its
   * place in the chain (`#link`), and there is no MAC to check without the stream key, so the records are placed
   * from their seqs and hashes alone. When the first continues the chain exactly, none can raise a finding and
   * the batch is taken whole; else each goes through `#link`, where the first says how the chain broke.
   */
  #takeClean(file: AuditLogFile, first: number, summary: BatchSummary & { clean: true }): void {
    const { firstSeq, firstPrev, count, hashes } = summary;
    const hashAt = (i: number) => hashes.slice(i * 64, i * 64 + 64);
    if (firstSeq === this.lastSeq + 1 && firstPrev === this.#expectedPrev) {
      // The window keeps slices of the batch's string of hashes: 64 bytes a record, as many as the window holds.
      for (let i = 0; i < count; i++) this.#recent.add(firstSeq + i, hashAt(i));
      this.count += count;
      this.lastSeq = firstSeq + count - 1;
      this.#expectedPrev = hashAt(count - 1);
      return;
    }
    for (let i = 0; i < count; i++) {
      this.count += 1;
      const line = first + i + 1;
      const hash = hashAt(i);
      this.#link(firstSeq + i, i === 0 ? firstPrev : hashAt(i - 1), hash, hash, (seq) => ({
        file: file.path,
        line,
        seq,
      }));
    }
  }

  #walkBatch(file: AuditLogFile, batch: Pick<LineBatch, 'lines' | 'bad'>, first: number): void {
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

    // The hash computed here is a string of its own; the record's fields may be slices of a whole chunk of the
    // file, which the window must not keep alive.
    const kept = parsed.hash === record.hash ? parsed.hash : record.hash;
    if (!this.#link(record.seq, record.prev, record.hash, kept, at)) return;
    if (record.seq === 1 && record.action === 'audit.open') this.declaredStreams = declared(record.detail);
    else if ((record.action as string) === OUTAGE_ACTION) this.#outage(record, at(record.seq));
    this.#checkMac(record.seq, record.ts, record.mk, record.hash, record.mac, at);
  }

  /**
   * A record's place in the chain: its seq after the last one's and its link to it. False for a record that
   * comes after records that follow it (it does not join the chain); else the record is the chain's last.
   * `kept` is the hash the window keeps.
   */
  #link(seq: number, prev: string, hash: string, kept: string, at: (seq: number) => FindingPlace): boolean {
    const expectedSeq = this.lastSeq + 1;
    if (seq < expectedSeq) {
      const earlier = this.#recent.get(seq);
      if (earlier === undefined && !this.forgotten(seq))
        this.#fail('reordered', 'the record appears after records that follow it', at(seq));
      else if (earlier === hash) this.#fail('duplicate', 'the record appears twice', at(seq));
      else this.#fail('inserted', 'a second record claims a sequence number already used', at(seq));
      return false;
    }
    if (seq === expectedSeq) {
      if (prev !== this.#expectedPrev)
        this.#fail('chain-broken', 'the record does not link to the one before it', at(seq));
    } else {
      this.#fail('sequence-gap', `records ${expectedSeq} to ${seq - 1} are missing`, at(seq));
      this.#gaps.push([expectedSeq, seq - 1]);
    }
    this.#recent.add(seq, kept);
    this.lastSeq = seq;
    this.#expectedPrev = hash;
    return true;
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
  keepBytes: boolean,
): AsyncGenerator<{ file: AuditLogFile; batch: LineBatch | ByteLineBatch; first: number }> {
  for (const file of files) {
    let first = 0;
    for await (const batch of lineBatches(file, read, keepBytes)) {
      yield { file, batch, first };
      first += linesOf(batch);
    }
  }
}

/** How many lines a batch holds, without decoding a batch that kept its bytes. */
function linesOf(batch: LineBatch | ByteLineBatch): number {
  return 'bytes' in batch ? batch.count : batch.lines.length;
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
