import { PhiCacheError } from '../../errors.js';
import type { ReencryptPartition } from '../../keys/key-rotation.js';
import type { Command, CommandResult } from './command.js';
import {
  endProgress,
  isoTime,
  keysAdminFlags,
  keysAdminHelp,
  noPositionals,
  stderrProgress,
  withAdminCache,
} from './keys-admin.js';
import { type ReencryptState, readReencryptState, writeReencryptState } from './reencrypt-state.js';

export const keysReencryptCommand: Command = {
  name: ['keys', 'reencrypt'],
  summary: 'Move cached entries to the current data keys, class by class, resumable and rate-limited',
  help: [
    'Usage: phicache keys reencrypt --redis <url> [connection flags] [--keyset <file>] [--rate <entries/s>]',
    '                               [--expiry-under <seconds>] [--state <file>] [--json]',
    '',
    'Reads already move an entry to the current data keys; this sweep moves the entries nobody reads, one class',
    'at a time. Classes whose TTL cap is at most --expiry-under seconds are not swept: their old entries expire',
    'by themselves, and the output says by when. With --state, the classes finished are recorded in the file',
    'after each one, and a later run with the same file skips them (until the next rotation or rekey).',
    '',
    keysAdminHelp,
    '  --rate <entries/s>       at most this many entries per second (default: unlimited)',
    '  --expiry-under <seconds> rely on expiry for classes whose cap is at most this (default 0: sweep all)',
    '  --state <file>           record finished classes here and skip those it lists',
    '',
    'An unreadable entry is one whose data key no longer exists (a shredded tenant, a forced retire): no instance',
    'can read it and it expires by its TTL. It is counted, not treated as a failure.',
    'Exit codes: 0 swept, 2 could not run.',
  ].join('\n'),
  options: {
    ...keysAdminFlags,
    rate: { type: 'string' },
    'expiry-under': { type: 'string' },
    state: { type: 'string' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    noPositionals('keys reencrypt', positionals);
    const rate = positiveNumber(values.rate, '--rate');
    const expiryUnder = positiveNumber(values['expiry-under'], '--expiry-under', true);
    const statePath = typeof values.state === 'string' ? values.state : undefined;
    const earlier = statePath === undefined ? undefined : await readReencryptState(statePath);
    return withAdminCache(values, 'keys reencrypt', async ({ opened, caller }) => {
      const rotation = opened.cache.rotation;
      const { generation } = await rotation.states();
      // Classes finished for an older generation hold entries sealed before the change that followed: sweep again.
      const resumed = earlier !== undefined && earlier.generation === generation ? earlier : undefined;
      const finished: ReencryptPartition[] = [...(resumed?.partitions ?? [])];
      const progress = stderrProgress('scanned');
      const report = await rotation.reencrypt({
        principal: caller.principal,
        ...(rate === undefined ? {} : { ratePerSecond: rate }),
        ...(expiryUnder === undefined ? {} : { expiryUnderMs: expiryUnder * 1000 }),
        done: finished.map((p) => p.className),
        ...(progress === undefined ? {} : { onProgress: progress }),
        onPartition: async (partition) => {
          finished.push(partition);
          if (statePath === undefined) return;
          const state: ReencryptState = {
            format: 'phicache-reencrypt-state',
            formatVersion: 1,
            generation,
            partitions: finished,
            updatedAt: new Date().toISOString(),
          };
          await writeReencryptState(statePath, state);
        },
      });
      endProgress(progress);
      const partitions = report.partitions.map((p) => ({
        ...p,
        ...(p.allExpireBy === undefined ? {} : { allExpireBy: isoTime(p.allExpireBy) }),
      }));
      const total = (field: 'scanned' | 'reencrypted' | 'current' | 'gone' | 'unreadable') =>
        report.partitions.reduce((sum, p) => sum + p[field], 0);
      const totals = {
        scanned: total('scanned'),
        reencrypted: total('reencrypted'),
        current: total('current'),
        gone: total('gone'),
        unreadable: total('unreadable'),
      };
      const data = {
        generation: report.generation,
        ...(statePath === undefined ? {} : { state: statePath, resumed: resumed !== undefined }),
        partitions,
        totals,
        ms: report.ms,
      };
      const lines = [`re-encrypt to data key generation ${report.generation}:`];
      if (earlier !== undefined && resumed === undefined) {
        lines.push(`  ${statePath} was for generation ${earlier.generation}: every class is swept again`);
      }
      for (const p of partitions) {
        if (p.method === 'skipped') lines.push(`  ${p.className}: skipped, finished in an earlier run`);
        else if (p.method === 'not-cached')
          lines.push(`  ${p.className}: not cached under the policy, nothing to move`);
        else if (p.method === 'expiry') {
          lines.push(
            `  ${p.className}: relies on expiry; every entry sealed before expires by ${p.allExpireBy}`,
          );
        } else {
          lines.push(
            `  ${p.className}: swept ${p.scanned} entries, ${p.reencrypted} re-encrypted, ${p.current} current, ${p.gone} gone, ${p.unreadable} unreadable`,
          );
        }
      }
      lines.push(
        `${totals.scanned} entries scanned, ${totals.reencrypted} re-encrypted, ${totals.unreadable} unreadable (data key gone; they expire by their TTL) in ${report.ms} ms`,
      );
      return { exitCode: 0, data, text: lines.join('\n') };
    });
  },
};

function positiveNumber(value: unknown, flag: string, zero = false): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (!(Number.isFinite(number) && (number > 0 || (zero && number === 0)))) {
    throw new PhiCacheError(
      'ERR_CLI_USAGE',
      `${flag} must be a number ${zero ? 'of at least 0' : 'greater than 0'}`,
    );
  }
  return number;
}
