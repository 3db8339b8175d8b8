import { type KeyObject, verify as verifySignature } from 'node:crypto';
import type { AuditStream } from './audit-event.js';
import { deriveStreamKey, macEpochOf } from './audit-keys.js';
import {
  type AuditRecord,
  type Checkpoint,
  checkpointHash,
  checkpointSigningInput,
  genesisHash,
  macMatches,
  recordHash,
} from './record.js';

/**
 * One file of an audit directory: its path relative to the directory (`<chain>/<file>`) and its text, or its lines
 * already split (which lets a caller that verifies many variants of one log reuse the line strings).
 */
export type AuditLogFile =
  | { readonly path: string; readonly text: string }
  | { readonly path: string; readonly lines: readonly string[] };

export interface VerifyOptions {
  /** The checkpoint signing key: enough to vouch for every record up to each stream's last checkpoint. */
  readonly publicKey: KeyObject;
  /** The stream root: with it, every record's MAC and epoch are checked too, the tail included. */
  readonly streamRoot?: Buffer;
  /** Slack on the writer's checkpoint period before a gap is reported, in ms. Default 5,000. */
  readonly checkpointSlackMs?: number;
  /** The time of the check, to see whether an open chain's last checkpoint is overdue. Default `Date.now()`. */
  readonly now?: number;
  /** Parsed lines by text, shared between runs over mostly equal logs (the mutation probes use it). */
  readonly cache?: Map<string, ParsedLine>;
}

export type FindingKind =
  | 'unparseable'
  | 'modified'
  | 'chain-broken'
  | 'sequence-gap'
  | 'reordered'
  | 'duplicate'
  | 'inserted'
  | 'misplaced'
  | 'mac-bad'
  | 'mac-epoch'
  | 'checkpoint-unparseable'
  | 'checkpoint-signature'
  | 'checkpoint-chain'
  | 'checkpoint-mismatch'
  | 'checkpoint-gap'
  | 'truncated'
  | 'after-close'
  | 'unvouched-tail';

export interface Finding {
  readonly kind: FindingKind;
  readonly chain: string;
  readonly stream: AuditStream;
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
  /** Records vouched for by a valid checkpoint or, with the stream root, by their MAC. */
  readonly vouched: number;
  readonly findings: readonly Finding[];
}

/** A line parsed once: a well-formed record with its recomputed hash, a checkpoint, or neither. */
export type ParsedLine =
  | { readonly kind: 'record'; readonly record: AuditRecord; readonly hash: string | undefined }
  | { readonly kind: 'checkpoint'; readonly checkpoint: Checkpoint }
  | { readonly kind: 'bad' };

const RECORDS_FILE = /^(access|admin)-(\d{6})\.jsonl$/;
const CHECKPOINTS_FILE = /^(access|admin)-checkpoints\.jsonl$/;

/**
 * Verifies an audit directory's chains: every record's hash and link, sequence, MAC and epoch (with the stream
 * root), and every checkpoint's signature, link, coverage and period. It goes on past failures and reports each
 * bad item with its reason; it never throws on bad content.
 */
export function verifyAuditLog(files: readonly AuditLogFile[], options: VerifyOptions): VerifyReport {
  const groups = new Map<string, { records: AuditLogFile[]; checkpoints: AuditLogFile[] }>();
  for (const file of files) {
    const [chain, name, ...rest] = file.path.split('/');
    if (chain === undefined || name === undefined || rest.length > 0) continue;
    const records = RECORDS_FILE.exec(name);
    const checkpoints = CHECKPOINTS_FILE.exec(name);
    const stream = (records ?? checkpoints)?.[1];
    if (stream === undefined) continue;
    const key = `${chain}/${stream}`;
    const group = groups.get(key) ?? { records: [], checkpoints: [] };
    groups.set(key, group);
    (records ? group.records : group.checkpoints).push(file);
  }
  const findings: Finding[] = [];
  const totals = { records: 0, checkpoints: 0, vouched: 0 };
  const chains = new Set<string>();
  for (const [key, group] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [chain, stream] = key.split('/') as [string, AuditStream];
    chains.add(chain);
    group.records.sort((a, b) => (a.path < b.path ? -1 : 1));
    const result = verifyStream(chain, stream, group, options, findings);
    totals.records += result.records;
    totals.checkpoints += result.checkpoints;
    totals.vouched += result.vouched;
  }
  return { ok: findings.length === 0, chains: chains.size, ...totals, findings };
}

