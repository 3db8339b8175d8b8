import {
  createHash,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify as verifySignature,
} from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, realpath, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PhiCacheError } from '../errors.js';
import type { AuditStream } from './audit-event.js';
import { signingKidOf } from './audit-keys.js';
import { canonicalJson } from './canonical-json.js';
import { type AuditLogFile, chainDirectories, lineBatches } from './read-log.js';
import { type ExportedStreamState, type Finding, verifyAuditLog } from './verify.js';

export interface ExportOptions {
  /** The audit directory: `<dir>/<chain>/<stream>-NNNNNN.jsonl` and `<stream>-checkpoints.jsonl`. */
  readonly dir: string;
  /** The export directory, laid out for write-once object storage; created if missing. */
  readonly out: string;
  /**
   * The audit signing key: the manifest is signed by the key that signs the checkpoints. With the stream key
   * (`AuditKeys` has both) the export also checks every record's MAC, which an open stream's records after its
   * last checkpoint need before the manifest may vouch for them.
   */
  readonly keys: {
    readonly signingKey: KeyObject;
    readonly signingKid: string;
    readonly streamKey?: (epoch: number) => Buffer;
  };
  /** The time of the export, ms since the epoch. Default `Date.now()`. */
  readonly now?: number;
}

/** One file of an export, as the manifest lists it. */
export interface ExportedFile {
  /** Where it is under the export directory: `<chain>/<name>`. */
  readonly path: string;
  /** Where `verifyAuditLog` expects it: the same as `path` (exports before snapshots were known to it differed). */
  readonly logPath: string;
  readonly chain: string;
  readonly stream: AuditStream;
  /** `torn`: the bytes of a torn last line a restarted writer set aside (`<stream>-NNNNNN.torn`), kept as evidence. */
  readonly kind: 'records' | 'checkpoints' | 'torn';
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
  /** The streams the manifest lists, for `verifyAuditLog`'s `exported` option. */
  readonly exported: ReadonlyMap<string, ExportedStreamState>;
  /** The signature and key id checked: the manifest may vouch for what it lists. */
  readonly signed: boolean;
}

/** `audit export` verified the log and found problems: nothing was written. */
export class AuditLogInvalidError extends PhiCacheError {
  readonly findings: readonly Finding[];

  constructor(findings: readonly Finding[]) {
    super(
      'ERR_AUDIT_LOG_INVALID',
      `the audit log has ${findings.length} problem(s), so nothing was exported`,
    );
    this.name = 'AuditLogInvalidError';
    this.findings = findings;
  }
}

const RECORDS_FILE = /^(access|admin)-(\d{6})\.jsonl$/;
const CHECKPOINTS_FILE = /^(access|admin)-checkpoints\.jsonl$/;
const SNAPSHOT_FILE = /^(access|admin)-checkpoints-\d{6}\.jsonl$/;
/** Written once, when a writer takes the chain up again; `writer.lock` and other files are not exported. */
const TORN_FILE = /^(access|admin)-\d{6}\.torn$/;
const STREAMS: readonly AuditStream[] = ['access', 'admin'];
const MANIFESTS = 'manifests';
/**
 * Beyond the verifier's own rule (two periods and 5 s), a full minute more before an open stream counts as
 * abandoned: exporting a file its writer still appends to would wedge the next export on a write-once conflict.
 */
const ABANDONED_SLACK_MS = 60_000;

