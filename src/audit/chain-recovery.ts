import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';
import type { AuditStream } from './audit-event.js';
import { type AuditKeys, macEpochOf } from './audit-keys.js';
import { isoOf } from './iso-time.js';
import {
  type Checkpoint,
  checkpointHash,
  checkpointSigned,
  genesisHash,
  macMatches,
  type RestartNote,
  recordLineBody,
  sha256Hex,
} from './record.js';
import { checkpointsFileName, recordsFileIndex } from './sinks/file-sink.js';

/** Where a stream of a chain ended, found by reading what its last writer left. */
export interface StreamEnd {
  readonly stream: AuditStream;
  /** The last record that checks out (0 and the genesis hash for none). */
  readonly seq: number;
  readonly head: string;
  /** Its time in ms (0 for none), so that time never runs backwards in the chain. */
  readonly lastTs: number;
  readonly lastTsIso: string | undefined;
  /** The hash the next checkpoint links to. */
  readonly checkpointHash: string;
  /** Whether the last checkpoint was `final` (the writer closed cleanly, or the chain was sealed). */
  readonly closed: boolean;
  /** Whether the stream has any file at all. */
  readonly found: boolean;
  /** Records after the last checkpoint whose hash, link and MAC were checked. */
  readonly checked: number;
  /** Bytes of a torn last line set aside. */
  readonly tornBytes: number;
}

const damaged = (chain: string, stream: AuditStream, what: string) =>
  new PhiCacheError('ERR_AUDIT_CHAIN_DAMAGED', `audit chain ${chain}, stream ${stream}: ${what}`);

