import { Writable } from 'node:stream';
import { findPhi, type PhiKind } from '../detect/phi-detectors.js';
import { PhiCacheError } from '../errors.js';

/** One PHI-looking match in what a sink received: which write, where in it, what kind; never the text. */
export interface SinkFinding {
  readonly write: number;
  readonly index: number;
  readonly kind: PhiKind;
}

/**
 * A sink for tests that fails the run when it saw PHI: hand `stream` to a logger (pino's destination, a console
 * replacement, an audit sink) or call `record` with what a sink received, then `assertClean()` in the test's
 * `after` hook. It keeps what it was given in memory only, and its error names kinds and offsets, never the text, so
 * the failure report is no leak of its own.
 *
 *   const sink = new PhiSinkCheck();
 *   const logger = pino({ redact: pinoRedaction() }, sink.stream);
 *   after(() => sink.assertClean());
 */
export class PhiSinkCheck {
  readonly #writes: string[] = [];
  readonly stream: Writable;

  constructor() {
    this.stream = new Writable({
      write: (chunk: Buffer | string, _encoding, callback) => {
        this.record(chunk);
        callback();
      },
    });
  }

  /** Adds what a sink received. */
  record(text: string | Uint8Array): void {
    this.#writes.push(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
  }

  /** How many writes were received. */
  get writes(): number {
    return this.#writes.length;
  }

  findings(): SinkFinding[] {
    return this.#writes.flatMap((text, write) =>
      findPhi(text).map((match) => ({ write, index: match.index, kind: match.kind })),
    );
  }

  /** Throws `ERR_SINK_SAW_PHI` if any write looked like PHI. */
  assertClean(): void {
    const findings = this.findings();
    if (findings.length === 0) return;
    const where = findings
      .slice(0, 10)
      .map((finding) => `${finding.kind} in write ${finding.write} at ${finding.index}`)
      .join(', ');
    throw new PhiCacheError(
      'ERR_SINK_SAW_PHI',
      `the sink saw ${findings.length} PHI-looking match(es): ${where}${findings.length > 10 ? ', ...' : ''}`,
    );
  }
}
