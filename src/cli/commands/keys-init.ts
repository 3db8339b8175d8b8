import { stat } from 'node:fs/promises';
import { PhiCacheError } from '../../errors.js';
import { Keyset } from '../../keys/keyset.js';
import type { Command, CommandResult } from './command.js';

export const keysInitCommand: Command = {
  name: ['keys', 'init'],
  summary: 'Make the keyset a service shares across its instances',
  help: [
    'Usage: phicache keys init --kek <uri> --audit-kek <uri> [--backup-kek <uri>] --out <file>',
    '                          [--allow-shared-kek] [--json]',
    '',
    'Writes one JSON file that names the KEK of each domain and holds, wrapped under them, the name secret (under',
    'the cache KEK) and the audit signing key and stream root (under the audit KEK). It holds nothing usable',
    'without the key service, so it may live in a config map or a secret manager; give the same file to every',
    'instance (PHICACHE_KEYSET, --keyset) so that all agree on key names and audit keys. An existing file is',
    'never overwritten.',
    '',
    '  --kek <uri>              the cache KEK: aws-kms://arn:…, gcp-kms://projects/…, hcvault://host:port/<mount>/keys/<name>,',
    '                           pkcs11:token=…;object=…?module-path=…&pin-source=env:VAR, or local: (development)',
    '  --audit-kek <uri>        the KEK of the audit keys',
    '  --backup-kek <uri>       the KEK of backups (checked to be usable; nothing is wrapped under it here)',
    '  --allow-shared-kek       allow one KEK for two domains (refused by default)',
    '  --out <file>             where to write the keyset',
    '',
    'A key URI names where a PIN or token is read from, never the secret itself.',
    'Exit codes: 0 written, 2 could not run (bad flags or URIs, the file exists, the key service refused).',
  ].join('\n'),
  options: {
    kek: { type: 'string' },
    'audit-kek': { type: 'string' },
    'backup-kek': { type: 'string' },
    'allow-shared-kek': { type: 'boolean' },
    out: { type: 'string' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length > 0)
      throw new PhiCacheError('ERR_CLI_USAGE', 'keys init takes no positional arguments');
    const [cache, audit, backup, out] = [values.kek, values['audit-kek'], values['backup-kek'], values.out];
    if (typeof cache !== 'string' || typeof audit !== 'string' || typeof out !== 'string') {
      throw new PhiCacheError('ERR_CLI_USAGE', 'keys init needs --kek, --audit-kek and --out');
    }
    // Checked before any key service call: the write below would refuse anyway, after making secrets for nothing.
    if (await exists(out)) {
      throw new PhiCacheError('ERR_CLI_USAGE', `${out} exists; a keyset is never overwritten`, {
        hint: 'Choose another --out. Replacing a keyset in use would change every key name and the audit signing key.',
      });
    }
    let keyset: Keyset;
    try {
      keyset = await Keyset.create({
        keks: { cache, audit, ...(typeof backup === 'string' ? { backup } : {}) },
        allowSharedKek: values['allow-shared-kek'] === true,
      });
    } catch (error) {
      if (error instanceof RangeError)
        throw new PhiCacheError('ERR_CLI_USAGE', error.message, { cause: error });
      throw error;
    }
    await keyset.writeTo(out);
    const data = { out, id: keyset.id, keks: keyset.keks, signingKid: keyset.signingKid };
    const text = [
      `${out}: keyset ${keyset.id}`,
      ...Object.entries(keyset.keks).map(([domain, uri]) => `  ${domain.padEnd(6)} KEK ${uri}`),
      `  audit signing key ${keyset.signingKid}`,
    ].join('\n');
    return { exitCode: 0, data, text };
  },
};

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new PhiCacheError('ERR_CLI_USAGE', `--out ${path} cannot be checked`, { cause: error });
  }
}