interface Planned {
  readonly file: ExportedFile;
  /** Where its bytes are read from, and how many: a snapshot is the first bytes of a file still growing. */
  readonly source: string;
  readonly limitBytes: number;
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
  if (await isInside(options.out, options.dir)) {
    throw new RangeError('the export directory must not be the audit directory or inside it');
  }
  const planned: Planned[] = [];
  const streams: ExportedStream[] = [];
  const chains: string[] = [];
  for (const chain of await chainDirectories(options.dir)) {
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
      planned.push(...plan.files);
    }
    if (exportedAny) chains.push(chain);
  }
  await verifyBeforeExport(planned, streams, options, now);

  // Every target is checked before the first is written, so a conflict leaves the export directory as it was.
  const conflicts: string[] = [];
  for (const item of planned) {
    const existing = await digestIfExists(join(options.out, item.file.path));
    if (existing === undefined) continue;
    if (existing.sha256 === item.file.sha256) item.present = true;
    else conflicts.push(await describeConflict(item, existing));
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
    if (!item.present) await copyOnce(options.out, item);
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
 * The export signs for what it copies, so it first verifies exactly that: the closed records files and the
 * checkpoints it will copy, read from the audit directory line by line, with the stream key when it has it. Any
 * finding stops it, except that a writer stopped without closing (an abandoned stream's overdue checkpoint) is
 * evidence to keep, and the manifest names the stream abandoned.
 */
async function verifyBeforeExport(
  planned: readonly Planned[],
  streams: readonly ExportedStream[],
  options: ExportOptions,
  now: number,
): Promise<void> {
  const view: AuditLogFile[] = planned.map((item) => ({
    path: item.file.path,
    file: item.source,
    limitBytes: item.limitBytes,
  }));
  const exported = new Map(
    streams.map((s) => [`${s.chain}/${s.stream}`, { state: s.state, lastSeq: s.lastSeq }]),
  );
  const report = await verifyAuditLog(
    view,
    {
      publicKey: createPublicKey(options.keys.signingKey),
      ...(options.keys.streamKey ? { streamKey: options.keys.streamKey } : {}),
      now,
      exported,
    },
    options.dir,
  );
  const findings = report.findings.filter(
    (f) =>
      !(
        f.kind === 'checkpoint-gap' &&
        f.file === undefined &&
        exported.get(`${f.chain}/${f.stream}`)?.state === 'abandoned'
      ),
  );
  if (findings.length > 0) throw new AuditLogInvalidError(findings);
}

/** True when `inner` is `outer` or lies under it, symbolic links resolved (also for an `inner` not yet made). */
export async function isInside(inner: string, outer: string): Promise<boolean> {
  const outerReal = await realpathOf(outer);
  const innerReal = await realpathOf(inner);
  const rel = relative(outerReal, innerReal);
  return rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}

/** The real path of `path`, or of its nearest existing ancestor with the rest appended. */
async function realpathOf(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await realpathOf(parent), basename(absolute));
  }
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
    return { ok: false, manifest: null, files: 0, findings, log: [], exported: new Map(), signed: false };
  }
  const signatureValid = manifestSignatureValid(manifest, publicKey);
  if (!signatureValid) {
    findings.push({
      kind: 'manifest-signature',
      message: 'the manifest signature does not verify with the public key',
    });
  }
  const kidValid = manifest.kid === signingKidOf(publicKey);
  if (!kidValid) {
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
    const found = await digestIfExists(join(filesDir, file.path));
    if (found === undefined) {
      findings.push({ kind: 'missing', path: file.path, message: 'the file is not in the export directory' });
    } else if (found.size !== file.size || found.sha256 !== file.sha256) {
      findings.push({
        kind: 'modified',
        path: file.path,
        message: 'the file does not match the size and SHA-256 the manifest lists',
      });
    } else {
      log.push({ path: file.logPath, file: join(filesDir, file.path), limitBytes: file.size });
    }
  }
  const exported = new Map(
    (Array.isArray(manifest.streams) ? manifest.streams : []).map((s) => [
      `${s.chain}/${s.stream}`,
      { state: s.state, lastSeq: s.lastSeq },
    ]),
  );
  return {
    ok: findings.length === 0,
    manifest,
    files: manifest.files.length,
    findings,
    log,
    exported,
    signed: signatureValid && kidValid,
  };
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
): Promise<{ stream: ExportedStream; files: Planned[] } | undefined> {
  const recordsNames = names.filter((name) => RECORDS_FILE.exec(name)?.[1] === stream);
  const checkpointsName = names.find((name) => CHECKPOINTS_FILE.exec(name)?.[1] === stream);
  if (names.some((name) => SNAPSHOT_FILE.exec(name)?.[1] === stream)) {
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `${chain} holds checkpoint snapshots: it is an export`, {
      hint: 'Export the audit directory a writer writes ($PHICACHE_HOME/audit), not an earlier export.',
    });
  }
  // Only whole lines count: the writer may be half way through appending the next one.
  const checkpoints =
    checkpointsName === undefined ? undefined : await scanFile(join(dir, chain, checkpointsName), true);
  const last = checkpoints?.last === undefined ? undefined : parseCheckpoint(checkpoints.last);
  const state: ExportedStream['state'] =
    last?.final === true
      ? 'final'
      : last !== undefined && now - last.ts > 2 * last.everyMs + 5000 + ABANDONED_SLACK_MS
        ? 'abandoned'
        : 'open';
  const closedNames = state === 'open' ? recordsNames.slice(0, -1) : recordsNames;
  if (closedNames.length === 0 && checkpoints === undefined) return undefined;

  const files: Planned[] = [];
  for (const name of names.filter((n) => TORN_FILE.exec(n)?.[1] === stream)) {
    const source = join(dir, chain, name);
    const scan = await scanBytes(source);
    files.push({
      file: describe(`${chain}/${name}`, chain, stream, 'torn', scan, null, null),
      source,
      limitBytes: scan.size,
      present: false,
    });
  }
  let lastSeq = 0;
  for (const name of closedNames) {
    const source = join(dir, chain, name);
    const scan = await scanFile(source, false);
    const fileLastSeq = seqOf(scan.last);
    lastSeq = fileLastSeq ?? lastSeq;
    const path = `${chain}/${name}`;
    files.push({
      file: describe(path, chain, stream, 'records', scan, seqOf(scan.first), fileLastSeq),
      source,
      limitBytes: scan.size,
      present: false,
    });
  }

  if (checkpoints !== undefined && checkpointsName !== undefined) {
    const source = join(dir, chain, checkpointsName);
    if (state === 'open') {
      // The writer still appends checkpoints, and a write-once object cannot grow: an open stream's checkpoints go
      // out as a snapshot, cut after the last checkpoint within the exported records (so the export has no
      // checkpoint pointing past its end) and named by its line count (so a later, longer one never collides).
      // The verifier knows snapshots: each must be the first lines of the longest.
      const cut = await scanFile(source, true, (line) => (seqOf(line) ?? 0) <= lastSeq);
      if (cut.lines > 0) {
        const name = `${stream}-checkpoints-${String(cut.lines).padStart(6, '0')}.jsonl`;
        files.push({
          file: describe(
            `${chain}/${name}`,
            chain,
            stream,
            'checkpoints',
            cut,
            seqOf(cut.first),
            seqOf(cut.last),
          ),
          source,
          limitBytes: cut.size,
          present: false,
        });
      }
    } else {
      files.push({
        file: describe(
          `${chain}/${checkpointsName}`,
          chain,
          stream,
          'checkpoints',
          checkpoints,
          seqOf(checkpoints.first),
          seqOf(checkpoints.last),
        ),
        source,
        limitBytes: checkpoints.size,
        present: false,
      });
    }
  }
  return {
    stream: { chain, stream, state, lastSeq, heldBack: recordsNames.length - closedNames.length },
    files,
  };
}

