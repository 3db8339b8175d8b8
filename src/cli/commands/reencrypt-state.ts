import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { PhiCacheError } from '../../errors.js';
import type { ReencryptPartition } from '../../keys/key-rotation.js';

/**
 * The `--state` file of `phicache keys reencrypt`: the classes (partitions) a sweep has finished, so that a run
 * stopped half way (a deploy, a Ctrl-C) resumes where it was. It holds class names and counts only, never a key
 * name or an entry. It is written whole after each class, by rename, so a crash leaves the previous file intact.
 */
export interface ReencryptState {
  readonly format: 'phicache-reencrypt-state';
  readonly formatVersion: 1;
  /** The data key generation the sweep moves entries to: finished classes are only finished for this one. */
  readonly generation: number;
  readonly partitions: readonly ReencryptPartition[];
  readonly updatedAt: string;
}

export async function readReencryptState(path: string): Promise<ReencryptState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PhiCacheError('ERR_CLI_USAGE', `--state ${path} cannot be read`, { cause: error });
  }
  let state: Partial<ReencryptState> | null;
  try {
    state = JSON.parse(text) as Partial<ReencryptState> | null;
  } catch (error) {
    throw unusable(path, error);
  }
  if (
    state?.format !== 'phicache-reencrypt-state' ||
    state.formatVersion !== 1 ||
    !Number.isSafeInteger(state.generation) ||
    !Array.isArray(state.partitions) ||
    !state.partitions.every((p) => typeof p?.className === 'string')
  ) {
    throw unusable(path);
  }
  return state as ReencryptState;
}

export async function writeReencryptState(path: string, state: ReencryptState): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw new PhiCacheError('ERR_CLI_USAGE', `--state ${path} cannot be written`, {
      cause: error,
      hint: 'Give a --state path in a directory this user can write; classes finished so far are done in the store.',
    });
  }
}

function unusable(path: string, cause?: unknown): PhiCacheError {
  return new PhiCacheError('ERR_CLI_USAGE', `--state ${path} is not a reencrypt state file`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Give the file an earlier `phicache keys reencrypt --state` wrote, or a new path to start over.',
  });
}
