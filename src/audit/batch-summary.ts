import { parseLine } from './parse-line.js';

/**
 * A batch of record lines to parse: the lines, or the bytes they are read from (`ByteLineBatch`), which cost far
 * less to send to another thread and are decoded there, off the walk's thread.
 */
export type BatchLines = { readonly lines: readonly string[] } | { readonly bytes: Uint8Array };

/**
 * What the parse of a batch says, on whichever thread it ran. `clean` only when every line is a canonical record of the chain and
 * stream whose hash covers its own bytes, the batch's records follow one another (consecutive seqs, each linked to
 * the one before), and none is an opening or outage record (the walk reads what those say). Then the batch is
 * told by its first record's seq and link and by its records' hashes: `hashes` holds them one after the other, 64
 * hex digits each (one string costs far less to send between threads than an array of them). Anything else is
 * `clean: false`, and the walk goes through that batch line by line to say what is wrong with it.
 */
export type BatchSummary =
  | { readonly clean: false }
  | {
      readonly clean: true;
      readonly firstSeq: number;
      readonly firstPrev: string;
      readonly count: number;
      readonly hashes: string;
    };

const NOT_CLEAN: BatchSummary = { clean: false };

/** Actions whose records carry details the walk reads (declared streams, outage times): never summarized. */
const READ_BY_THE_WALK: ReadonlySet<string> = new Set(['audit.open', 'audit.outage']);

/** The summary of one batch: the very `parseLine` of the walk on each line, and the checks a clean batch needs. */
export function summarizeBatch(lines: readonly string[], chain: string, stream: string): BatchSummary {
  if (lines.length === 0) return NOT_CLEAN;
  let firstSeq = 0;
  let firstPrev = '';
  let seq = 0;
  let head = '';
  const hashes: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const parsed = parseLine(lines[i]!);
    if (parsed.kind !== 'record' || !parsed.canonical) return NOT_CLEAN;
    const record = parsed.record;
    if (parsed.hash !== record.hash || record.chain !== chain || record.stream !== stream) return NOT_CLEAN;
    if (READ_BY_THE_WALK.has(record.action)) return NOT_CLEAN;
    if (i === 0) {
      firstSeq = record.seq;
      firstPrev = record.prev;
    } else if (record.seq !== seq + 1 || record.prev !== head) return NOT_CLEAN;
    seq = record.seq;
    head = record.hash;
    hashes.push(head);
  }
  // One flat string: it keeps none of the lines alive (a record's fields may be slices of them).
  return { clean: true, firstSeq, firstPrev, count: lines.length, hashes: hashes.join('') };
}
