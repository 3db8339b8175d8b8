import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../../errors.js';
import { LocalKeyring } from '../../keys/providers/local-keyring.js';
import { NameKeyring } from '../../keys/tenant-names.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import { cacheKeysFrom, keysetFlag, keysetFrom, keysetHelp } from '../keyset-flag.js';
import type { Command, CommandResult } from './command.js';

export const auditHashCommand: Command = {
  name: ['audit', 'hash'],
  summary: 'Print the key hash of one entry reference, to find its audit records',
  help: [
    'Usage: phicache audit hash --tenant <t> --class <c> --resource <r> --id <id> [--keyset <file>] [--json]',
    '',
    'Prints the HMAC that audit records carry in `key` for this reference (hmac-sha256:...), so an auditor can',
    "find one patient's records while the log never holds the id. The name secret comes from the keyset (its",
    'cache KEK unwraps it), else from the development keyring under PHICACHE_HOME. The id is on this command line:',
    'run it where shell history and process lists are private.',
    '',
    keysetHelp,
  ].join('\n'),
  options: {
    tenant: { type: 'string' },
    class: { type: 'string' },
    resource: { type: 'string' },
    id: { type: 'string' },
    ...keysetFlag,
  },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length > 0)
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit hash takes no positional arguments');
    const [tenant, className, resource, id] = [values.tenant, values.class, values.resource, values.id];
    if (
      typeof tenant !== 'string' ||
      typeof className !== 'string' ||
      typeof resource !== 'string' ||
      typeof id !== 'string'
    ) {
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit hash needs --tenant, --class, --resource and --id');
    }
    const keyset = await keysetFrom(values.keyset);
    const keys = keyset === undefined ? await developmentKeyring() : await cacheKeysFrom(keyset);
    const names = new NameKeyring(await keys.nameSecret());
    const key = names.forTenant(tenant).reference(className, resource, id);
    names.close();
    return { exitCode: 0, data: { key, tenant, class: className }, text: key };
  },
};

async function developmentKeyring(): Promise<LocalKeyring> {
  // Opening a keyring that does not exist would create one, and print a hash that matches no record.
  const home = phicacheHome();
  try {
    await access(join(home, 'keyring', 'cache.json'));
  } catch (cause) {
    throw new PhiCacheError('ERR_KEY_NOT_FOUND', `no cache keyring under ${home}`, {
      cause,
      hint: 'Set PHICACHE_HOME to the home of the writer whose audit records you are searching.',
    });
  }
  return LocalKeyring.open({ home });
}
