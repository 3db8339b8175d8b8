import { isUtf8 } from 'node:buffer';
import { type FileHandle, open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';

/**
 * One file of an audit directory, under its path relative to the directory (`<chain>/<file>`): on disk (`file`,
 * read in fixed chunks, so a file of any size costs the same memory), or already in memory (`text`, or `lines`,
 * which lets a caller that verifies many variants of one log reuse the line strings).
 */
export type AuditLogFile =
  | { readonly path: string; readonly text: string }
  | { readonly path: string; readonly lines: readonly string[] }
  | {
      readonly path: string;
      readonly file: string;
      /** Read only this many bytes from the start: a snapshot of a file its writer still appends to. */
      readonly limitBytes?: number;
    };

/** How a file is read: the only memory a reader holds is one chunk and one line. */
export interface ReadLinesOptions {
  /** Bytes read at a time (two such buffers are held). Default 1 MiB; 1 KiB to 16 MiB. */
  readonly chunkBytes?: number;
  /** A longer line is not kept: it is reported as too long. Default 1 MiB; at least 1 KiB. */
  readonly maxLineBytes?: number;
  /** Sees every byte read, in order (to hash a file while its lines are read). */
  readonly onBytes?: (bytes: Buffer) => void;
}

/** Why a line could not be handed over as the text the writer wrote. */
export type BadLine = 'too-long' | 'not-utf8';

/** The lines of one chunk; `bad` marks, by index in `lines`, a line whose text is not its bytes. */
export interface LineBatch {
  readonly lines: readonly string[];
  readonly bad: ReadonlyMap<number, BadLine>;
  /** The batch's last line is the end of the file with no newline after it. */
  readonly unterminated: boolean;
}

/**
 * A batch of a file on disk read with `keepBytes`: `count` whole lines, every one valid UTF-8 and none too long,
 * and `bytes`, exactly the bytes they were read from, each line ended by its newline. The lines are decoded only
 * when asked for: a reader that hands the bytes to another thread to parse need never decode them itself.
 */
export interface ByteLineBatch extends LineBatch {
  readonly bytes: Uint8Array;
  readonly count: number;
}

const NONE: ReadonlyMap<number, BadLine> = new Map();
/** In-memory lines go out in batches too, so the verifier's look-back window never has to span a whole file. */
const MEMORY_BATCH = 1024;

/**
 * The lines of one file, batch by batch. A file on disk is read `chunkBytes` at a time and never held whole; a
 * line is decoded only when it is valid UTF-8 (else it is marked `not-utf8`: its text would not be its bytes).
 * With `keepBytes`, a chunk whose lines are all good comes as a `ByteLineBatch`, the same lines with their bytes.
 */
export async function* lineBatches(
  file: AuditLogFile,
  options: ReadLinesOptions = {},
  keepBytes = false,
): AsyncGenerator<LineBatch | ByteLineBatch> {
  if ('lines' in file || 'text' in file) {
    let lines = 'lines' in file ? file.lines : file.text.split('\n');
    // Text that does not end in a newline ends with a line its writer may not have finished.
    let unterminated = 'text' in file;
    if ('text' in file && lines.at(-1) === '') {
      lines = lines.slice(0, -1);
      unterminated = false;
    }
    for (let i = 0; i < lines.length; i += MEMORY_BATCH) {
      const last = i + MEMORY_BATCH >= lines.length;
      yield { lines: lines.slice(i, i + MEMORY_BATCH), bad: NONE, unterminated: last && unterminated };
    }
    return;
  }
  const chunkBytes = bounded(options.chunkBytes ?? 1024 * 1024, 1024, 16 * 1024 * 1024, 'chunkBytes');
  const maxLineBytes = bounded(options.maxLineBytes ?? 1024 * 1024, 1024, 2 ** 30, 'maxLineBytes');
  const handle = await openLogFile(file.path, file.file);
  const limit = file.limitBytes ?? Number.POSITIVE_INFINITY;
  // Two buffers: the next chunk is read while this one's lines are handed over, so the disk and the checks overlap.
  const buffers = [Buffer.allocUnsafe(chunkBytes), Buffer.allocUnsafe(chunkBytes)];
  let position = 0;
  const readAt = (buffer: Buffer, at: number) =>
    at >= limit
      ? Promise.resolve({ bytesRead: 0 })
      : readChunk(handle, buffer, Math.min(chunkBytes, limit - at), at, file.path);
  let inFlight: Promise<{ bytesRead: number }> | undefined = readAt(buffers[0]!, 0);
  try {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let tooLong = false;
    let lines: string[] = [];
    let bad = new Map<number, BadLine>();
    const emit = (piece: Buffer) => {
      if (tooLong || pendingBytes + piece.length > maxLineBytes) {
        bad.set(lines.length, 'too-long');
        lines.push('');
      } else {
        const bytes = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
        if (!isUtf8(bytes)) bad.set(lines.length, 'not-utf8');
        lines.push(bytes.toString('utf8'));
      }
      pending = [];
      pendingBytes = 0;
      tooLong = false;
    };
    for (let turn = 0; ; turn++) {
      const { bytesRead } = await inFlight!;
      inFlight = undefined;
      if (bytesRead === 0) break;
      const view = buffers[turn % 2]!.subarray(0, bytesRead);
      position += bytesRead;
      inFlight = readAt(buffers[(turn + 1) % 2]!, position);
      options.onBytes?.(view);
      let start = 0;
      const lastNewline = view.lastIndexOf(10);
      const whole =
        keepBytes && lastNewline !== -1 && !tooLong && chunkBytes <= maxLineBytes
          ? wholeLines(pending, pendingBytes, view, lastNewline, maxLineBytes)
          : undefined;
      if (whole !== undefined) {
        pending = [];
        pendingBytes = 0;
        start = lastNewline + 1;
      }
      // A line begun in an earlier chunk ends here first, through the careful path.
      if (whole === undefined && lastNewline !== -1 && (pendingBytes > 0 || tooLong)) {
        const newline = view.indexOf(10);
        emit(view.subarray(0, newline));
        start = newline + 1;
      }
      // The whole lines of the chunk decoded a piece at a time: one UTF-8 check and one decode per piece, not per
      // line. Every line fits in a chunk no longer than the longest line allowed, so none can be too long.
      if (whole === undefined && chunkBytes <= maxLineBytes)
        start = decodeWholeLines(view, start, lastNewline, lines);
      for (let newline = view.indexOf(10, start); newline !== -1; newline = view.indexOf(10, start)) {
        emit(view.subarray(start, newline));
        start = newline + 1;
      }
      if (start < view.length) {
        // Part of a line that goes on in the next chunk: kept (copied, the chunk is reused) only while it fits.
        const rest = view.subarray(start);
        if (tooLong || pendingBytes + rest.length > maxLineBytes) {
          tooLong = true;
          pending = [];
          pendingBytes = 0;
        } else {
          pending.push(Buffer.from(rest));
          pendingBytes += rest.length;
        }
      }
      if (whole !== undefined) yield whole;
      else if (lines.length > 0) {
        yield { lines, bad, unterminated: false };
        lines = [];
        bad = new Map();
      }
    }
    if (pendingBytes > 0 || tooLong) {
      emit(Buffer.alloc(0));
      yield { lines, bad, unterminated: true };
    }
  } finally {
    // A walk given up half way may leave a read in flight: it ends before its file closes.
    await inFlight?.catch(() => undefined);
    await handle.close();
  }
}

/**
 * The whole lines of a chunk, with the line begun in the chunks before (`pending`), as one batch that keeps their
 * bytes: a copy, since the chunk is read into again. None when a line is not valid UTF-8 or the first one is too
 * long: the chunk then takes the careful path, which says which line is bad. (A newline is never part of a
 * multi-byte character, so the bytes are valid UTF-8 exactly when every line is.) The other lines fit in the
 * chunk, which is no longer than the longest line allowed.
 */
function wholeLines(
  pending: readonly Buffer[],
  pendingBytes: number,
  view: Buffer,
  lastNewline: number,
  maxLineBytes: number,
): ByteLineBatch | undefined {
  if (pendingBytes + view.indexOf(10) > maxLineBytes) return undefined;
  // A buffer of its own, not a slice of the shared pool: it may be sent to another thread whole.
  const bytes = Buffer.allocUnsafeSlow(pendingBytes + lastNewline + 1);
  let at = 0;
  for (const piece of pending) at += piece.copy(bytes, at);
  view.copy(bytes, at, 0, lastNewline + 1);
  if (!isUtf8(bytes)) return undefined;
  let count = 0;
  for (let newline = bytes.indexOf(10); newline !== -1; newline = bytes.indexOf(10, newline + 1)) count += 1;
  return new BytesBatch(bytes, count);
}

class BytesBatch implements ByteLineBatch {
  readonly bad = NONE;
  readonly unterminated = false;
  readonly bytes: Buffer;
  readonly count: number;
  #lines: string[] | undefined;

  constructor(bytes: Buffer, count: number) {
    this.bytes = bytes;
    this.count = count;
  }

  get lines(): readonly string[] {
    this.#lines ??= decodeLines(this.bytes);
    return this.#lines;
  }
}

/**
 * The lines of bytes that are valid UTF-8 and end with a newline, decoded a piece at a time as the reader decodes
 * a chunk: the same strings, line for line.
 */
export function decodeLines(bytes: Uint8Array): string[] {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lines: string[] = [];
  decodeWholeLines(view, 0, view.lastIndexOf(10), lines);
  return lines;
}

/**
 * Pushes the lines of `view` from `start` to the newline at `lastNewline`, decoded a piece at a time: one UTF-8
 * check and one decode per piece, not per line. Stops before a piece that is not valid UTF-8 and returns where it
 * stopped (past `lastNewline` when every line was decoded), so the caller takes the rest line by line.
 */
function decodeWholeLines(view: Buffer, start: number, lastNewline: number, lines: string[]): number {
  let at = start;
  while (at <= lastNewline) {
    let end = lastNewline;
    if (end - at > DECODE_BYTES) {
      const cut = view.lastIndexOf(10, at + DECODE_BYTES);
      end = cut >= at ? cut : view.indexOf(10, at + DECODE_BYTES);
    }
    const piece = view.subarray(at, end + 1);
    if (!isUtf8(piece)) break;
    const text = piece.toString('utf8');
    let from = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', from)) {
      lines.push(text.slice(from, newline));
      from = newline + 1;
    }
    at = end + 1;
  }
  return at;
}

