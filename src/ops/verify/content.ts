import { parseEnvelope } from '../../crypto/envelope.js';
import { findPhi } from '../../detect/phi-detectors.js';
import { unframe } from '../../store/redis/tag-index.js';
import type { KeyDisplay } from '../key-display.js';
import type { KeySample } from './key-sample.js';
import type { LiveServer } from './live-server.js';
import { type Finding, fail, notCheckable, pass } from './report.js';

const ENTRY = /^phc:e:/;
const KEY_RECORD = /^phc:k:/;
/** Values read for the envelope check: enough to catch a writer that stores plaintext, few enough to stay quick. */
const MAX_VALUES = 1000;

/**
 * Every sampled phicache entry is an envelope (parsed strictly, never opened) sealed under a key id the keyset
 * knows, and every data-key record names a known KEK. A value that is not an envelope means something wrote under
 * phicache's names without sealing: possibly plaintext PHI.
 */
export async function checkEnvelopes(
  server: LiveServer,
  sample: KeySample,
  knownKids: readonly string[] | undefined,
  display: KeyDisplay,
): Promise<Finding> {
  const id = 'content.envelopes';
  if (sample.refused !== undefined) return notCheckable(id, sample.refused);
  const names = sample.keys
    .map((k) => k.name)
    .filter((name) => ENTRY.test(name.toString('latin1')) || KEY_RECORD.test(name.toString('latin1')))
    .slice(0, MAX_VALUES);
  if (names.length === 0)
    return pass(id, `no phicache entries or key records in a sample of ${sample.keys.length} keys`);
  const values = await server.session.pipeline(names.map((name) => ['GET', name]));
  const malformed: string[] = [];
  const unknown = new Map<string, number>();
  const kids = new Set<string>();
  let read = 0;
  for (const [i, name] of names.entries()) {
    const value = values[i];
    if (!Buffer.isBuffer(value)) continue; // gone meanwhile, or not a string
    read += 1;
    const kid = KEY_RECORD.test(name.toString('latin1')) ? recordKid(value) : envelopeKid(value);
    if (kid === undefined) {
      malformed.push(display.show(name));
      continue;
    }
    kids.add(kid);
    if (knownKids !== undefined && !knownKids.includes(kid)) unknown.set(kid, (unknown.get(kid) ?? 0) + 1);
  }
  const scope = `${read} phicache values read`;
  const remedy =
    'Find what writes under phc: names without phicache (it may be storing plaintext); entries under an unknown key id were sealed by another keyset: check --keyset is the one the writers use.';
  if (malformed.length > 0) {
    return fail(
      id,
      `${scope}: ${malformed.length} are not phicache envelopes or key records (${malformed.slice(0, 3).join(', ')})`,
      remedy,
    );
  }
  if (unknown.size > 0) {
    return fail(
      id,
      `${scope}: key ids the keyset does not know: ${[...unknown].map(([kid, n]) => `${kid} (${n})`).join(', ')}`,
      remedy,
    );
  }
  if (knownKids === undefined) {
    return notCheckable(
      id,
      `${scope}, all well-formed (key ids ${[...kids].join(', ')}); no keyset to check the key ids against`,
      'Pass --keyset <file>.',
    );
  }
  return pass(id, `${scope}: all envelopes or key records under known key ids (${[...kids].join(', ')})`);
}

function envelopeKid(value: Buffer): string | undefined {
  try {
    return parseEnvelope(unframe(value)).header.kid;
  } catch {
    return undefined;
  }
}

function recordKid(value: Buffer): string | undefined {
  try {
    const record = JSON.parse(value.toString('utf8')) as { v?: unknown; kid?: unknown; wrapped?: unknown };
    return record.v === 1 && typeof record.kid === 'string' && typeof record.wrapped === 'string'
      ? record.kid
      : undefined;
  } catch {
    return undefined;
  }
}

/** No key name, phicache's or anyone else's, matches a PHI pattern. Names are reported redacted with the kinds found. */
export function checkKeyNames(sample: KeySample, display: KeyDisplay): Finding {
  const id = 'content.key-names';
  if (sample.refused !== undefined) return notCheckable(id, sample.refused);
  const hits: string[] = [];
  const kinds = new Map<string, number>();
  for (const { name } of sample.keys) {
    const found = findPhi(name.toString('utf8'));
    if (found.length === 0) continue;
    for (const match of found) kinds.set(match.kind, (kinds.get(match.kind) ?? 0) + 1);
    hits.push(display.show(name));
  }
  const scope = `${sample.keys.length} key names sampled${sample.complete ? ' (the whole keyspace)' : ''}`;
  if (hits.length > 0) {
    return fail(
      id,
      `${scope}: ${hits.length} look like PHI (${[...kinds].map(([kind, n]) => `${kind} ${n}`).join(', ')}): ${hits.slice(0, 5).join(', ')}`,
      'Key names are not encrypted: the application that writes them must hash its identifiers (phicache names are HMACs). Find it with `phicache ttl-audit --show-key-names` on a private terminal, delete those keys, and fix the writer.',
    );
  }
  return pass(id, `${scope}: none matches an SSN, MRN, email, phone, date or NPI pattern`);
}