interface Scan {
  readonly size: number;
  readonly sha256: string;
  readonly lines: number;
  readonly first: string | undefined;
  readonly last: string | undefined;
}

/**
 * One pass over a file, a chunk at a time: its size, SHA-256, line count and first and last lines. With
 * `wholeLines` a last line without its newline is left out (its writer is still appending it); `keep` stops at
 * the first line it refuses, for a snapshot cut.
 */
async function scanFile(path: string, wholeLines: boolean, keep?: (line: string) => boolean): Promise<Scan> {
  const hash = createHash('sha256');
  let size = 0;
  let lines = 0;
  let first: string | undefined;
  let last: string | undefined;
  let stopped = false;
  for await (const batch of lineBatches({ path: basename(path), file: path })) {
    for (const [i, line] of batch.lines.entries()) {
      const partial = batch.unterminated && i === batch.lines.length - 1;
      if ((partial && wholeLines) || (keep !== undefined && !keep(line))) {
        stopped = true;
        break;
      }
      const bytes = Buffer.from(partial ? line : `${line}\n`);
      // A line that is not UTF-8 was decoded lossily: hash the file itself then (the verifier reports the line).
      if (batch.bad.has(i)) return scanBytes(path);
      hash.update(bytes);
      size += bytes.length;
      lines += 1;
      first ??= line;
      last = line;
    }
    if (stopped) break;
  }
  return { size, sha256: hash.digest('hex'), lines, first, last };
}

