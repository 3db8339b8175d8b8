import { createHash, type KeyObject, randomBytes, sign, verify as verifySignature } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PhiCacheError } from '../errors.js';
import type { AuditStream } from './audit-event.js';
import { signingKidOf } from './audit-keys.js';
import { canonicalJson } from './canonical-json.js';
import type { AuditLogFile } from './verify.js';

export interface ExportOptions {
  /** The audit directory: `<dir>/<chain>/<stream>-NNNNNN.jsonl` and `<stream>-checkpoints.jsonl`. */
  readonly dir: string;
  /** The export directory, laid out for write-once object storage; created if missing. */
  readonly out: string;
  /** The audit signing key: the manifest is signed by the key that signs the checkpoints. */
  readonly keys: { readonly signingKey: KeyObject; readonly signingKid: string };
  /** The time of the export, ms since the epoch. Default `Date.now()`. */
  readonly now?: number;
}

/** One file of an export, as the manifest lists it. */
export interface ExportedFile {
  /** Where it is under the export directory: `<chain>/<name>`. */
  readonly path: string;
  /** Where `verifyAuditLog` expects it; differs from `path` only for a snapshot of an open stream's checkpoints. */
  readonly logPath: string;
  readonly chain: string;
  readonly stream: AuditStream;
  readonly kind: 'records' | 'checkpoints';
  readonly size: number;
  readonly sha256: string;
  readonly lines: number;
  /** The seq of the first and last line (of a record, or the seq a checkpoint covers); null when unreadable. */
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
}

/** What an export holds of one stream of one chain. */
export interface ExportedStream {
  readonly chain: string;
  readonly stream: AuditStream;
  /**
   * `final`: the writer's final checkpoint is there, so every records file is exported. `abandoned`: no final
   * checkpoint, but the last one is long overdue (the writer died), so every file is exported too. `open`: the
   * newest records file is held back, since its writer may still append to it.
   */
  readonly state: 'final' | 'abandoned' | 'open';
  /** The last record seq the export holds (0 for none). */
  readonly lastSeq: number;
  readonly heldBack: number;
}

export interface ExportManifest {
  readonly format: 'phicache-audit-export';
  readonly formatVersion: 1;
  /** The manifest's name under `manifests/`, without `.json`. */
  readonly id: string;
  readonly exportedAt: string;
  /** The signing key id (`ed25519:<16 hex>`), the same as the checkpoints carry. */
  readonly kid: string;
  readonly chains: readonly string[];
  readonly streams: readonly ExportedStream[];
  readonly files: readonly ExportedFile[];
  /** Ed25519 over the canonical JSON of every other field, base64. */
  readonly sig: string;
}

export type ExportFindingKind =
  | 'manifest-unparseable'
  | 'manifest-signature'
  | 'manifest-kid'
  | 'unsafe-path'
  | 'missing'
  | 'modified';

export interface ExportFinding {
  readonly kind: ExportFindingKind;
  readonly path?: string;
  readonly message: string;
}

export interface ExportVerifyReport {
  readonly ok: boolean;
  /** The parsed manifest, or null when it is not one. */
  readonly manifest: ExportManifest | null;
  readonly files: number;
  readonly findings: readonly ExportFinding[];
  /** The files that match the manifest, under the paths `verifyAuditLog` knows: pass them on to it. */
  readonly log: AuditLogFile[];
}

const RECORDS_FILE = /^(access|admin)-(\d{6})\.jsonl$/;
const CHECKPOINTS_FILE = /^(access|admin)-checkpoints\.jsonl$/;
const STREAMS: readonly AuditStream[] = ['access', 'admin'];
const MANIFESTS = 'manifests';
/**
 * Beyond the verifier's own rule (two periods and 5 s), a full minute more before an open stream counts as
 * abandoned: exporting a file its writer still appends to would wedge the next export on a write-once conflict.
 */
const ABANDONED_SLACK_MS = 60_000;

interface Planned {
  readonly file: ExportedFile;
  readonly bytes: Buffer;
  /** Already in the export directory with the same hash. */
  present: boolean;
}

