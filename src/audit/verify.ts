import { createHash, type Hash, type KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';
import type { AuditStream } from './audit-event.js';
import { deriveStreamKey } from './audit-keys.js';
import type { Notice } from './notice.js';
import { type ParsedLine, parseLine } from './parse-line.js';
import { ParsePool } from './parse-pool.js';
import { type AuditLogFile, lineBatches, listAuditLog, type ReadLinesOptions } from './read-log.js';
import { checkpointHash, checkpointSigned, genesisHash } from './record.js';
import { type FindingPlace, type OutageSpan, type RecordFindingKind, RecordWalker } from './record-walk.js';
import type { ReadCheckpoint } from './restart-mark.js';
import { compareWithWitness, listWitness } from './witness-check.js';

export type { Notice, NoticeKind } from './notice.js';
export type { ParsedLine } from './parse-line.js';
export type { AuditLogFile } from './read-log.js';

/** A stream as an export manifest lists it: how its writer stood and the last record the export holds. */
export interface ExportedStreamState {
  readonly state: 'final' | 'abandoned' | 'open';
  readonly lastSeq: number;
}

export interface VerifyOptions {
  /** The checkpoint signing key: enough to vouch for every record up to each stream's last checkpoint. */
  readonly publicKey: KeyObject;
  /** The stream root: with it, every record's MAC and epoch are checked too, the tail included. */
  readonly streamRoot?: Buffer;
  /** The stream key of an epoch, as `AuditKeys.streamKey` gives it: the same checks as `streamRoot`. */
  readonly streamKey?: (epoch: number) => Buffer;
  /** Slack on the writer's checkpoint period before a gap is reported, in ms. Default 5,000. */
  readonly checkpointSlackMs?: number;
  /** The time of the check, to see whether an open chain's last checkpoint is overdue. Default `Date.now()`. */
  readonly now?: number;
  /** Parsed lines by text, shared between runs over mostly equal logs (the mutation probes use it). */
  readonly cache?: Map<string, ParsedLine>;
  /** How files on disk are read (chunk size, longest line). */
  readonly read?: ReadLinesOptions;
  /**
   * Threads that parse record lines alongside this one, which parses too while it walks the chain, with the public
   * key alone: with the stream root or a stream key every MAC is checked on this thread, and `cache` keeps its
   * parsed lines here, so either keeps the whole check on one thread. 0 checks on this thread only. Default: one
   * less than `availableParallelism()`, at most 3, for a stream whose records files hold more than 4 MiB, else 0
   * (a thread costs tens of ms to start and to warm up, more than a small stream takes to check). The threads
   * start when a stream first needs them and stop before the verification returns or throws; the report is the
   * same with or without them, and a thread that fails makes the verification throw.
   */
  readonly threads?: number;
  /**
   * The streams of an export, by `<chain>/<stream>`. An `open` one was taken while its writer ran: its checkpoints
   * are a snapshot, so its last one is not overdue, and a stream held back whole is not missing.
   */
  readonly exported?: ReadonlyMap<string, ExportedStreamState>;
  /** The export's manifest signature checked: it vouches for each exported stream's records up to its lastSeq. */
  readonly manifestVouches?: boolean;
  /**
   * A witness directory the writer also gave its checkpoints to (`AuditTrailOptions.witness`): every chain, stream
   * and checkpoint it holds must be in the log too. Only `verifyAuditDirectory` reads it.
   */
  readonly witness?: string;
}

export type FindingKind =
  | RecordFindingKind
  | 'checkpoint-unparseable'
  | 'checkpoint-signature'
  | 'checkpoint-chain'
  | 'checkpoint-mismatch'
  | 'checkpoint-gap'
  | 'checkpoint-snapshot'
  | 'truncated'
  | 'after-close'
  | 'unvouched-tail'
  | 'stream-missing'
  | 'witness-chain-missing'
  | 'witness-stream-missing'
  | 'witness-checkpoint-missing'
  | 'witness-contradicted'
  | 'witness-signature'
  | 'witness-unreadable';

export interface Finding {
  readonly kind: FindingKind;
  readonly chain: string;
  /** `access` or `admin`; a stream a chain declared but the verifier does not know keeps its declared name. */
  readonly stream: string;
  readonly file?: string;
  readonly line?: number;
  readonly seq?: number;
  readonly message: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly chains: number;
  readonly records: number;
  readonly checkpoints: number;
  /**
   * Records vouched for by a valid checkpoint or, with the stream root, by their MAC: in each stream, every record
   * up to the last valid checkpoint before its first record finding (with the stream root, up to the last record
   * whose MAC checks before it). A finding never hides what is intact.
   */
  readonly vouched: number;
  readonly findings: readonly Finding[];
  /** What the writer recorded about itself (outages, crashes, restarts, torn bytes set aside): never a failure. */
  readonly notices: readonly Notice[];
}

/** The records of a stream worth starting threads for, when `threads` is not given. */
const THREADS_FROM_BYTES = 4 * 1024 * 1024;
/**
 * The most threads started by default. This thread parses too, so one thread fewer than the cores keeps each core
 * busy (on 2 free cores, 1 thread checked 100,000 records in ~350-380 ms, 2 threads in ~400-420 ms and this
 * thread alone in ~500 ms); past a few, reading the files and walking the chain here are what take the time.
 */
const DEFAULT_THREADS_MAX = 3;

/** The parse threads a large stream gets when `threads` is not given. */
export function defaultVerifyThreads(): number {
  return Math.max(0, Math.min(availableParallelism() - 1, DEFAULT_THREADS_MAX));
}

const RECORDS_FILE = /^(access|admin)-(\d{6})\.jsonl$/;
/** The live checkpoints file, or an export's snapshot of it, named by its line count. */
const CHECKPOINTS_FILE = /^(access|admin)-checkpoints(?:-(\d{6}))?\.jsonl$/;
/** The bytes of a torn last line, set aside by the writer that took the chain up again. */
const TORN_FILE = /^(access|admin)-\d{6}\.torn$/;

/**
 * Verifies an audit directory (`$PHICACHE_HOME/audit`), reading each file line by line: memory stays the same
 * whatever the size of the log. A directory without a chain is an error, never an intact log.
 */
export async function verifyAuditDirectory(dir: string, options: VerifyOptions): Promise<VerifyReport> {
  const files = await listAuditLog(dir);
  if (files.length === 0 && (await isDirectory(join(dir, 'audit')))) {
    throw new PhiCacheError('ERR_AUDIT_NOTHING_TO_VERIFY', `nothing to verify: ${dir} holds no audit chain`, {
      hint: `${join(dir, 'audit')} may be the audit directory: ${dir} looks like a PHICACHE_HOME.`,
    });
  }
  // The witness is listed first, so that a wrong witness path stops the check before the log is read.
  const witness = options.witness === undefined ? undefined : await listWitness(options.witness);
  if (files.length === 0 && witness !== undefined) {
    // Still "could not run" (the wrong directory is the likelier cause), but the chains the witness knows are named.
    const known = [...new Set(witness.map((file) => file.path.split('/')[0]))];
    throw new PhiCacheError('ERR_AUDIT_NOTHING_TO_VERIFY', `nothing to verify: ${dir} holds no audit chain`, {
      hint: `The witness knows ${known.length} chains (${known.slice(0, 5).join(', ')}${known.length > 5 ? ', ...' : ''}): pass the audit directory that holds them; if it is this one, they were deleted.`,
    });
  }
  const report = await verifyAuditLog(files, options, dir);
  if (witness === undefined) return report;
  const found = await compareWithWitness(files, witness, options.publicKey, options.read);
  return { ...report, ok: report.ok && found.length === 0, findings: [...report.findings, ...found] };
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Verifies an audit log's chains: every record's hash over its own bytes, canonical form, link, sequence, MAC and
 * epoch (with the stream root), every checkpoint's signature, link, coverage and period, and that each chain holds
 * every stream it declared. It goes on past failures and reports each bad item with its reason; it throws only
 * when it cannot run: a file it cannot read, or nothing to verify.
 */
export async function verifyAuditLog(
  files: readonly AuditLogFile[],
  options: VerifyOptions,
  where = 'the audit log',
): Promise<VerifyReport> {
  const groups = new Map<
    string,
    Map<AuditStream, { records: AuditLogFile[]; checkpoints: AuditLogFile[] }>
  >();
  const torn: AuditLogFile[] = [];
  for (const file of files) {
    const [chain, name, ...rest] = file.path.split('/');
    if (chain === undefined || name === undefined || rest.length > 0) continue;
    // A torn line's bytes are evidence, not records; anything else (writer.lock) is not the log's.
    if (TORN_FILE.test(name)) torn.push(file);
    const records = RECORDS_FILE.exec(name);
    const stream = (records ?? CHECKPOINTS_FILE.exec(name))?.[1] as AuditStream | undefined;
    if (stream === undefined) continue;
    const streams = groups.get(chain) ?? new Map();
    groups.set(chain, streams);
    const group = streams.get(stream) ?? { records: [], checkpoints: [] };
    streams.set(stream, group);
    (records ? group.records : group.checkpoints).push(file);
  }
  if (groups.size === 0 && (options.exported?.size ?? 0) === 0) {
    throw new PhiCacheError(
      'ERR_AUDIT_NOTHING_TO_VERIFY',
      `nothing to verify: ${where} holds no audit chain`,
    );
  }
  const streamKey = options.streamKey ?? (options.streamRoot && streamKeysOf(options.streamRoot));
  if (
    options.threads !== undefined &&
    (!Number.isSafeInteger(options.threads) || options.threads < 0 || options.threads > 256)
  )
    throw new RangeError('threads must be an integer from 0 to 256');
  // One pool for every stream of the call, started by the first stream that needs it.
  const started: { pool?: ParsePool } = {};
  const poolFor = async (records: readonly AuditLogFile[]): Promise<ParsePool | undefined> => {
    // The MACs are checked, and the cache is filled, on this thread: the threads would parse each line twice.
    if (streamKey !== undefined || options.cache !== undefined) return undefined;
    const threads = defaultVerifyThreads();
    const size =
      options.threads ?? (threads > 0 && (await recordsBytes(records)) > THREADS_FROM_BYTES ? threads : 0);
    if (size === 0) return undefined;
    started.pool ??= new ParsePool(size);
    return started.pool;
  };
  try {
    return await verifyChains(groups, torn, options, streamKey, poolFor);
  } finally {
    await started.pool?.close();
  }
}

async function verifyChains(
  groups: Map<string, Map<AuditStream, { records: AuditLogFile[]; checkpoints: AuditLogFile[] }>>,
  torn: readonly AuditLogFile[],
  options: VerifyOptions,
  streamKey: ((epoch: number) => Buffer) | undefined,
  poolFor: (records: readonly AuditLogFile[]) => Promise<ParsePool | undefined>,
): Promise<VerifyReport> {
  const findings: Finding[] = [];
  const notices: Notice[] = [];
  const totals = { records: 0, checkpoints: 0, vouched: 0 };
  const chains = new Set([
    ...groups.keys(),
    ...[...(options.exported?.keys() ?? [])].map((k) => k.split('/')[0]!),
  ]);
  for (const chain of [...chains].sort()) {
    const streams = groups.get(chain) ?? new Map();
    let declaredStreams: readonly string[] | undefined;
    const gaps: GapCandidate[] = [];
    const spans: OutageSpan[] = [];
    for (const stream of [...streams.keys()].sort()) {
      const result = await verifyStream(
        chain,
        stream,
        streams.get(stream)!,
        { ...options, streamKey },
        await poolFor(streams.get(stream)!.records),
        findings,
        notices,
      );
      totals.records += result.records;
      totals.checkpoints += result.checkpoints;
      totals.vouched += result.vouched;
      declaredStreams ??= result.declaredStreams;
      gaps.push(...result.gaps);
      spans.push(...result.outageSpans);
    }
    // One file sink takes every stream of a chain: an outage one stream recorded kept the others from
    // checkpointing too. So the gaps are judged once every stream's outage records are known.
    for (const gap of gaps) {
      if (gap.to - gap.from - covered(spans, gap.from, gap.to) > gap.allowed)
        findings.push({ kind: 'checkpoint-gap', chain, stream: gap.stream, ...gap.at, message: gap.message });
    }
    checkDeclaredStreams(chain, new Set(streams.keys()), declaredStreams, options.exported, findings);
  }
  for (const file of torn) notices.push(await tornNotice(file));
  return { ok: findings.length === 0, chains: chains.size, ...totals, findings, notices };
}

/** The bytes of a stream's records files, as far as the verifier reads them (in memory: their length). */
async function recordsBytes(records: readonly AuditLogFile[]): Promise<number> {
  let total = 0;
  for (const file of records) {
    if ('text' in file) total += file.text.length;
    else if ('lines' in file) for (const line of file.lines) total += line.length + 1;
    else {
      // A file that cannot be read is reported as such when the walk reads it.
      const size = await stat(file.file).then(
        (s) => s.size,
        () => 0,
      );
      total += Math.min(size, file.limitBytes ?? Number.POSITIVE_INFINITY);
    }
  }
  return total;
}

/** A `.torn` file: the bytes of a last line its writer did not finish, set aside when the chain restarted. */
async function tornNotice(file: AuditLogFile): Promise<Notice> {
  const [chain = '', name = ''] = file.path.split('/');
  let bytes: number;
  if ('file' in file) {
    try {
      bytes = Math.min((await stat(file.file)).size, file.limitBytes ?? Number.POSITIVE_INFINITY);
    } catch (cause) {
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the audit file ${file.path} cannot be read`, {
        cause,
        hint: 'Check that the file exists and that this user may read it.',
      });
    }
  } else if ('text' in file) bytes = Buffer.byteLength(file.text);
  else bytes = file.lines.reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
  return {
    kind: 'torn-bytes',
    chain,
    stream: name.split('-')[0] ?? '',
    file: file.path,
    counts: { bytes },
    message: `${bytes} bytes of a last line its writer did not finish were set aside when the chain restarted`,
  };
}

/**
 * A whole stream deleted (records and checkpoints) leaves no file to find fault with: the chain's opening record
 * on the admin stream says which streams it has, so each one it names must be there. Without an admin stream the
 * declaration itself is gone.
 */
function checkDeclaredStreams(
  chain: string,
  present: ReadonlySet<string>,
  declaredStreams: readonly string[] | undefined,
  exported: ReadonlyMap<string, ExportedStreamState> | undefined,
  findings: Finding[],
): void {
  const heldBack = (stream: string) => exported?.get(`${chain}/${stream}`)?.state === 'open';
  if (!present.has('admin') && !heldBack('admin')) {
    findings.push({
      kind: 'stream-missing',
      chain,
      stream: 'admin',
      message: "the chain's admin stream, whose opening record declares the chain's streams, is missing",
    });
    return;
  }
  for (const stream of declaredStreams ?? []) {
    if (present.has(stream) || heldBack(stream)) continue;
    findings.push({
      kind: 'stream-missing',
      chain,
      stream,
      message: `the chain declared a ${stream} stream when it opened, and none of its files is here`,
    });
  }
}

interface StreamResult {
  records: number;
  checkpoints: number;
  vouched: number;
  declaredStreams: readonly string[] | undefined;
  /** Times without a checkpoint longer than promised, to be judged against the chain's outages. */
  gaps: GapCandidate[];
  outageSpans: readonly OutageSpan[];
}

/** A time between two checkpoints longer than the writer promised: a finding unless an outage covers it. */
interface GapCandidate {
  readonly stream: AuditStream;
  readonly from: number;
  readonly to: number;
  readonly allowed: number;
  readonly message: string;
  readonly at: FindingPlace;
}

/** How many over-long gaps a stream keeps until its outages are known; more are reported at once. */
const KEPT_GAPS = 10_000;

async function verifyStream(
  chain: string,
  stream: AuditStream,
  group: { records: AuditLogFile[]; checkpoints: AuditLogFile[] },
  options: Omit<VerifyOptions, 'streamKey'> & { streamKey: ((epoch: number) => Buffer) | undefined },
  pool: ParsePool | undefined,
  findings: Finding[],
  notices: Notice[],
): Promise<StreamResult> {
  // Records findings first, then checkpoints, then the stream as a whole, as a reader goes through them.
  const recordFindings: Finding[] = [];
  const checkpointFindings: Finding[] = [];
  const streamNotices: Notice[] = [];
  const to =
    (list: Finding[]) =>
    (kind: FindingKind, message: string, at: FindingPlace = {}): void => {
      list.push({ kind, chain, stream, ...at, message });
    };
  const reportCheckpoint = to(checkpointFindings);
  const reportStream = to(findings);
  group.records.sort((a, b) => (a.path < b.path ? -1 : 1));
  const walker = new RecordWalker(
    chain,
    stream,
    group.records,
    {
      ...(options.streamKey ? { streamKey: options.streamKey } : {}),
      ...(options.cache ? { cache: options.cache } : {}),
      ...(options.read ? { read: options.read } : {}),
      ...(pool ? { pool } : {}),
    },
    to(recordFindings),
  );
  const exported = options.exported?.get(`${chain}/${stream}`);
  const slack = options.checkpointSlackMs ?? 5000;

  let checkpoints = 0;
  /** The last checkpoint that verifies and matches the records, whatever came after it. */
  let sealedUpTo = 0;
  /** The same, but only while no record finding came before it and no checkpoint contradicted the records. */
  let vouchedUpTo = 0;
  let recordsContradicted = false;
  let previous: ReadCheckpoint | undefined;
  const gaps: GapCandidate[] = [];
  try {
    const { main, prefixes } = await pickCheckpointsFile(group.checkpoints, options.read, reportCheckpoint);
    let expectedCheckpoint = genesisHash(chain, stream, 'checkpoints');
    const running = prefixes.size > 0 ? createHash('sha256') : undefined;
    comparePrefixes(0, running, prefixes, main, reportCheckpoint);
    let index = 0;
    for await (const batch of main === undefined ? [] : lineBatches(main, options.read)) {
      for (const [i, text] of batch.lines.entries()) {
        index += 1;
        checkpoints += 1;
        running?.update(`${text}\n`);
        comparePrefixes(index, running, prefixes, main, reportCheckpoint);
        const at = { file: main!.path, line: index };
        const parsed = batch.bad.has(i) ? undefined : parseLine(text, options.cache);
        const checkpoint = parsed?.kind === 'checkpoint' ? parsed.checkpoint : undefined;
        if (checkpoint === undefined || checkpoint.chain !== chain || checkpoint.stream !== stream) {
          reportCheckpoint('checkpoint-unparseable', 'the line is not a checkpoint of this stream', at);
          continue;
        }
        const where = { ...at, seq: checkpoint.seq };
        if (parsed?.kind === 'checkpoint' && !parsed.canonical) {
          reportCheckpoint(
            'non-canonical',
            'the checkpoint is not written as the writer writes it (an escape, a repeated key, the key order or spacing)',
            where,
          );
        }
        const signed = checkpointSigned(checkpoint, options.publicKey);
        if (!signed)
          reportCheckpoint(
            'checkpoint-signature',
            'the checkpoint signature does not verify with the public key',
            where,
          );
        if (checkpoint.prevCheckpoint !== expectedCheckpoint) {
          reportCheckpoint(
            'checkpoint-chain',
            'a checkpoint before this one is missing, altered or out of order',
            where,
          );
        }
        expectedCheckpoint = checkpointHash(checkpoint);
        // Only a restart the signing key vouches for excuses the time its writer was down, or a close before it.
        const restart = signed ? checkpoint.restart : undefined;
        if (previous !== undefined && restart === undefined) {
          const from = Date.parse(previous.ts);
          const until = Date.parse(checkpoint.ts);
          const allowed = 2 * previous.everyMs + slack;
          if (until - from > allowed) {
            const gap: GapCandidate = {
              stream,
              from,
              to: until,
              allowed,
              message: `no checkpoint for ${until - from} ms, though the writer promised one every ${previous.everyMs} ms`,
              at: where,
            };
            if (gaps.length < KEPT_GAPS) gaps.push(gap);
            else reportCheckpoint('checkpoint-gap', gap.message, gap.at);
          }
        }
        if (previous?.final === true && restart === undefined) {
          reportCheckpoint(
            'after-close',
            "a checkpoint follows the writer's final checkpoint, and no restart checkpoint took the chain up again",
            where,
          );
        }
        if (restart !== undefined)
          streamNotices.push(restartNotice(chain, stream, checkpoint, previous, where));
        previous = checkpoint;
        if (!signed) continue;
        await walker.advanceTo(checkpoint.seq);
        if (checkpoint.seq > walker.lastSeq) {
          reportCheckpoint(
            'truncated',
            `the checkpoint covers ${checkpoint.seq} records but the log ends at ${walker.lastSeq}`,
            where,
          );
          recordsContradicted = true;
          continue;
        }
        const head =
          checkpoint.seq === 0 ? genesisHash(chain, stream, 'records') : walker.hashAt(checkpoint.seq);
        if (head !== checkpoint.head) {
          reportCheckpoint(
            'checkpoint-mismatch',
            walker.forgotten(checkpoint.seq)
              ? 'the checkpoint goes back to a record too far behind the ones before it to compare'
              : 'the record at the checkpoint is not the one it signed',
            where,
          );
          recordsContradicted = true;
          continue;
        }
        sealedUpTo = Math.max(sealedUpTo, checkpoint.seq);
        if (!recordsContradicted && checkpoint.seq <= (walker.intactUpTo ?? Number.POSITIVE_INFINITY))
          vouchedUpTo = Math.max(vouchedUpTo, checkpoint.seq);
      }
    }
    await walker.finish();
  } catch (error) {
    await walker.abandon();
    throw error;
  }
  findings.push(...recordFindings, ...checkpointFindings);
  notices.push(...[...walker.outages, ...streamNotices].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0)));
  const lastSeq = walker.lastSeq;

  if (walker.count > 0 && group.checkpoints.length === 0)
    reportStream('checkpoint-unparseable', 'the stream has records but no checkpoints file');
  if (previous?.final === true && lastSeq > previous.seq) {
    reportStream(
      'after-close',
      `${lastSeq - previous.seq} records follow the writer's final checkpoint, and no restart checkpoint took the chain up again`,
      { seq: previous.seq + 1 },
    );
  }
  // A live writer checkpoints every `everyMs` even when idle, and a closed one leaves a final checkpoint: an open
  // chain whose last checkpoint is overdue lost checkpoints, or its writer died without closing (and no restart
  // sealed it). An export's snapshot of an open stream ends where the export cut it, so its age says nothing. An
  // outage the log recorded is time the writer could not checkpoint.
  const now = options.now ?? Date.now();
  if (previous !== undefined && !previous.final && exported?.state !== 'open') {
    const since = Date.parse(previous.ts);
    if (now - since > 2 * previous.everyMs + slack) {
      gaps.push({
        stream,
        from: since,
        to: now,
        allowed: 2 * previous.everyMs + slack,
        message: `the chain is open and its last checkpoint (${previous.ts}) is overdue`,
        at: { seq: previous.seq },
      });
    }
  }

  // The records before the first record finding are intact; a checkpoint that contradicts the records limits them
  // to what the checkpoints vouch for.
  const intact = Math.min(walker.intactUpTo ?? lastSeq, recordsContradicted ? vouchedUpTo : lastSeq);
  const byManifest = options.manifestVouches === true ? Math.min(exported?.lastSeq ?? 0, intact) : 0;
  const vouched = Math.max(vouchedUpTo, walker.macVouchedUpTo, byManifest);
  const tailVouched = Math.max(walker.macVouchedUpTo, byManifest);
  if (lastSeq > sealedUpTo && tailVouched < lastSeq) {
    reportStream(
      'unvouched-tail',
      `${lastSeq - Math.max(sealedUpTo, tailVouched)} records after the last checkpoint cannot be vouched for${options.streamKey ? '' : ' with the public key alone'}`,
      { seq: Math.max(sealedUpTo, tailVouched) + 1 },
    );
  }
  return {
    records: walker.count,
    checkpoints,
    vouched,
    declaredStreams: walker.declaredStreams,
    gaps,
    outageSpans: walker.outageSpans,
  };
}

/** How much of the time from `from` to `to` (ms) the outage spans cover, each moment counted once. */
function covered(spans: readonly OutageSpan[], from: number, to: number): number {
  const inside = spans
    .map((span) => ({ from: Math.max(span.from, from), to: Math.min(span.to, to) }))
    .filter((span) => span.to > span.from)
    .sort((a, b) => a.from - b.from);
  let total = 0;
  let reached = from;
  for (const span of inside) {
    const start = Math.max(span.from, reached);
    if (span.to > start) {
      total += span.to - start;
      reached = span.to;
    }
  }
  return total;
}

/** A restart checkpoint the signing key vouches for: who took the chain up, after what, and what it checked. */
function restartNotice(
  chain: string,
  stream: AuditStream,
  checkpoint: ReadCheckpoint,
  before: ReadCheckpoint | undefined,
  at: FindingPlace,
): Notice {
  const restart = checkpoint.restart!;
  const from = restart.lastTs ?? before?.ts;
  const crash = restart.after === 'crash';
  const ending = checkpoint.final ? 'and sealed the chain for good' : 'and the chain went on';
  return {
    kind: crash ? 'crash' : 'restart',
    chain,
    stream,
    ...at,
    ...(from ? { from } : {}),
    to: checkpoint.ts,
    counts: { checked: restart.checked, tornBytes: restart.tornBytes },
    message: crash
      ? `the writer stopped without its final checkpoint; ${restart.by} checked the ${restart.checked} records after the last checkpoint with the stream key${restart.tornBytes > 0 ? `, set aside ${restart.tornBytes} bytes of a torn last line` : ''} ${ending}`
      : `the writer closed, and ${restart.by} took the chain up again at seq ${checkpoint.seq + 1}`,
  };
}

interface Prefix {
  readonly file: AuditLogFile;
  readonly digest: string;
}

/**
 * The checkpoints file to walk. A live directory has one per stream; an export may also hold snapshots of it taken
 * while the writer ran (`<stream>-checkpoints-NNNNNN.jsonl`), each of which must be the first lines of the longest
 * one: that one is walked, and the others are checked against it as it goes.
 */
async function pickCheckpointsFile(
  files: readonly AuditLogFile[],
  read: ReadLinesOptions | undefined,
  report: (kind: FindingKind, message: string, at?: FindingPlace) => void,
): Promise<{ main: AuditLogFile | undefined; prefixes: Map<number, Prefix[]> }> {
  const prefixes = new Map<number, Prefix[]>();
  if (files.length <= 1) return { main: files[0], prefixes };
  const scanned: { file: AuditLogFile; lines: number; digest: string; live: boolean }[] = [];
  for (const file of files) {
    const hash = createHash('sha256');
    let lines = 0;
    for await (const batch of lineBatches(file, read)) {
      for (const text of batch.lines) hash.update(`${text}\n`);
      lines += batch.lines.length;
    }
    const live = CHECKPOINTS_FILE.exec(file.path.split('/')[1] ?? '')?.[2] === undefined;
    scanned.push({ file, lines, digest: hash.digest('hex'), live });
  }
  scanned.sort((a, b) => b.lines - a.lines || Number(b.live) - Number(a.live));
  const [main, ...rest] = scanned;
  for (const other of rest) {
    const list = prefixes.get(other.lines) ?? [];
    list.push({ file: other.file, digest: other.digest });
    prefixes.set(other.lines, list);
  }
  if (main === undefined) report('checkpoint-unparseable', 'no checkpoints file');
  return { main: main?.file, prefixes };
}

function comparePrefixes(
  lines: number,
  running: Hash | undefined,
  prefixes: Map<number, Prefix[]>,
  main: AuditLogFile | undefined,
  report: (kind: FindingKind, message: string, at?: FindingPlace) => void,
): void {
  const due = prefixes.get(lines);
  if (due === undefined || running === undefined) return;
  const digest = running.copy().digest('hex');
  for (const prefix of due) {
    if (prefix.digest !== digest) {
      report(
        'checkpoint-snapshot',
        `the checkpoints snapshot is not the first ${lines} lines of ${main?.path}`,
        {
          file: prefix.file.path,
        },
      );
    }
  }
}

/** Stream keys derived from the root, one per epoch, kept for the few epochs a walk is in at once. */
function streamKeysOf(root: Buffer): (epoch: number) => Buffer {
  const keys = new Map<number, Buffer>();
  return (epoch) => {
    let key = keys.get(epoch);
    if (key === undefined) {
      if (keys.size > 256) keys.clear();
      key = deriveStreamKey(root, epoch);
      keys.set(epoch, key);
    }
    return key;
  };
}