function verifyStream(
  chain: string,
  stream: AuditStream,
  group: { records: AuditLogFile[]; checkpoints: AuditLogFile[] },
  options: VerifyOptions,
  findings: Finding[],
): { records: number; checkpoints: number; vouched: number } {
  const report = (
    kind: FindingKind,
    message: string,
    at: { file?: string; line?: number; seq?: number } = {},
  ) => findings.push({ kind, chain, stream, ...at, message });
  const cache = options.cache ?? new Map<string, ParsedLine>();

  // Records, in file order, checked one by one and then as a chain.
  const bySeq = new Map<number, AuditRecord>();
  let expectedSeq = 1;
  let expectedPrev = genesisHash(chain, stream, 'records');
  let lastMk = Number.NEGATIVE_INFINITY;
  let count = 0;
  let macVouchedUpTo = 0;
  let macIntact = options.streamRoot !== undefined;
  const epochKeys = new Map<number, Buffer>();
  for (const file of group.records) {
    for (const [index, text] of lines(file)) {
      count += 1;
      const at = (seq?: number) => ({
        file: file.path,
        line: index + 1,
        ...(seq === undefined ? {} : { seq }),
      });
      const parsed = parseLine(text, cache);
      if (parsed.kind !== 'record') {
        report('unparseable', 'the line is not a well-formed audit record', at());
        macIntact = false;
        continue;
      }
      const record = parsed.record;
      if (record.chain !== chain || record.stream !== stream) {
        report('misplaced', 'the record belongs to another chain or stream', at(record.seq));
        macIntact = false;
        continue;
      }
      if (parsed.hash !== record.hash) {
        report('modified', 'the record does not match its hash', at(record.seq));
        macIntact = false;
      }
      if (record.seq === expectedSeq) {
        if (record.prev !== expectedPrev) {
          report('chain-broken', 'the record does not link to the one before it', at(record.seq));
          macIntact = false;
        }
        bySeq.set(record.seq, record);
        expectedSeq += 1;
        expectedPrev = record.hash;
      } else if (record.seq > expectedSeq) {
        report('sequence-gap', `records ${expectedSeq} to ${record.seq - 1} are missing`, at(record.seq));
        macIntact = false;
        bySeq.set(record.seq, record);
        expectedSeq = record.seq + 1;
        expectedPrev = record.hash;
      } else {
        const earlier = bySeq.get(record.seq);
        if (earlier === undefined)
          report('reordered', 'the record appears after records that follow it', at(record.seq));
        else if (earlier.hash === record.hash)
          report('duplicate', 'the record appears twice', at(record.seq));
        else report('inserted', 'a second record claims a sequence number already used', at(record.seq));
        macIntact = false;
        continue;
      }
      if (options.streamRoot !== undefined) {
        // The MAC must be made with the key of the epoch the record's own time falls in, and epochs never go back:
        // a key leaked later cannot re-vouch for older records (journald CVE-2023-31439).
        const tsEpoch = macEpochOf(Date.parse(record.ts));
        if (record.mk !== tsEpoch || record.mk < lastMk) {
          report('mac-epoch', 'the MAC claims a key epoch other than the one of its time', at(record.seq));
          macIntact = false;
        } else {
          let key = epochKeys.get(record.mk);
          if (key === undefined) {
            key = deriveStreamKey(options.streamRoot, record.mk);
            epochKeys.set(record.mk, key);
          }
          if (!macMatches(key, record.hash, record.mac)) {
            report('mac-bad', 'the MAC does not match', at(record.seq));
            macIntact = false;
          }
        }
        lastMk = Math.max(lastMk, record.mk);
        if (macIntact) macVouchedUpTo = record.seq;
      }
    }
  }
  const lastSeq = expectedSeq - 1;

  // Checkpoints: signed, linked one to the next, matching the records they cover, and frequent enough.
  let expectedCheckpoint = genesisHash(chain, stream, 'checkpoints');
  let vouchedUpTo = 0;
  let checkpoints = 0;
  let previous: Checkpoint | undefined;
  const slack = options.checkpointSlackMs ?? 5000;
  for (const file of group.checkpoints) {
    for (const [index, text] of lines(file)) {
      checkpoints += 1;
      const at = { file: file.path, line: index + 1 };
      const parsed = parseLine(text, cache);
      const checkpoint = parsed.kind === 'checkpoint' ? parsed.checkpoint : undefined;
      if (checkpoint === undefined || checkpoint.chain !== chain || checkpoint.stream !== stream) {
        report('checkpoint-unparseable', 'the line is not a checkpoint of this stream', at);
        continue;
      }
      const where = { ...at, seq: checkpoint.seq };
      const signed = safeVerify(checkpoint, options.publicKey);
      if (!signed)
        report('checkpoint-signature', 'the checkpoint signature does not verify with the public key', where);
      if (checkpoint.prevCheckpoint !== expectedCheckpoint) {
        report('checkpoint-chain', 'a checkpoint before this one is missing, altered or out of order', where);
      }
      expectedCheckpoint = checkpointHash(checkpoint);
      if (previous !== undefined) {
        const gap = Date.parse(checkpoint.ts) - Date.parse(previous.ts);
        if (gap > 2 * previous.everyMs + slack) {
          report(
            'checkpoint-gap',
            `no checkpoint for ${gap} ms, though the writer promised one every ${previous.everyMs} ms`,
            where,
          );
        }
      }
      previous = checkpoint;
      if (!signed) continue;
      if (checkpoint.seq > lastSeq) {
        report(
          'truncated',
          `the checkpoint covers ${checkpoint.seq} records but the log ends at ${lastSeq}`,
          where,
        );
        continue;
      }
      const head =
        checkpoint.seq === 0 ? genesisHash(chain, stream, 'records') : bySeq.get(checkpoint.seq)?.hash;
      if (head !== checkpoint.head) {
        report('checkpoint-mismatch', 'the record at the checkpoint is not the one it signed', where);
        continue;
      }
      vouchedUpTo = Math.max(vouchedUpTo, checkpoint.seq);
    }
  }
  if (count > 0 && group.checkpoints.length === 0) {
    report('checkpoint-unparseable', 'the stream has records but no checkpoints file');
  }
  if (previous?.final === true && lastSeq > previous.seq) {
    report('after-close', `${lastSeq - previous.seq} records follow the writer's final checkpoint`, {
      seq: previous.seq + 1,
    });
  }
  // A live writer checkpoints every `everyMs` even when idle, and a closed one leaves a final checkpoint: an open
  // chain whose last checkpoint is overdue lost checkpoints, or its writer died without closing.
  const now = options.now ?? Date.now();
  if (
    previous !== undefined &&
    !previous.final &&
    now - Date.parse(previous.ts) > 2 * previous.everyMs + slack
  ) {
    report('checkpoint-gap', `the chain is open and its last checkpoint (${previous.ts}) is overdue`, {
      seq: previous.seq,
    });
  }

  const intactRecords = findings.some((f) => f.chain === chain && f.stream === stream) ? 0 : lastSeq;
  const vouched = Math.max(Math.min(vouchedUpTo, intactRecords), macVouchedUpTo);
  if (lastSeq > vouchedUpTo && vouched < lastSeq) {
    report(
      'unvouched-tail',
      `${lastSeq - vouchedUpTo} records after the last checkpoint cannot be vouched for${options.streamRoot ? '' : ' with the public key alone'}`,
      { seq: vouchedUpTo + 1 },
    );
  }
  return { records: count, checkpoints, vouched };
}

