import { PhiCacheError } from '../../errors.js';
import { activeKid } from '../../keys/key-states.js';
import { keysetFrom } from '../keyset-flag.js';
import type { Command, CommandResult } from './command.js';
import {
  endProgress,
  keysAdminFlags,
  keysAdminHelp,
  noPositionals,
  stderrProgress,
  withAdminCache,
} from './keys-admin.js';

export const keysRewrapCommand: Command = {
  name: ['keys', 'rewrap'],
  summary: 'Rewrap every data key record under the active KEK version (entries are not touched)',
  help: [
    'Usage: phicache keys rewrap --redis <url> [connection flags] [--keyset <file> [--keyset-out <file>]] [--json]',
    '',
    'After a rotation, rewraps each data key record still wrapped under an older KEK version: one key service',
    'call per data key, no entry read or written, so its cost follows the number of data keys (tenants × classes ×',
    'epochs), not of entries. A record that expired or was shredded meanwhile is counted as gone. Safe to run',
    'again: records already under the active version are counted as current and left alone.',
    '',
    'A keyset also holds the name secret, wrapped under the cache KEK version it was made with, and every instance',
    'unwraps it when it starts: --keyset-out <file> writes the same keyset (same id, same key names) with the name',
    'secret rewrapped under the active version, to deploy before the old version is disabled in the key service.',
    '',
    keysAdminHelp,
    '  --keyset-out <file>      write the keyset with its name secret under the active version (a new file)',
    '',
    'Exit codes: 0 every record is under the active version, 1 some records did not rewrap (the key service',
    'refused or failed; the records still under older versions are listed; run it again), 2 could not run.',
  ].join('\n'),
  options: { ...keysAdminFlags, 'keyset-out': { type: 'string' } },
  async handler(values, positionals): Promise<CommandResult> {
    noPositionals('keys rewrap', positionals);
    const keysetOut = values['keyset-out'];
    if (keysetOut !== undefined && values.keyset === undefined) {
      throw new PhiCacheError('ERR_CLI_USAGE', '--keyset-out needs --keyset: the keyset to rewrap');
    }
    return withAdminCache(values, 'keys rewrap', async ({ opened, caller }) => {
      const rotation = opened.cache.rotation;
      const progress = stderrProgress('rewrapped');
      try {
        const report = await rotation.rewrap(caller, progress);
        endProgress(progress);
        const lines = [
          `rewrap under ${report.kid}: ${report.found} data key records found, ${report.rewrapped} rewrapped, ${report.current} already current, ${report.gone} gone, ${report.failed} failed`,
          `${report.ms} ms`,
        ];
        const keyset = await keysetFrom(values.keyset);
        let keysetWritten: string | undefined;
        if (keyset !== undefined && keyset.nameSecretKid !== report.kid) {
          if (typeof keysetOut === 'string') {
            await (await keyset.withNameSecretUnder(report.kid)).writeTo(keysetOut);
            keysetWritten = keysetOut;
            lines.push(
              `keyset ${keyset.id} with its name secret under ${report.kid} written to ${keysetOut}: deploy it to every instance before ${keyset.nameSecretKid} is retired or disabled`,
            );
          } else {
            lines.push(
              `note: the keyset's name secret is still wrapped under ${keyset.nameSecretKid}; write a rewrapped keyset with --keyset-out <file> and deploy it before that version is retired or disabled`,
            );
          }
        }
        const data = { ok: true, ...report, ...(keysetWritten === undefined ? {} : { keysetWritten }) };
        return { exitCode: 0, data, text: lines.join('\n') };
      } catch (error) {
        endProgress(progress);
        // The library audits a partial rewrap and then throws ERR_KEY_STATE with the counts in its message. The
        // run did go through every record, so this is a finding (exit 1), not a command that could not run: what
        // the operator needs next is which versions still hold records, from a fresh listing.
        if (!(error instanceof PhiCacheError && error.code === 'ERR_KEY_STATE')) throw error;
        const listing = await rotation.list();
        const kid = activeKid(listing.states);
        const remaining = Object.fromEntries(
          Object.entries(listing.dekRecords).filter(([k, count]) => k !== kid && count > 0),
        );
        const data = {
          ok: false,
          kid,
          error: { code: error.code, message: error.message, hint: error.hint },
          remaining,
        };
        const text = [
          `rewrap under ${kid} incomplete: ${error.message}`,
          ...Object.entries(remaining).map(([k, count]) => `  ${count} data key record(s) still under ${k}`),
          `hint: ${error.hint}`,
        ].join('\n');
        return { exitCode: 1, data, text };
      }
    });
  },
};
