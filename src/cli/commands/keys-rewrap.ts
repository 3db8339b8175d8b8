import { PhiCacheError } from '../../errors.js';
import { activeKid } from '../../keys/key-states.js';
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
    'Usage: phicache keys rewrap --redis <url> [connection flags] [--keyset <file>] [--json]',
    '',
    'After a rotation, rewraps each data key record still wrapped under an older KEK version: one key service',
    'call per data key, no entry read or written, so its cost follows the number of data keys (tenants × classes ×',
    'epochs), not of entries. A record that expired or was shredded meanwhile is counted as gone. Safe to run',
    'again: records already under the active version are counted as current and left alone.',
    '',
    keysAdminHelp,
    '',
    'Exit codes: 0 every record is under the active version, 1 some records did not rewrap (the key service',
    'refused or failed; the records still under older versions are listed; run it again), 2 could not run.',
  ].join('\n'),
  options: keysAdminFlags,
  async handler(values, positionals): Promise<CommandResult> {
    noPositionals('keys rewrap', positionals);
    return withAdminCache(values, 'keys rewrap', async ({ opened, caller }) => {
      const rotation = opened.cache.rotation;
      const progress = stderrProgress('rewrapped');
      try {
        const report = await rotation.rewrap(caller, progress);
        endProgress(progress);
        const text = [
          `rewrap under ${report.kid}: ${report.found} data key records found, ${report.rewrapped} rewrapped, ${report.current} already current, ${report.gone} gone, ${report.failed} failed`,
          `${report.ms} ms`,
        ].join('\n');
        return { exitCode: 0, data: { ok: true, ...report }, text };
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
