import { hash as oneShotHash } from 'node:crypto';
import { canonicalRecordBody } from './canonical-record.js';
import { scanCanonicalRecord } from './canonical-scan.js';
import { readCommonRecord } from './common-record.js';
import { type AuditRecord, recordLineBody } from './record.js';
import { asRestartMark, type ReadCheckpoint } from './restart-mark.js';

/**
 * A line parsed once: a well-formed record, a checkpoint, or neither. `hash` is the SHA-256 of the line's own
 * bytes without its hash and MAC (undefined when the line does not end as the writer ends every record), and
 * `canonical` says whether the line is byte for byte what the writer would write for the values it holds: no
 * escape where none is needed, no repeated key, the writer's key order, no whitespace. A reader that keeps the
 * first of two repeated keys, or a grep for a key hash written with an escape, would otherwise see other values
 * than the verifier.
 */
export type ParsedLine =
  | {
      readonly kind: 'record';
      readonly record: ReadRecord;
      readonly hash: string | undefined;
      readonly canonical: boolean;
    }
  | { readonly kind: 'checkpoint'; readonly checkpoint: ReadCheckpoint; readonly canonical: boolean }
  | { readonly kind: 'bad' };

/** What the verifier reads of a record: its place in the chain, its seals, and what an outage or opening says. */
export type ReadRecord = Pick<
  AuditRecord,
  'action' | 'chain' | 'detail' | 'hash' | 'mac' | 'mk' | 'outcome' | 'prev' | 'seq' | 'stream' | 'ts'
>;

const BAD: ParsedLine = { kind: 'bad' };
/** `,"hash":"<64 hex>","mac":"<64 hex>"}`: how every record line ends. */
const LINE_TAIL_LENGTH = ',"hash":"","mac":""}'.length + 128;

export function parseLine(text: string, cache?: Map<string, ParsedLine>): ParsedLine {
  const known = cache?.get(text);
  if (known !== undefined) return known;
  let parsed = BAD;
  const record = readCommonRecord(text) ?? scanRecordLine(text);
  if (record !== undefined) {
    // Canonical by construction, and its tail is exactly `hash` and `mac`: the body is the text before them.
    const hash = oneShotHash('sha256', `${text.slice(0, -LINE_TAIL_LENGTH)}}`, 'hex');
    parsed = { kind: 'record', record, hash, canonical: true };
  } else parsed = parseAny(text);
  if (cache !== undefined) {
    if (cache.size > 1_000_000) cache.clear();
    cache.set(text, parsed);
  }
  return parsed;
}

/**
 * A record line read by the general scan, with the checks every record line must pass (a whole chain position, a
 * time that parses, hex hash and MAC); undefined for any other line. `readCommonRecord` reads most lines faster.
 */
export function scanRecordLine(text: string): ReadRecord | undefined {
  const scanned = scanCanonicalRecord(text);
  const record = scanned === undefined ? undefined : asRecord(scanned);
  return record !== undefined && isLowerHex64(record.mac) ? record : undefined;
}

/** Any other line: parsed by JSON.parse, and its form decided by serializing what was read. */
function parseAny(text: string): ParsedLine {
  let parsed = BAD;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON: reported by the caller as an unparseable line.
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const fields = value as Record<string, unknown>;
    const record = asRecord(fields);
    if (record !== undefined) parsed = parseRecord(text, fields, record);
    else {
      const checkpoint = asCheckpoint(fields);
      if (checkpoint !== undefined)
        parsed = { kind: 'checkpoint', checkpoint, canonical: isCanonicalCheckpoint(text, fields) };
    }
  }
  return parsed;
}

/**
 * A record line is canonical when its keys are sorted (the tail's `hash` and `mac` last), every number is a safe
 * integer, and serializing what the parser read gives back the very text: JSON.stringify writes no escape JSON
 * does not need, no space and no repeated key, so any other spelling differs. That needs one native
 * serialization and no copy of the object; only a line that fails it takes the writer's own serializer, to decide
 * the rare cases the quick test cannot (a key that looks like an array index, which the parser reorders).
 */
function parseRecord(text: string, fields: Record<string, unknown>, record: AuditRecord): ParsedLine {
  if (
    typeof fields.mac === 'string' &&
    isLowerHex64(fields.mac) &&
    recordKeysInOrder(fields) &&
    JSON.stringify(fields) === text
  ) {
    const hash = oneShotHash('sha256', `${text.slice(0, -LINE_TAIL_LENGTH)}}`, 'hex');
    return { kind: 'record', record, hash, canonical: true };
  }
  const body = recordLineBody(text);
  return {
    kind: 'record',
    record,
    hash: body === undefined ? undefined : oneShotHash('sha256', body, 'hex'),
    canonical: body !== undefined && isCanonicalBody(fields, body),
  };
}

function recordKeysInOrder(fields: Record<string, unknown>): boolean {
  const keys = Object.keys(fields);
  const n = keys.length;
  if (n < 3 || keys[n - 2] !== 'hash' || keys[n - 1] !== 'mac') return false;
  for (let i = 0; i < n - 2; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!canonicalValue(fields[keys[i]!])) return false;
  }
  return true;
}

/** Numbers are safe integers and object keys sorted, at every depth. */
function canonicalValue(value: unknown): boolean {
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(canonicalValue);
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1]! < keys[i]!)) return false;
    if (!canonicalValue((value as Record<string, unknown>)[keys[i]!])) return false;
  }
  return true;
}

/** The body the line holds, written the writer's way, is the very text the line's hash covers. */
function isCanonicalBody(fields: Record<string, unknown>, body: string): boolean {
  const { hash: _hash, mac: _mac, ...rest } = fields;
  try {
    return canonicalRecordBody(rest) === body;
  } catch {
    // A number that is not a safe integer, or a value canonical JSON cannot hold.
    return false;
  }
}

/**
 * The order in which the writer writes a checkpoint's keys, each once: its fields in the order of `Checkpoint`, a
 * restart mark (when there is one, its own keys sorted) after `final`, and the signature last.
 */
const CHECKPOINT_ORDER = 'v,type,chain,stream,seq,head,ts,everyMs,everyRecords,prevCheckpoint,final,kid,sig';
const RESTART_CHECKPOINT_ORDER = CHECKPOINT_ORDER.replace(',final,', ',final,restart,');

function isCanonicalCheckpoint(text: string, fields: Record<string, unknown>): boolean {
  const order = Object.keys(fields).join(',');
  if (order !== (fields.restart === undefined ? CHECKPOINT_ORDER : RESTART_CHECKPOINT_ORDER)) return false;
  for (const key in fields) if (!canonicalValue(fields[key])) return false;
  return JSON.stringify(fields) === text;
}

/** 64 lowercase hex digits, as the writer writes a hash or a MAC (a loop: a regular expression costs more here). */
function isLowerHex64(text: string): boolean {
  if (text.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

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
    isLowerHex64(value.hash) &&
    typeof value.mac === 'string';
  return ok ? (value as unknown as AuditRecord) : undefined;
}

function asCheckpoint(value: Record<string, unknown>): ReadCheckpoint | undefined {
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
    typeof value.sig === 'string' &&
    (value.restart === undefined || asRestartMark(value.restart) !== undefined);
  return ok ? (value as unknown as ReadCheckpoint) : undefined;
}