/** Size and SHA-256 of a whole file, read in chunks, for a file whose lines cannot be re-encoded exactly. */
async function scanBytes(path: string): Promise<Scan> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const _ of lineBatches(
    { path: basename(path), file: path },
    {
      onBytes: (bytes) => {
        hash.update(bytes);
        size += bytes.length;
      },
    },
  ));
  return { size, sha256: hash.digest('hex'), lines: 0, first: undefined, last: undefined };
}

function describe(
  path: string,
  chain: string,
  stream: AuditStream,
  kind: ExportedFile['kind'],
  scan: Scan,
  firstSeq: number | null,
  lastSeq: number | null,
): ExportedFile {
  return {
    path,
    logPath: path,
    chain,
    stream,
    kind,
    size: scan.size,
    sha256: scan.sha256,
    lines: scan.lines,
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

/** Size and SHA-256 of a file already at a path, or undefined when there is none. */
async function digestIfExists(path: string): Promise<{ size: number; sha256: string } | undefined> {
  try {
    const scan = await scanBytes(path);
    return { size: scan.size, sha256: scan.sha256 };
  } catch (error) {
    if (((error as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the export directory cannot be read at ${path}`, {
      cause: error,
      hint: 'Check that the export directory is readable and writable by this user.',
    });
  }
}

async function describeConflict(item: Planned, existing: { size: number; sha256: string }): Promise<string> {
  // An earlier export that died mid-write leaves a prefix of the right bytes: say so, it is the harmless case.
  const cutShort =
    existing.size < item.limitBytes && (await sha256Of(item.source, existing.size)) === existing.sha256;
  return `${item.file.path} (${cutShort ? 'an incomplete copy of this file' : 'different content'})`;
}

async function sha256Of(path: string, limitBytes: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const _ of lineBatches(
    { path: basename(path), file: path, limitBytes },
    { onBytes: (bytes) => hash.update(bytes) },
  ));
  return hash.digest('hex');
}

/**
 * Copies the bytes the export verified, a chunk at a time, into a file created with O_EXCL, and checks on the way
 * that they still hash to what the manifest will list: a source changed since it was verified stops the export.
 */
async function copyOnce(out: string, item: Planned): Promise<void> {
  const target = join(out, item.file.path);
  let handle: FileHandle | undefined;
  let source: FileHandle | undefined;
  try {
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    handle = await open(target, 'wx', 0o400);
    source = await open(item.source, 'r');
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    let remaining = item.limitBytes;
    while (remaining > 0) {
      const { bytesRead } = await source.read(chunk, 0, Math.min(chunk.length, remaining), null);
      if (bytesRead === 0) break;
      const view = chunk.subarray(0, bytesRead);
      hash.update(view);
      await handle.write(view);
      remaining -= bytesRead;
    }
    if (remaining !== 0 || hash.digest('hex') !== item.file.sha256)
      throw new Error(`${item.file.path} changed while it was exported`);
    await handle.sync();
    await handle.close();
    handle = undefined;
  } catch (cause) {
    if (handle !== undefined) {
      await handle.close().catch(() => undefined);
      await unlink(target).catch(() => undefined);
    }
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the export could not write ${item.file.path}`, {
      cause,
      hint:
        (cause as NodeJS.ErrnoException).code === 'EEXIST'
          ? 'Another export wrote this path at the same time; run one export at a time per export directory.'
          : 'Check the space and permissions of the export directory, and that nothing rewrites the audit files.',
    });
  } finally {
    await source?.close().catch(() => undefined);
  }
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
