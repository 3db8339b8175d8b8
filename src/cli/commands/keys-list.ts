import type { KeyListing } from '../../keys/key-rotation.js';
import type { Command, CommandResult } from './command.js';
import { isoTime, keysAdminFlags, keysAdminHelp, noPositionals, withAdminCache } from './keys-admin.js';

export const keysListCommand: Command = {
  name: ['keys', 'list'],
  summary: 'Show the KEK versions the fleet uses, their states and the data key records under each',
  help: [
    'Usage: phicache keys list --redis <url> [connection flags] [--keyset <file>] [--json]',
    '',
    'Reads the key states the instances share (pending, active, decrypt-only, retired, with their times), counts',
    'the data key records wrapped under each KEK version (a SCAN of phc:k:*), asks the key service for its own',
    'view of the KEK, and says from when every instance is known to have seen the current states (their last',
    'change plus twice the refresh interval and a second).',
    '',
    keysAdminHelp,
    '',
    'Times are ISO 8601 UTC; "-" (null in JSON) for a version active since before the first rotation.',
    'Exit codes: 0 listed, 2 could not run.',
  ].join('\n'),
  options: keysAdminFlags,
  async handler(values, positionals): Promise<CommandResult> {
    noPositionals('keys list', positionals);
    return withAdminCache(values, 'keys list', async ({ opened }) => {
      const listing = await opened.cache.rotation.list();
      const data = listingData(listing, Date.now());
      return { exitCode: 0, data, text: render(data) };
    });
  },
};

type ListingData = ReturnType<typeof listingData>;

function listingData(listing: KeyListing, now: number) {
  const { states } = listing;
  const known = new Set(states.keks.map((k) => k.kid));
  return {
    seq: states.seq,
    generation: states.generation,
    changedAt: isoTime(states.changedAt),
    settledAt: isoTime(listing.settledAt),
    settled: now >= listing.settledAt,
    keks: states.keks.map((k) => ({
      kid: k.kid,
      state: k.state,
      publishedAt: isoTime(k.publishedAt),
      promotableAt: isoTime(k.promotableAt),
      activeAt: isoTime(k.activeAt),
      decryptOnlyAt: isoTime(k.decryptOnlyAt),
      retiredAt: isoTime(k.retiredAt),
      forced: k.forced === true,
      dekRecords: listing.dekRecords[k.kid] ?? 0,
    })),
    // Records under a version the states do not name: wrapped by a keyring the fleet never published (a sign of
    // an instance on another keyset), listed so that they are not silently left out of the counts.
    otherDekRecords: Object.fromEntries(
      Object.entries(listing.dekRecords).filter(([kid]) => !known.has(kid)),
    ),
    service: listing.service ?? null,
  };
}

function render(data: ListingData): string {
  const header = ['kid', 'state', 'published', 'active', 'decrypt-only', 'retired', 'DEK records'];
  const rows = data.keks.map((k) => [
    k.kid,
    k.forced ? `${k.state} (forced)` : k.state,
    k.publishedAt ?? '-',
    k.activeAt ?? '-',
    k.decryptOnlyAt ?? '-',
    k.retiredAt ?? '-',
    String(k.dekRecords),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  const lines = [
    `KEK versions (generation ${data.generation}, change ${data.seq}):`,
    line(header),
    ...rows.map(line),
  ];
  for (const [kid, count] of Object.entries(data.otherDekRecords)) {
    lines.push(`  ${count} data key record(s) under ${kid}, which the key states do not name`);
  }
  if (data.service === null) {
    lines.push('key service: did not answer');
  } else {
    const versions = data.service.versions.map((v) => `${v.kid} ${v.state}`).join(', ');
    lines.push(`key service: ${data.service.uri}, current ${data.service.current}; versions: ${versions}`);
    const active = data.keks.find((k) => k.state === 'active')?.kid;
    if (active !== undefined && data.service.current !== active) {
      // A service keeps its own notion of "current"; what the fleet seals under is the key states' active version.
      lines.push(`  (the fleet seals under ${active}, the active version of the key states above)`);
    }
  }
  if (data.changedAt === null) lines.push('the key states have never changed');
  else if (data.settled) lines.push(`settled: every instance has seen these states since ${data.settledAt}`);
  else lines.push(`not settled: instances may still use the previous states until ${data.settledAt}`);
  return lines.join('\n');
}