/**
 * Copies the closed part of an audit directory into `out` for write-once retention storage (S3 Object Lock, GCS
 * Bucket Lock): every records file a writer can no longer append to, each stream's checkpoints, and a manifest
 * signed with the audit signing key. Nothing in `out` is ever overwritten: a file already there with the same
 * SHA-256 is left as it is, and one with other content stops the export before it writes anything.
 */
export async function exportAuditLog(options: ExportOptions): Promise<ExportManifest> {
  const now = options.now ?? Date.now();
  const planned: Planned[] = [];
  const streams: ExportedStream[] = [];
  const chains: string[] = [];
  for (const chain of await listChains(options.dir)) {
    if (chain === MANIFESTS) {
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `a chain is named "${MANIFESTS}"`, {
        hint: `The export keeps its manifests under ${MANIFESTS}/, so that chain cannot be exported beside them. Rename its directory in a copy of the audit directory and export the copy.`,
      });
    }
    const names = (await readdir(join(options.dir, chain))).sort();
    let exportedAny = false;
    for (const stream of STREAMS) {
      const plan = await planStream(options.dir, chain, stream, names, now);
      if (plan === undefined) continue;
      exportedAny = true;
      streams.push(plan.stream);
      for (const [file, bytes] of plan.files) planned.push({ file, bytes, present: false });
    }
    if (exportedAny) chains.push(chain);
  }

  // Every target is checked before the first is written, so a conflict leaves the export directory as it was.
  const conflicts: string[] = [];
  for (const item of planned) {
    const existing = await readIfExists(join(options.out, item.file.path));
    if (existing === undefined) continue;
    if (sha256(existing) === item.file.sha256) item.present = true;
    else conflicts.push(describeConflict(item, existing));
  }
  if (conflicts.length > 0) {
    throw new PhiCacheError(
      'ERR_AUDIT_EXPORT_CONFLICT',
      `the export directory already holds other content at ${conflicts.length} path(s): ${conflicts.slice(0, 5).join('; ')}`,
      {
        hint: 'Exported files are write-once and never overwritten. Find out why they differ (an export of another audit directory, an export cut short, or tampering) before removing anything; meanwhile export into a new directory.',
      },
    );
  }
  for (const item of planned) {
    if (!item.present) await writeOnce(options.out, item.file.path, item.bytes);
  }

  const stamp = new Date(now).toISOString();
  const id = `${stamp.replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`;
  const unsigned: Omit<ExportManifest, 'sig'> = {
    format: 'phicache-audit-export',
    formatVersion: 1,
    id,
    exportedAt: stamp,
    kid: options.keys.signingKid,
    chains,
    streams,
    files: planned.map((item) => item.file),
  };
  const manifest: ExportManifest = {
    ...unsigned,
    sig: sign(null, Buffer.from(canonicalJson(unsigned)), options.keys.signingKey).toString('base64'),
  };
  // Written last, so a manifest never names a file that is not yet in place.
  await writeOnce(
    options.out,
    `${MANIFESTS}/${id}.json`,
    Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`),
  );
  return manifest;
}

/**
 * Checks an export manifest: its signature and key id against the audit signing public key, and the size and
 * SHA-256 of every file it lists under `filesDir`. Goes on past failures and reports each; never throws on bad
 * content. The files that match come back under their log paths, for `verifyAuditLog`.
 */
export async function verifyExportManifest(
  manifestText: string,
  publicKey: KeyObject,
  filesDir: string,
): Promise<ExportVerifyReport> {
  const findings: ExportFinding[] = [];
  const manifest = parseManifest(manifestText);
  if (manifest === undefined) {
    findings.push({
      kind: 'manifest-unparseable',
      message: 'the text is not a phicache audit export manifest',
    });
    return { ok: false, manifest: null, files: 0, findings, log: [] };
  }
  if (!manifestSignatureValid(manifest, publicKey)) {
    findings.push({
      kind: 'manifest-signature',
      message: 'the manifest signature does not verify with the public key',
    });
  }
  if (manifest.kid !== signingKidOf(publicKey)) {
    findings.push({
      kind: 'manifest-kid',
      message: `the manifest names key ${manifest.kid}, the public key is ${signingKidOf(publicKey)}`,
    });
  }
  const log: AuditLogFile[] = [];
  for (const file of manifest.files) {
    if (!safePath(file.path) || !safePath(file.logPath)) {
      findings.push({
        kind: 'unsafe-path',
        path: file.path,
        message: 'the path leaves the export directory',
      });
      continue;
    }
    const bytes = await readIfExists(join(filesDir, file.path));
    if (bytes === undefined) {
      findings.push({ kind: 'missing', path: file.path, message: 'the file is not in the export directory' });
    } else if (bytes.length !== file.size || sha256(bytes) !== file.sha256) {
      findings.push({
        kind: 'modified',
        path: file.path,
        message: 'the file does not match the size and SHA-256 the manifest lists',
      });
    } else {
      log.push({ path: file.logPath, text: bytes.toString('utf8') });
    }
  }
  return { ok: findings.length === 0, manifest, files: manifest.files.length, findings, log };
}

async function listChains(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch (cause) {
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit directory cannot be read', {
      cause,
      hint: 'Pass the directory that holds the chain folders, such as $PHICACHE_HOME/audit.',
    });
  }
}

interface CheckpointLine {
  readonly seq: number;
  readonly ts: number;
  readonly everyMs: number;
  readonly final: boolean;
}

async function planStream(
  dir: string,
  chain: string,
  stream: AuditStream,
  names: readonly string[],
  now: number,
): Promise<{ stream: ExportedStream; files: [ExportedFile, Buffer][] } | undefined> {
  const recordsNames = names.filter((name) => RECORDS_FILE.exec(name)?.[1] === stream);
  const checkpointsName = names.find((name) => CHECKPOINTS_FILE.exec(name)?.[1] === stream);
  const checkpointsBytes =
    checkpointsName === undefined ? undefined : await readFile(join(dir, chain, checkpointsName));
  // Only whole lines count: the writer may be half way through appending the next one.
  const checkpointsText = checkpointsBytes?.toString('utf8') ?? '';
  const complete = checkpointsText.slice(0, checkpointsText.lastIndexOf('\n') + 1);
  const checkpointLines = complete === '' ? [] : complete.slice(0, -1).split('\n');
  const last = checkpointLines.length > 0 ? parseCheckpoint(checkpointLines.at(-1)!) : undefined;
  const state: ExportedStream['state'] =
    last?.final === true
      ? 'final'
      : last !== undefined && now - last.ts > 2 * last.everyMs + 5000 + ABANDONED_SLACK_MS
        ? 'abandoned'
        : 'open';
  const closedNames = state === 'open' ? recordsNames.slice(0, -1) : recordsNames;
  if (state === 'open' && closedNames.length === 0) return undefined;
  if (closedNames.length === 0 && checkpointsBytes === undefined) return undefined;

  const files: [ExportedFile, Buffer][] = [];
  let lastSeq = 0;
  for (const name of closedNames) {
    const bytes = await readFile(join(dir, chain, name));
    const lines = bytes.toString('utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    const firstSeq = seqOf(lines[0]);
    const fileLastSeq = seqOf(lines.at(-1));
    lastSeq = fileLastSeq ?? lastSeq;
    const path = `${chain}/${name}`;
    files.push([
      describe(path, path, chain, stream, 'records', bytes, lines.length, firstSeq, fileLastSeq),
      bytes,
    ]);
  }

  if (checkpointsBytes !== undefined && checkpointsName !== undefined) {
    const logPath = `${chain}/${checkpointsName}`;
    if (state === 'open') {
      // The writer still appends checkpoints, and a write-once object cannot grow: an open stream's checkpoints go
      // out as a snapshot, cut after the last checkpoint within the exported records (so the export has no
      // checkpoint pointing past its end) and named by its line count (so a later, longer one never collides).
      let cut = 0;
      while (cut < checkpointLines.length && (seqOf(checkpointLines[cut]) ?? 0) <= lastSeq) cut += 1;
      const kept = checkpointLines.slice(0, cut);
      const bytes = Buffer.from(kept.map((line) => `${line}\n`).join(''));
      const name = `${stream}-checkpoints-${String(cut).padStart(6, '0')}.jsonl`;
      const file = describe(
        `${chain}/${name}`,
        logPath,
        chain,
        stream,
        'checkpoints',
        bytes,
        cut,
        seqOf(kept[0]),
        seqOf(kept.at(-1)),
      );
      files.push([file, bytes]);
    } else {
      const file = describe(
        logPath,
        logPath,
        chain,
        stream,
        'checkpoints',
        checkpointsBytes,
        checkpointLines.length,
        seqOf(checkpointLines[0]),
        seqOf(checkpointLines.at(-1)),
      );
      files.push([file, checkpointsBytes]);
    }
  }
  return {
    stream: { chain, stream, state, lastSeq, heldBack: recordsNames.length - closedNames.length },
    files,
  };
}

function describe(
  path: string,
  logPath: string,
  chain: string,
  stream: AuditStream,
  kind: ExportedFile['kind'],
  bytes: Buffer,
  lines: number,
  firstSeq: number | null,
  lastSeq: number | null,
): ExportedFile {
  return {
    path,
    logPath,
    chain,
    stream,
    kind,
    size: bytes.length,
    sha256: sha256(bytes),
    lines,
    firstSeq,
    lastSeq,
  };
}

function seqOf(line: string | undefined): number | null {
  if (line === undefined) return null;
  try {
    const seq = (JSON.parse(line) as { seq?: unknown }).seq;
    return Number.isSafeInteger(seq) ? (seq as number) : null;
  } catch {
    return null;
  }
}

function parseCheckpoint(line: string): CheckpointLine | undefined {
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    const ts = typeof value.ts === 'string' ? Date.parse(value.ts) : Number.NaN;
    if (value.type !== 'checkpoint' || Number.isNaN(ts) || !Number.isSafeInteger(value.everyMs))
      return undefined;
    return { seq: Number(value.seq), ts, everyMs: value.everyMs as number, final: value.final === true };
  } catch {
    return undefined;
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the export directory cannot be read at ${path}`, {
      cause: error,
      hint: 'Check that the export directory is readable and writable by this user.',
    });
  }
}

