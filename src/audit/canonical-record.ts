import { canonicalJson } from './canonical-json.js';

/**
 * The canonical JSON of an audit record body, fast: records have a fixed shape, so their keys can be written in
 * sorted order directly instead of being sorted for every record (the generic serializer costs several times more,
 * and the audit trail serializes every cache operation). Anything off the known shape falls back to
 * `canonicalJson`, so the output is always exactly what the generic serializer would produce.
 */
export function canonicalRecordBody(body: Readonly<Record<string, unknown>>): string {
  let known = 0;
  for (const key in body) {
    if (!(key in TOP_LEVEL)) return canonicalJson(body);
    if (body[key] !== undefined) known += 1;
  }
  const actor = body.actor as Record<string, unknown> | undefined;
  const decision = body.decision as Record<string, unknown> | null | undefined;
  const outcome = body.outcome as Record<string, unknown> | undefined;
  if (
    known < REQUIRED ||
    !isPair(actor, 'principal', 'service') ||
    !(decision === null || isPair(decision, 'effect', 'rule')) ||
    typeof outcome !== 'object' ||
    outcome === null ||
    Array.isArray(outcome)
  ) {
    return canonicalJson(body);
  }
  let out = '{"action":';
  out += leaf(body.action);
  out += `,"actor":{"principal":${leaf(actor.principal)},"service":${leaf(actor.service)}}`;
  out += `,"chain":${leaf(body.chain)},"class":${leaf(body.class)}`;
  out += `,"decision":${decision === null ? 'null' : `{"effect":${leaf(decision.effect)},"rule":${leaf(decision.rule)}}`}`;
  out += `,"dek":${leaf(body.dek)}`;
  if (body.detail !== undefined) out += `,"detail":${canonicalJson(body.detail)}`;
  out += `,"key":${leaf(body.key)},"kid":${leaf(body.kid)},"mk":${leaf(body.mk)}`;
  out += `,"outcome":${canonicalJson(outcome)}`;
  out += `,"prev":${leaf(body.prev)},"purpose":${leaf(body.purpose)},"seq":${leaf(body.seq)}`;
  out += `,"stream":${leaf(body.stream)},"tenant":${leaf(body.tenant)},"ts":${leaf(body.ts)},"v":${leaf(body.v)}}`;
  return out;
}

/** The top-level keys of a record body; `detail` is the only optional one. */
const TOP_LEVEL: Readonly<Record<string, true>> = {
  action: true,
  actor: true,
  chain: true,
  class: true,
  decision: true,
  dek: true,
  detail: true,
  key: true,
  kid: true,
  mk: true,
  outcome: true,
  prev: true,
  purpose: true,
  seq: true,
  stream: true,
  tenant: true,
  ts: true,
  v: true,
};
const REQUIRED = Object.keys(TOP_LEVEL).length - 1;

function isPair(value: unknown, a: string, b: string): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  let count = 0;
  for (const key in value) {
    if (key !== a && key !== b) return false;
    count += 1;
  }
  return count === 2;
}

/** A scalar as canonical JSON; anything else (an object where a scalar belongs) goes through the generic path. */
function leaf(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  return canonicalJson(value);
}
