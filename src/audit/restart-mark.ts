import type { Checkpoint } from './record.js';

/**
 * What a restart checkpoint says about the writer before it (docs/audit-log.md, "Restart checkpoints"): written by
 * the writer that takes a chain up again, or that seals a chain whose writer died.
 */
export interface RestartMark {
  /** `crash`: the writer before stopped without its final checkpoint; `close`: it closed and the chain goes on. */
  readonly after: 'crash' | 'close';
  /** The chain id of the writer that wrote this checkpoint. */
  readonly by: string;
  /** Records the restarting writer checked with the stream key (hash, link and MAC) after the checkpoint before. */
  readonly checked: number;
  /** The time of the last record it found, when there was one. */
  readonly lastTs?: string | null;
  /** Bytes of a torn last line it set aside in a `.torn` file. */
  readonly tornBytes: number;
}

/** A checkpoint as the readers know it: the writer's checkpoint, and a restart mark on some. */
export type ReadCheckpoint = Checkpoint & { readonly restart?: RestartMark };

/** The mark of a checkpoint line, or undefined when the field is not a well-formed restart mark. */
export function asRestartMark(value: unknown): RestartMark | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const mark = value as Record<string, unknown>;
  const ok =
    (mark.after === 'crash' || mark.after === 'close') &&
    typeof mark.by === 'string' &&
    Number.isSafeInteger(mark.checked) &&
    (mark.checked as number) >= 0 &&
    (mark.lastTs === undefined ||
      mark.lastTs === null ||
      (typeof mark.lastTs === 'string' && !Number.isNaN(Date.parse(mark.lastTs)))) &&
    Number.isSafeInteger(mark.tornBytes) &&
    (mark.tornBytes as number) >= 0;
  return ok ? (mark as unknown as RestartMark) : undefined;
}
