import { PhiCacheError } from '../../errors.js';
import type { Command, CommandResult } from './command.js';
import { keysAdminFlags, keysAdminHelp, withAdminCache } from './keys-admin.js';

export const keysRetireCommand: Command = {
  name: ['keys', 'retire'],
  summary: 'Retire a KEK version nothing live needs any more (--force: even so, audited)',
  help: [
    'Usage: phicache keys retire <kid> --redis <url> [connection flags] [--keyset <file>] [--force] [--json]',
    '',
    'A retired version unwraps nothing on any instance. Retiring is refused while a data key record is still',
    'wrapped under the version (run `phicache keys rewrap`, or wait until they expire) or while an instance may',
    'still be sealing under it; the refusal gives the reason and the earliest safe time.',
    '',
    'With --force the version is retired anyway: every entry sealed under its data keys becomes unreadable at',
    'once. The command prints how many, and the key.retire audit record names them (up to 1000).',
    '',
    keysAdminHelp,
    '  --force                  retire even though something may still need the version',
    '',
    'Exit codes: 0 retired, 2 refused (nothing changed; the reason and earliest safe time are printed) or could',
    'not run.',
  ].join('\n'),
  options: { ...keysAdminFlags, force: { type: 'boolean' } },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length !== 1) {
      throw new PhiCacheError('ERR_CLI_USAGE', 'keys retire takes one KEK version: keys retire <kid>', {
        hint: 'Run `phicache keys list` for the versions and their states.',
      });
    }
    const kid = positionals[0]!;
    const force = values.force === true;
    return withAdminCache(values, 'keys retire', async ({ opened, caller }) => {
      const report = await opened.cache.rotation.retire({ ...caller, force }, kid);
      const data = {
        kid: report.kid,
        forced: report.forced,
        dekRecords: report.dekRecords,
        unreadable: report.unreadableCount,
        auditDir: opened.auditDir,
      };
      const lines = [`retired ${kid}: no instance unwraps under it any more`];
      if (report.forced) {
        lines.push(
          `forced: ${report.dekRecords} data key record(s) were still wrapped under it; ${report.unreadableCount} cached entries are now unreadable (they expire by their TTL)`,
          `the key.retire audit record in ${opened.auditDir} names the entries (up to 1000) and who forced it`,
        );
      }
      return { exitCode: 0, data, text: lines.join('\n') };
    });
  },
};