function describeConflict(item: Planned, existing: Buffer): string {
  // An earlier export that died mid-write leaves a prefix of the right bytes: say so, it is the harmless case.
  const cutShort =
    existing.length < item.bytes.length && item.bytes.subarray(0, existing.length).equals(existing);
  return `${item.file.path} (${cutShort ? 'an incomplete copy of this file' : 'different content'})`;
}

/**
 * Creates the file with O_EXCL and writes it sequentially: no temporary name and no rename, which object-storage
 * mounts (mountpoint-s3, gcsfuse) do not all support and which would leave stray objects under a retention lock.
 */
async function writeOnce(out: string, path: string, bytes: Buffer): Promise<void> {
  const target = join(out, path);
  let handle: FileHandle | undefined;
  try {
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    handle = await open(target, 'wx', 0o400);
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (cause) {
    if (handle !== undefined) {
      await handle.close().catch(() => undefined);
      await unlink(target).catch(() => undefined);
    }
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the export could not write ${path}`, {
      cause,
      hint:
        (cause as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'Another export wrote this path at the same time; run one export at a time per export directory.'
          : 'Check the space and permissions of the export directory.',
    });
  }
}

function safePath(path: string): boolean {
  const parts = path.split('/');
  return (
    parts.length === 2 &&
    parts.every((part) => /^[A-Za-z0-9._-]+$/.test(part) && part !== '.' && part !== '..')
  );
}

function parseManifest(text: string): ExportManifest | undefined {
  try {
    const value = JSON.parse(text) as Partial<ExportManifest>;
    const ok =
      value.format === 'phicache-audit-export' &&
      value.formatVersion === 1 &&
      typeof value.kid === 'string' &&
      typeof value.sig === 'string' &&
      Array.isArray(value.files) &&
      value.files.every(
        (file) =>
          typeof file === 'object' &&
          file !== null &&
          typeof file.path === 'string' &&
          typeof file.logPath === 'string' &&
          Number.isSafeInteger(file.size) &&
          typeof file.sha256 === 'string',
      );
    return ok ? (value as ExportManifest) : undefined;
  } catch {
    return undefined;
  }
}

function manifestSignatureValid(manifest: ExportManifest, publicKey: KeyObject): boolean {
  try {
    const { sig, ...unsigned } = manifest;
    return verifySignature(null, Buffer.from(canonicalJson(unsigned)), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}
