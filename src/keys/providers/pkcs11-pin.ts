import { readFile } from 'node:fs/promises';
import { PhiCacheError } from '../../errors.js';
import type { PinSource } from './pkcs11-uri.js';

/** The user PIN, read where the key URI says. Messages name the source, never the PIN. */
export async function readPin(
  source: PinSource,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  if (source.kind === 'env') {
    const pin = env[source.name];
    if (pin === undefined || pin === '') {
      throw new PhiCacheError(
        'ERR_KEY_ACCESS_DENIED',
        `the HSM user PIN is not set: ${source.name} is empty`,
        {
          hint: `Set ${source.name} to the token's user PIN (from your secret manager), or change pin-source.`,
        },
      );
    }
    return pin;
  }
  let text: string;
  try {
    text = await readFile(source.path, 'utf8');
  } catch (cause) {
    throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', 'the HSM user PIN file could not be read', {
      cause,
      hint: 'Check the path in pin-source=file:… and that this process may read it (mode 0400, owned by it).',
    });
  }
  // A file written by `echo` ends in a newline that is not part of the PIN.
  const pin = text.replace(/\r?\n$/, '');
  if (pin === '') throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', 'the HSM user PIN file is empty');
  return pin;
}
