import type { KeyObject } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import { parseLine } from './parse-line.js';
import { type AuditLogFile, lineBatches, listAuditLog, type ReadLinesOptions } from './read-log.js';
import { type Checkpoint, checkpointHash, checkpointSigned } from './record.js';
import type { Finding } from './verify.js';

/** A stream's live checkpoints file, in the log or in a witness directory. */
const LIVE_CHECKPOINTS = /^(access|admin)-checkpoints\.jsonl$/;
/** An export's snapshot of one, named by its line count: used when the live file is not there. */
const SNAPSHOT_CHECKPOINTS = /^(access|admin)-checkpoints-\d{6}\.jsonl$/;

/** The checkpoints files of a witness directory; a directory that holds none is not a witness. */
export async function listWitness(dir: string): Promise<AuditLogFile[]> {
  const files = (await listAuditLog(dir)).filter((file) =>
    LIVE_CHECKPOINTS.test(file.path.split('/')[1] ?? ''),
  );
  if (files.length === 0) {
    throw new PhiCacheError(
      'ERR_AUDIT_NOTHING_TO_VERIFY',
      `nothing to compare: ${dir} holds no witnessed checkpoint`,
      {
        hint: 'Pass the directory the trail was given as its witness: it holds <chain>/<stream>-checkpoints.jsonl.',
      },
    );
  }
  return files;
}

/**
 * Compares a witness with the log it witnessed. The log must hold every chain and stream the witness knows, and,
 * in the same order, every checkpoint the witness holds: one the log lacks was cut from it (with the records it
 * sealed, or the findings of the log alone would name them), and one the log holds otherwise was rewritten. A
 * witness entry that does not verify with the public key was not written by this deployment. Both files are read
 * side by side, line by line, so memory does not grow with either.
 */
export async function compareWithWitness(
  log: readonly AuditLogFile[],
  witness: readonly AuditLogFile[],
  publicKey: KeyObject,
  read?: ReadLinesOptions,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const logChains = new Set(log.map((file) => file.path.split('/')[0]));
  const missingChains = new Set<string>();
  for (const entry of [...witness].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const [chain = '', name = ''] = entry.path.split('/');
    const stream = LIVE_CHECKPOINTS.exec(name)?.[1];
    if (stream === undefined) continue;
    if (!logChains.has(chain)) {
      if (!missingChains.has(chain)) {
        missingChains.add(chain);
        findings.push({
          kind: 'witness-chain-missing',
          chain,
          stream,
          message: `the witness holds checkpoints of chain ${chain}, and the log holds no file of it`,
        });
      }
      continue;
    }
    const logFile = checkpointsOf(log, chain, stream);
    if (logFile === undefined) {
      findings.push({
        kind: 'witness-stream-missing',
        chain,
        stream,
        message: `the witness holds checkpoints of the ${stream} stream, and the log holds none`,
      });
      continue;
    }
    await compareStream(chain, stream, entry, logFile, publicKey, read, findings);
  }
  return findings;
}

function checkpointsOf(
  log: readonly AuditLogFile[],
  chain: string,
  stream: string,
): AuditLogFile | undefined {
  const mine = log.filter((file) => file.path.startsWith(`${chain}/${stream}-checkpoints`));
  return (
    mine.find((file) => LIVE_CHECKPOINTS.test(file.path.split('/')[1] ?? '')) ??
    // The longest snapshot of an export has the most lines, and its name, their count, sorts last.
    mine
      .filter((file) => SNAPSHOT_CHECKPOINTS.test(file.path.split('/')[1] ?? ''))
      .sort((a, b) => (a.path < b.path ? -1 : 1))
      .at(-1)
  );
}

interface Entry {
  readonly line: number;
  readonly checkpoint: Checkpoint | undefined;
}

async function* entries(file: AuditLogFile, read: ReadLinesOptions | undefined): AsyncGenerator<Entry> {
  let line = 0;
  for await (const batch of lineBatches(file, read)) {
    for (const [i, text] of batch.lines.entries()) {
      line += 1;
      const parsed = batch.bad.has(i) ? undefined : parseLine(text);
      yield { line, checkpoint: parsed?.kind === 'checkpoint' ? parsed.checkpoint : undefined };
    }
  }
}

async function compareStream(
  chain: string,
  stream: string,
  witnessFile: AuditLogFile,
  logFile: AuditLogFile,
  publicKey: KeyObject,
  read: ReadLinesOptions | undefined,
  findings: Finding[],
): Promise<void> {
  const logEntries = entries(logFile, read);
  const nextLogged = async (): Promise<{ checkpoint: Checkpoint; hash: string } | undefined> => {
    for (let next = await logEntries.next(); !next.done; next = await logEntries.next()) {
      const checkpoint = next.value.checkpoint;
      // A line of the log that is no checkpoint is the log verifier's finding; here it is passed over.
      if (checkpoint !== undefined) return { checkpoint, hash: checkpointHash(checkpoint) };
    }
    return undefined;
  };
  let logged = await nextLogged();
  let unsigned: { first: number; count: number } | undefined;
  try {
    for await (const { line, checkpoint: seen } of entries(witnessFile, read)) {
      const at = { chain, stream, file: witnessFile.path, line };
      if (seen === undefined || seen.chain !== chain || seen.stream !== stream) {
        findings.push({
          ...at,
          kind: 'witness-unreadable',
          message: 'the witness line is not a checkpoint of this stream',
        });
        continue;
      }
      if (!checkpointSigned(seen, publicKey)) {
        // One finding per stream, not one per line: a witness of another deployment fails on every line.
        unsigned =
          unsigned === undefined ? { first: line, count: 1 } : { ...unsigned, count: unsigned.count + 1 };
        continue;
      }
      const hash = checkpointHash(seen);
      // Both files are in the order the writer made its checkpoints; the log may hold some the witness missed.
      while (logged !== undefined && logged.hash !== hash && comesBefore(logged.checkpoint, seen))
        logged = await nextLogged();
      if (logged?.hash === hash) {
        logged = await nextLogged();
        continue;
      }
      // Rewritten: the log holds another checkpoint made at the same record and time. A final checkpoint and the
      // restart after it share a seq but not a time: when one is gone, it is missing, not rewritten.
      const rewritten =
        logged !== undefined && logged.checkpoint.seq === seen.seq && logged.checkpoint.ts === seen.ts;
      findings.push({
        ...at,
        seq: seen.seq,
        kind: rewritten ? 'witness-contradicted' : 'witness-checkpoint-missing',
        message: rewritten
          ? `the log's checkpoint at record ${seen.seq} is not the one the witness holds`
          : `the witness holds a checkpoint of record ${seen.seq} (${seen.ts}) that the log's checkpoints lack`,
      });
    }
  } finally {
    await logEntries.return(undefined);
  }
  if (unsigned !== undefined) {
    findings.push({
      chain,
      stream,
      file: witnessFile.path,
      line: unsigned.first,
      kind: 'witness-signature',
      message: `${unsigned.count} witnessed checkpoints do not verify with this public key: the witness is not this deployment's`,
    });
  }
}

function comesBefore(logged: Checkpoint, seen: Checkpoint): boolean {
  return logged.seq < seen.seq || (logged.seq === seen.seq && Date.parse(logged.ts) < Date.parse(seen.ts));
}