/**
 * How much of a chunk is decoded into one string: a string of a few tens of KiB is made in the young generation,
 * a much longer one is not and costs far more to make and to collect.
 */
const DECODE_BYTES = 64 * 1024;

/**
 * Lists the files of an audit directory (`<dir>/<chain>/<name>.jsonl`, and `<name>.torn`) without reading them: the
 * verifier and the export read them line by line.
 */
export async function listAuditLog(dir: string): Promise<AuditLogFile[]> {
  const files: AuditLogFile[] = [];
  for (const chain of await chainDirectories(dir)) {
    let names: string[];
    try {
      names = await readdir(join(dir, chain));
    } catch (cause) {
      throw new PhiCacheError(
        'ERR_AUDIT_UNAVAILABLE',
        `the folder ${chain} of the audit directory cannot be read`,
        {
          cause,
          hint: 'Run the check as a user that can read every chain folder of the audit directory.',
        },
      );
    }
    for (const name of names.sort()) {
      // Records and checkpoints, and the torn bytes a restart set aside; never writer.lock or anything else.
      if (name.endsWith('.jsonl') || name.endsWith('.torn'))
        files.push({ path: `${chain}/${name}`, file: join(dir, chain, name) });
    }
  }
  return files;
}

/** Reads every file of an audit directory whole: for small logs (tests, examples). `listAuditLog` streams. */
export async function readAuditLog(dir: string): Promise<AuditLogFile[]> {
  const files: AuditLogFile[] = [];
  for (const entry of await listAuditLog(dir)) {
    if ('file' in entry) files.push({ path: entry.path, text: await readFile(entry.file, 'utf8') });
  }
  return files;
}

/** The sub-directories of an audit directory, sorted: each may be a chain. */
export async function chainDirectories(dir: string): Promise<string[]> {
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

async function openLogFile(path: string, file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r');
  } catch (cause) {
    throw unreadable(path, cause);
  }
}

async function readChunk(handle: FileHandle, chunk: Buffer, length: number, position: number, path: string) {
  try {
    return await handle.read(chunk, 0, length, position);
  } catch (cause) {
    throw unreadable(path, cause);
  }
}

function unreadable(path: string, cause: unknown): PhiCacheError {
  return new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the audit file ${path} cannot be read`, {
    cause,
    hint: 'Check that the file exists and that this user may read it.',
  });
}

function bounded(value: number, min: number, max: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw new RangeError(`${name} must be an integer from ${min} to ${max}`);
  return value;
}
