import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PhiCacheError } from '../errors.js';

/**
 * Checks a path the user named before anything opens it: reading a directory fails with a bare EISDIR, and
 * reading a FIFO blocks until some writer shows up, which to the user is a hang. A path that does not exist is
 * left to the command's reader, which reports it with the code of what it was reading.
 */
export async function regularFile(path: string, what: string): Promise<string> {
  const stats = await statOf(path, what);
  if (stats === undefined) return path;
  if (stats.isDirectory()) throw usage(`${what} ${path} is a directory, not a file`);
  if (!stats.isFile()) throw usage(`${what} ${path} is not a regular file (a FIFO, socket or device)`);
  return path;
}

export async function directory(path: string, what: string): Promise<string> {
  const stats = await statOf(path, what);
  if (stats !== undefined && !stats.isDirectory()) throw usage(`${what} ${path} is not a directory`);
  return path;
}

async function statOf(path: string, what: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new PhiCacheError('ERR_CLI_USAGE', `${what} ${path} cannot be read (${code ?? 'unknown error'})`, {
      cause,
    });
  }
}

function usage(message: string): PhiCacheError {
  return new PhiCacheError('ERR_CLI_USAGE', message);
}
