import { setTimeout as sleep } from 'node:timers/promises';
import { PhiCacheError } from '../../errors.js';
import { activeKid, type KeyStates } from '../../keys/key-states.js';
import type { Command, CommandResult } from './command.js';
import { isoTime, keysAdminFlags, keysAdminHelp, noPositionals, withAdminCache } from './keys-admin.js';

interface Step {
  readonly step: 'publish' | 'wait' | 'promote' | 'rekey';
  readonly kid: string;
  readonly at: string;
  readonly note: string;
}

export const keysRotateCommand: Command = {
  name: ['keys', 'rotate'],
  summary: 'Rotate the cache KEK (publish, wait for the fleet, promote), or start new data keys (--rekey)',
  help: [
    'Usage: phicache keys rotate --redis <url> [connection flags] [--keyset <file>] [--json]',
    '       phicache keys rotate --publish-only ...     publish a new KEK version and stop',
    '       phicache keys rotate --promote [--kid <kid>] ...   promote the pending (or the named) version',
    '       phicache keys rotate --rekey ...            new data keys for new writes, same KEK version',
    '',
    'A rotation asks the key service for a new KEK version and publishes it as pending: every instance can unwrap',
    'under it, none wraps yet. Once every instance has surely seen it (twice the key state refresh interval plus a',
    'second), it is promoted: new writes move at once to new data keys wrapped under it, and the previous version',
    'becomes decrypt-only, so entries sealed before still read. Then run `phicache keys rewrap` and, when it is no',
    'longer needed, `phicache keys retire <old kid>`.',
    '',
    'To leave the fleet longer than the bound (instances with a longer refresh interval, a canary), publish with',
    '--publish-only and promote later with --promote. An interrupted rotation leaves the version pending: promote',
    'it with --promote. --rekey makes no key service call.',
    '',
    keysAdminHelp,
    '  --publish-only           publish a new KEK version and stop',
    '  --promote                promote the pending version (or --kid <kid>)',
    '  --kid <kid>              with --promote: the version to promote',
    '  --rekey                  start a new data key generation under the active KEK version',
    '',
    'Exit codes: 0 done, 2 refused (the reason and the earliest safe time are printed) or could not run.',
  ].join('\n'),
  options: {
    ...keysAdminFlags,
    'publish-only': { type: 'boolean' },
    promote: { type: 'boolean' },
    kid: { type: 'string' },
    rekey: { type: 'boolean' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    noPositionals('keys rotate', positionals);
    const modes = (['publish-only', 'promote', 'rekey'] as const).filter((m) => values[m] === true);
    if (modes.length > 1) {
      throw new PhiCacheError('ERR_CLI_USAGE', `keys rotate: give one of --${modes.join(', --')}`);
    }
    if (values.kid !== undefined && modes[0] !== 'promote') {
      throw new PhiCacheError('ERR_CLI_USAGE', 'keys rotate: --kid goes with --promote');
    }
    const mode = modes[0] ?? 'rotate';
    return withAdminCache(values, 'keys rotate', async ({ opened, caller }) => {
      const rotation = opened.cache.rotation;
      const steps: Step[] = [];
      const from = activeKid(await rotation.states());
      let states: KeyStates;
      if (mode === 'rekey') {
        states = await rotation.rekey(caller);
        steps.push({
          step: 'rekey',
          kid: from,
          at: now(),
          note: `new writes move to data keys of generation ${states.generation}, still wrapped under ${from}`,
        });
      } else if (mode === 'promote') {
        states = await rotation.promote(caller, typeof values.kid === 'string' ? values.kid : undefined);
        steps.push(promoted(states, from));
      } else {
        const published = await rotation.publish(caller);
        steps.push({
          step: 'publish',
          kid: published.kid,
          at: isoTime(published.publishedAt)!,
          note: `pending: every instance may unwrap under it, none wraps yet; promotable at ${isoTime(published.promotableAt)}`,
        });
        if (mode === 'publish-only') {
          states = await rotation.states();
        } else {
          const waitMs = Math.max(0, published.promotableAt - Date.now());
          if (process.stderr.isTTY) {
            process.stderr.write(
              `waiting ${Math.ceil(waitMs / 1000)} s for every instance to see ${published.kid}\n`,
            );
          }
          await sleep(waitMs);
          steps.push({
            step: 'wait',
            kid: published.kid,
            at: now(),
            note: `waited ${waitMs} ms: every instance has seen it`,
          });
          states = await rotation.promote(caller, published.kid);
          steps.push(promoted(states, from));
        }
      }
      const data = { mode, from, to: activeKid(states), generation: states.generation, steps };
      const text = [
        ...steps.map((s) => `${s.at}  ${s.step.padEnd(7)}  ${s.kid}: ${s.note}`),
        mode === 'publish-only'
          ? `promote it with \`phicache keys rotate --promote --kid ${steps[0]!.kid}\` at or after the time above`
          : mode === 'rekey'
            ? 'old entries still read; `phicache keys reencrypt` moves them to the new data keys'
            : `next: \`phicache keys rewrap\`, then \`phicache keys retire ${from}\` once nothing needs it`,
      ].join('\n');
      return { exitCode: 0, data, text };
    });
  },
};

function promoted(states: KeyStates, from: string): Step {
  const to = activeKid(states);
  const version = states.keks.find((k) => k.kid === to)!;
  return {
    step: 'promote',
    kid: to,
    at: isoTime(version.activeAt) ?? now(),
    note: `active: new writes seal under data keys of generation ${states.generation}${from === to ? '' : `; ${from} is decrypt-only`}`,
  };
}

function now(): string {
  return new Date().toISOString();
}