function lines(file: AuditLogFile): IterableIterator<[number, string]> {
  if ('lines' in file) return file.lines.entries();
  const all = file.text.split('\n');
  if (all.at(-1) === '') all.pop();
  return all.entries();
}

function parseLine(text: string, cache: Map<string, ParsedLine>): ParsedLine {
  const known = cache.get(text);
  if (known !== undefined) return known;
  let parsed: ParsedLine = { kind: 'bad' };
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const fields = value as Record<string, unknown>;
      const record = asRecord(fields);
      const checkpoint = record === undefined ? asCheckpoint(fields) : undefined;
      if (record !== undefined) parsed = { kind: 'record', record, hash: safeHash(record) };
      else if (checkpoint !== undefined) parsed = { kind: 'checkpoint', checkpoint };
    }
  } catch {
    // Not JSON: reported by the caller as an unparseable line.
  }
  if (cache.size > 1_000_000) cache.clear();
  cache.set(text, parsed);
  return parsed;
}

function safeHash(record: AuditRecord): string | undefined {
  try {
    return recordHash(record);
  } catch {
    return undefined;
  }
}

function safeVerify(checkpoint: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return verifySignature(
      null,
      checkpointSigningInput(checkpoint),
      publicKey,
      Buffer.from(checkpoint.sig, 'base64'),
    );
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function asRecord(value: Record<string, unknown>): AuditRecord | undefined {
  const ok =
    Number.isSafeInteger(value.seq) &&
    (value.seq as number) > 0 &&
    Number.isSafeInteger(value.mk) &&
    typeof value.chain === 'string' &&
    (value.stream === 'access' || value.stream === 'admin') &&
    typeof value.ts === 'string' &&
    !Number.isNaN(Date.parse(value.ts)) &&
    typeof value.prev === 'string' &&
    typeof value.hash === 'string' &&
    HEX64.test(value.hash) &&
    typeof value.mac === 'string';
  return ok ? (value as unknown as AuditRecord) : undefined;
}

function asCheckpoint(value: Record<string, unknown>): Checkpoint | undefined {
  const ok =
    value.type === 'checkpoint' &&
    Number.isSafeInteger(value.seq) &&
    (value.seq as number) >= 0 &&
    typeof value.chain === 'string' &&
    (value.stream === 'access' || value.stream === 'admin') &&
    typeof value.head === 'string' &&
    typeof value.ts === 'string' &&
    !Number.isNaN(Date.parse(value.ts)) &&
    Number.isSafeInteger(value.everyMs) &&
    typeof value.prevCheckpoint === 'string' &&
    typeof value.sig === 'string';
  return ok ? (value as unknown as Checkpoint) : undefined;
}
