import type { AuditKeySource } from '../audit/audit-keys.js';
import { PhiCacheError } from '../errors.js';
import type { KeyProvider } from '../keys/key-provider.js';
import { Keyset } from '../keys/keyset.js';
import { regularFile } from './input-paths.js';

/** `--keyset <file>`, the same on every command that needs keys (DESIGN.md §9). */
export const keysetFlag = { keyset: { type: 'string' } } as const;

export const keysetHelp =
  '  --keyset <file>          the keyset of the service (phicache keys init); default: the development keyring';

/** The keyset a command was given, or undefined for the development keyring. */
export async function keysetFrom(value: unknown): Promise<Keyset | undefined> {
  if (value === undefined) return undefined;
  return Keyset.read(await regularFile(String(value), '--keyset'));
}

export async function cacheKeysFrom(keyset: Keyset): Promise<KeyProvider> {
  return usable(() => keyset.openCache());
}

export async function auditKeySourceFrom(keyset: Keyset): Promise<AuditKeySource> {
  return usable(() => keyset.openAudit());
}

/** A KEK URI the file names but this machine cannot use (a RangeError from its adapter) is a usage error, not a bug. */
async function usable<T>(open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (error instanceof RangeError) {
      throw new PhiCacheError('ERR_CLI_USAGE', error.message, { cause: error });
    }
    throw error;
  }
}
