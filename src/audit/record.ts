import { createHmac, type KeyObject, sign, timingSafeEqual, verify } from 'node:crypto';
import type { AuditEvent, AuditStream } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { canonicalRecordBody } from './canonical-record.js';
import { sha256Hex as oneShotSha256Hex } from './sha256.js';

/**
 * A chained audit record: the event plus its place in one instance's stream. `hash` covers every other field
 * (so `prev` links the chain), and `mac` is an HMAC of `hash` under the stream key of epoch `mk`.
 */
export interface AuditRecord extends AuditEvent {
  /** Which writer's chain: one per process, so a fleet never serializes on one log. */
  readonly chain: string;
  readonly seq: number;
  /** The MAC key epoch; must be the epoch of `ts`. */
  readonly mk: number;
  readonly prev: string;
  readonly hash: string;
  readonly mac: string;
}

/** A signed statement that a stream's chain had `seq` records ending in `head` at `ts`. */
export interface Checkpoint {
  readonly v: 1;
  readonly type: 'checkpoint';
  readonly chain: string;
  readonly stream: AuditStream;
  readonly seq: number;
  readonly head: string;
  readonly ts: string;
  /** The writer's promise: a checkpoint at least this often, in ms, and every `everyRecords` records. */
  readonly everyMs: number;
  readonly everyRecords: number;
  /** Hash of the previous checkpoint line of this chain and stream, or the genesis hash. */
  readonly prevCheckpoint: string;
  /** Set on the writer's last checkpoint, when it closed cleanly, and on the checkpoint that seals an orphan chain. */
  readonly final: boolean;
  /** Set on the first checkpoint of a writer that took the chain up again (docs/audit-log.md, restart checkpoints). */
  readonly restart?: RestartNote;
  readonly kid: string;
  readonly sig: string;
}

/** What the writer that took a chain up found: how the last writer stopped, and what was checked and set aside. */
export interface RestartNote {
  readonly after: 'crash' | 'close';
  /** The chain id of the writer that wrote this checkpoint (another chain's when it sealed an orphan). */
  readonly by: string;
  /** Records after the previous checkpoint whose hash, link and MAC were checked. */
  readonly checked: number;
  /** ISO time of the last record found (the previous checkpoint's time when there was none). */
  readonly lastTs: string;
  /** Bytes of a torn last line moved to a `.torn` file. */
  readonly tornBytes: number;
}

export function sha256Hex(text: string): string {
  return oneShotSha256Hex(text);
}

/** Signs a checkpoint and writes its line: JSON in the field order given, which the verifier requires. */
export function signCheckpoint(
  unsigned: Omit<Checkpoint, 'sig'>,
  signingKey: KeyObject,
): { checkpoint: Checkpoint; line: string } {
  const checkpoint: Checkpoint = {
    ...unsigned,
    sig: sign(null, checkpointSigningInput(unsigned), signingKey).toString('base64'),
  };
  return { checkpoint, line: JSON.stringify(checkpoint) };
}

/** The `prev` of a chain's first record and the `prevCheckpoint` of its first checkpoint. */
export function genesisHash(chain: string, stream: AuditStream, what: 'records' | 'checkpoints'): string {
  return sha256Hex(canonicalJson({ genesis: what, chain, stream }));
}

/**
 * The hash of a record built in memory: SHA-256 of the canonical JSON of everything but `hash` and `mac`. For a
 * line read back, the verifier hashes the line's own bytes instead (`recordLineBody`), which for a canonical line
 * are exactly these.
 */
export function recordHash(record: Omit<AuditRecord, 'hash' | 'mac'> | AuditRecord): string {
  const { hash: _hash, mac: _mac, ...body } = record as AuditRecord;
  return sha256Hex(canonicalRecordBody(body));
}

/**
 * A record body sealed: its hash, and the JSON line to write, made from the canonical text itself (the body
 * without its closing brace, then `hash` and `mac`), so the trail serializes each record once.
 */
export function sealRecordBody(body: Omit<AuditRecord, 'hash' | 'mac'>, mac: (hash: string) => string) {
  const canonical = canonicalRecordBody(body);
  const hash = sha256Hex(canonical);
  const tag = mac(hash);
  return { hash, mac: tag, line: `${canonical.slice(0, -1)},"hash":"${hash}","mac":"${tag}"}` };
}

/** How every record line ends: its hash, then its MAC, both lowercase hex, then the closing brace. */
const LINE_TAIL = /^,"hash":"[0-9a-f]{64}","mac":"[0-9a-f]{64}"\}$/;
const LINE_TAIL_LENGTH = ',"hash":"","mac":""}'.length + 128;

/**
 * The exact text a record line's hash covers: the line without its trailing `,"hash":…,"mac":…`, closed again.
 * For a line the trail wrote this is the canonical JSON of the body, byte for byte; `undefined` when the line does
 * not end the way the trail ends every line.
 */
export function recordLineBody(line: string): string | undefined {
  if (line.length <= LINE_TAIL_LENGTH || !LINE_TAIL.test(line.slice(-LINE_TAIL_LENGTH))) return undefined;
  return `${line.slice(0, -LINE_TAIL_LENGTH)}}`;
}

export function recordMac(streamKey: Buffer, hash: string): string {
  return createHmac('sha256', streamKey).update(hash).digest('hex');
}

export function macMatches(streamKey: Buffer, hash: string, mac: string): boolean {
  const expected = Buffer.from(recordMac(streamKey, hash), 'hex');
  const given = Buffer.from(mac, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The bytes a checkpoint's signature covers: its canonical JSON without `sig`. */
export function checkpointSigningInput(checkpoint: Omit<Checkpoint, 'sig'> | Checkpoint): Buffer {
  const { sig: _sig, ...body } = checkpoint as Checkpoint;
  return Buffer.from(canonicalJson(body));
}

/** Whether the checkpoint's signature verifies with the public key; a malformed signature does not. */
export function checkpointSigned(checkpoint: Checkpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, checkpointSigningInput(checkpoint), publicKey, Buffer.from(checkpoint.sig, 'base64'));
  } catch {
    return false;
  }
}

/** The hash the next checkpoint links to: of the whole line, signature included. */
export function checkpointHash(checkpoint: Checkpoint): string {
  return sha256Hex(canonicalJson(checkpoint));
}
