/**
 * ISO 8601 text of an epoch-millisecond instant, kept for the last instant asked: a busy service stamps many
 * records within one millisecond, and `toISOString` costs about a microsecond each time.
 */
let lastMs = Number.NaN;
let lastIso = '';

export function isoOf(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
