import type { ReadRecord } from './parse-line.js';

/**
 * Reads a record line of the shape nearly every record has, as `RecordLineWriter` writes it, with one native match:
 * no `detail`, strings or null where the writer puts them, `v` 1. The shape's keys are literal and in canonical
 * order, its strings hold no quote, backslash, control character or surrogate (so none needs an escape), its
 * integers are written as canonical JSON writes them, and its hash and MAC are 64 lowercase hex digits: a line it
 * matches is canonical, and holds a well-formed record. It gives undefined for any other line, and for what the
 * general scan reads further (an opening or outage record) or refuses (an integer past the safe range, a time that
 * does not parse): the caller then reads the line the general way, which decides the same for every line this
 * reads. Measured on a 2.45 GHz AMD EPYC, it reads a line in about a third of the general scan's time.
 */
export function readCommonRecord(text: string): ReadRecord | undefined {
  const match = COMMON_RECORD.exec(text);
  if (match === null) return undefined;
  const [, action, chain, mkText, countText, prev, seqText, stream, ts, second, hash, mac] = match;
  const mk = Number(mkText);
  const seq = Number(seqText);
  if (!Number.isSafeInteger(mk) || !Number.isSafeInteger(seq)) return undefined;
  if (countText !== undefined && !Number.isSafeInteger(Number(countText))) return undefined;
  if (action === 'audit.open' || action === 'audit.outage' || !parsesAsTime(ts!, second!)) return undefined;
  return { action, chain, mk, prev, seq, stream, ts, hash, mac } as ReadRecord;
}

/** A JSON string without anything that would need an escape, or a lone or paired surrogate. */
const TEXT = '"[^"\\\\\\u0000-\\u001f\\ud800-\\udfff]*"';
const CAPTURED_TEXT = '"([^"\\\\\\u0000-\\u001f\\ud800-\\udfff]*)"';
const TEXT_OR_NULL = `(?:null|${TEXT})`;
const HEX64 = '"([0-9a-f]{64})"';

const COMMON_RECORD = new RegExp(
  [
    `^\\{"action":${CAPTURED_TEXT},"actor":\\{"principal":${TEXT_OR_NULL},"service":${TEXT_OR_NULL}\\}`,
    `,"chain":${CAPTURED_TEXT},"class":${TEXT_OR_NULL}`,
    `,"decision":(?:null|\\{"effect":${TEXT},"rule":${TEXT}\\})`,
    `,"dek":${TEXT_OR_NULL},"key":${TEXT_OR_NULL},"kid":${TEXT_OR_NULL},"mk":(0|[1-9][0-9]*)`,
    `,"outcome":\\{(?:"code":${TEXT},)?(?:"count":(0|-?[1-9][0-9]*),)?"result":${TEXT}\\}`,
    `,"prev":${CAPTURED_TEXT},"purpose":${TEXT_OR_NULL},"seq":([1-9][0-9]*),"stream":"(access|admin)"`,
    `,"tenant":${TEXT},"ts":"((\\d{4}-\\d{2}-\\d{2}T(?:[01]\\d|2[0-3]):\\d{2}:\\d{2})\\.\\d{3}Z)","v":1`,
    `,"hash":${HEX64},"mac":${HEX64}\\}$`,
  ].join(''),
);

/**
 * The last second whose times parse. A time of the writer's form (`toISOString`, `YYYY-MM-DDTHH:MM:SS.mmmZ`) with an
 * hour below 24 parses or not whatever its milliseconds (hour 24 is valid only at .000, so the shape leaves it to
 * the general scan), and records come second after second: one `Date.parse` per second of log.
 */
let lastSecond = '';

function parsesAsTime(ts: string, second: string): boolean {
  if (second === lastSecond) return true;
  if (Number.isNaN(Date.parse(ts))) return false;
  lastSecond = second;
  return true;
}