/** Whether a chain directory holds any file of the log (a chain to take up rather than to start). */
export async function chainHasLog(chainDir: string): Promise<boolean> {
  try {
    return (await readdir(chainDir)).some((name) => name.endsWith('.jsonl'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Finds where a stream ended and makes its tail whole: a torn last line (a write cut short by a crash) is moved to
 * `<stream>-NNNNNN.torn` and cut from its file, then every record after the last checkpoint has its sequence,
 * link, hash, epoch and MAC checked with the stream key. A record that fails refuses the chain
 * (ERR_AUDIT_CHAIN_DAMAGED): it was altered, or written by someone else, and nothing should be written after it.
 */
export async function findStreamEnd(
  chainDir: string,
  chain: string,
  stream: AuditStream,
  keys: AuditKeys,
): Promise<StreamEnd> {
  const names = await readdir(chainDir);
  const checkpointsPath = join(chainDir, checkpointsFileName(stream));
  const checkpointsTorn = await setTornTailAside(
    checkpointsPath,
    join(chainDir, `${stream}-checkpoints.torn`),
  );
  const checkpointLines = (await readText(checkpointsPath)).split('\n').filter((line) => line.length > 0);
  let last: Checkpoint | undefined;
  if (checkpointLines.length > 0) {
    try {
      last = JSON.parse(checkpointLines.at(-1)!) as Checkpoint;
    } catch {
      throw damaged(chain, stream, 'the last checkpoint is not JSON');
    }
    if (last.chain !== chain || last.stream !== stream || !checkpointSigned(last, keys.publicKey))
      throw damaged(chain, stream, 'the last checkpoint is not signed by this writer key');
  }
  const checkpointSeq = last?.seq ?? 0;
  const files = names
    .map((name) => ({ name, index: recordsFileIndex(stream, name) }))
    .filter((file): file is { name: string; index: number } => file.index !== undefined)
    .sort((a, b) => a.index - b.index);
  let tornBytes = checkpointsTorn;
  const newest = files.at(-1);
  if (newest !== undefined) {
    const torn = join(chainDir, `${stream}-${String(newest.index).padStart(6, '0')}.torn`);
    tornBytes += await setTornTailAside(join(chainDir, newest.name), torn);
  }
  // Read back from the newest file until one starts at or before the checkpoint: the tail after it is all that
  // needs the stream key; everything before it is vouched for by the signed checkpoint.
  const lines: string[] = [];
  for (let i = files.length - 1; i >= 0; i--) {
    const text = await readText(join(chainDir, files[i]!.name));
    const fileLines = text.split('\n').filter((line) => line.length > 0);
    lines.unshift(...fileLines);
    const first = fileLines[0];
    if (checkpointSeq > 0 && first !== undefined && seqOf(first) <= checkpointSeq) break;
  }
  let seq = checkpointSeq;
  let head = last?.head ?? genesisHash(chain, stream, 'records');
  let lastTs = last === undefined ? 0 : Date.parse(last.ts);
  let lastTsIso: string | undefined;
  let checked = 0;
  let sawCheckpointed = checkpointSeq === 0;
  for (const line of lines) {
    const lineSeq = seqOf(line);
    if (lineSeq < checkpointSeq) continue;
    const body = recordLineBody(line);
    if (body === undefined) throw damaged(chain, stream, `record ${lineSeq} does not end as a record line`);
    const hash = sha256Hex(body);
    let record: {
      seq: number;
      prev: string;
      hash: string;
      mac: string;
      mk: number;
      ts: string;
      chain: string;
    };
    try {
      record = JSON.parse(line);
    } catch {
      throw damaged(chain, stream, `a line after record ${seq} is not JSON`);
    }
    if (lineSeq === checkpointSeq) {
      if (hash !== head)
        throw damaged(chain, stream, `record ${lineSeq} is not the one the checkpoint signed`);
      sawCheckpointed = true;
      lastTs = Date.parse(record.ts);
      lastTsIso = record.ts;
      continue;
    }
    const ts = Date.parse(record.ts);
    if (
      record.seq !== seq + 1 ||
      record.chain !== chain ||
      record.prev !== head ||
      record.hash !== hash ||
      record.mk !== macEpochOf(ts) ||
      !macMatches(keys.streamKey(record.mk), hash, record.mac)
    ) {
      throw damaged(chain, stream, `record ${record.seq} after record ${seq} fails its check`);
    }
    seq = record.seq;
    head = hash;
    lastTs = ts;
    lastTsIso = record.ts;
    checked += 1;
  }
  if (!sawCheckpointed)
    throw damaged(chain, stream, `record ${checkpointSeq}, which the last checkpoint signed, is missing`);
  return {
    stream,
    seq,
    head,
    lastTs,
    lastTsIso,
    checkpointHash: last === undefined ? genesisHash(chain, stream, 'checkpoints') : checkpointHash(last),
    closed: last?.final === true,
    found: last !== undefined || files.length > 0,
    checked,
    tornBytes,
  };
}

function seqOf(line: string): number {
  const match = /"seq":(\d+)/.exec(line);
  return match === null ? Number.NaN : Number(match[1]);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/**
 * Moves the bytes after the last `\n` of a file (a line whose write a crash cut short) to `tornPath`, synced, and
 * only then cuts them from the file: evidence is kept before anything is removed. Returns how many bytes moved.
 */
async function setTornTailAside(path: string, tornPath: string): Promise<number> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  try {
    const content = await handle.readFile();
    const end = content.lastIndexOf(0x0a) + 1;
    if (end === content.length) return 0;
    const torn = await open(tornPath, 'a', 0o600);
    try {
      await torn.write(content.subarray(end));
      await torn.datasync();
    } finally {
      await torn.close();
    }
    await handle.truncate(end);
    await handle.datasync();
    return content.length - end;
  } finally {
    await handle.close();
  }
}

/** What a restart checkpoint says of the writer before: how it ended, and what the new one checked. */
export function restartNote(end: StreamEnd, by: string): RestartNote {
  return {
    after: end.closed ? 'close' : 'crash',
    by,
    checked: end.checked,
    lastTs: end.lastTsIso ?? isoOf(end.lastTs),
    tornBytes: end.tornBytes,
  };
}
