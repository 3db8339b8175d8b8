import { canonicalJson } from './canonical-json.js';

/**
 * The canonical JSON of an audit record body, fast: records have a fixed shape, so JSON.stringify can write their
 * keys in sorted order natively instead of sorting them in JavaScript for every record (the audit trail serializes
 * every cache operation, and the verifier every line). Anything off the known shape, `detail` included, falls back
 * to `canonicalJson`, so the output is always exactly what the generic serializer would produce.
 */
export function canonicalRecordBody(body: Readonly<Record<string, unknown>>): string {
  if (!hasKnownShape(body)) return canonicalJson(body);
  const b = body as unknown as KnownBody;
  // An object literal with its keys in sorted order: JSON.stringify keeps insertion order and drops undefined.
  return JSON.stringify({
    action: b.action,
    actor: { principal: b.actor.principal, service: b.actor.service },
    chain: b.chain,
    class: b.class,
    decision: b.decision === null ? null : { effect: b.decision.effect, rule: b.decision.rule },
    dek: b.dek,
    key: b.key,
    kid: b.kid,
    mk: b.mk,
    outcome: { code: b.outcome.code, count: b.outcome.count, result: b.outcome.result },
    prev: b.prev,
    purpose: b.purpose,
    seq: b.seq,
    stream: b.stream,
    tenant: b.tenant,
    ts: b.ts,
    v: b.v,
  });
}

type Scalar = string | number | boolean | null;

interface KnownBody {
  readonly [key: string]: Scalar | Readonly<Record<string, Scalar | undefined>> | null;
  readonly actor: { readonly principal: Scalar; readonly service: Scalar };
  readonly decision: { readonly effect: Scalar; readonly rule: Scalar } | null;
  readonly outcome: { readonly code?: Scalar; readonly count?: Scalar; readonly result?: Scalar };
}

/**
 * True when the body has exactly the keys a record may have (no `detail`, whose keys are free), every nested
 * object has only its known keys (actor and decision both of theirs), and every number is a safe integer: then
 * the sorted literal below is precisely what `canonicalJson` would write.
 */
function hasKnownShape(body: Readonly<Record<string, unknown>>): boolean {
  let count = 0;
  for (const key in body) {
    const value = body[key];
    if (!(key in TOP_LEVEL) || value === undefined) return false;
    count += 1;
    if (typeof value === 'number' && !Number.isSafeInteger(value)) return false;
    // actor and outcome are objects, decision an object or null; every other key holds a scalar.
    const isObject = typeof value === 'object' && value !== null;
    if (key in NESTED ? !isObject && !(key === 'decision' && value === null) : isObject) return false;
    if (isObject) {
      const allowed = NESTED[key];
      if (
        allowed === undefined ||
        Array.isArray(value) ||
        !onlyScalars(value as Record<string, unknown>, allowed)
      ) {
        return false;
      }
    }
  }
  return count === REQUIRED;
}

function onlyScalars(value: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const key in value) {
    const field = value[key];
    if (!allowed.has(key)) return false;
    if (
      typeof field === 'number' ? !Number.isSafeInteger(field) : typeof field !== 'string' && field !== null
    ) {
      return false;
    }
  }
  return true;
}

const NESTED: Readonly<Record<string, ReadonlySet<string>>> = {
  actor: new Set(['principal', 'service']),
  decision: new Set(['effect', 'rule']),
  outcome: new Set(['code', 'count', 'result']),
};

/** The top-level keys of a record body without `detail`, all required on the fast path. */
const TOP_LEVEL: Readonly<Record<string, true>> = {
  action: true,
  actor: true,
  chain: true,
  class: true,
  decision: true,
  dek: true,
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
const REQUIRED = Object.keys(TOP_LEVEL).length;
