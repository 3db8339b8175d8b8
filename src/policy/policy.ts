import type { PhiCacheErrorCode } from '../errors.js';
import { compileFieldPaths, type FieldTree, filterFields, isJsonObject } from './field-paths.js';
import { type AllowRuleId, type DenyRuleId, denyRules } from './rules.js';
import type {
  DataClassDocument,
  failureModes,
  PolicyDocument,
  PolicyExceptionDocument,
  scopeParts,
} from './schema.js';

export type ScopePart = (typeof scopeParts)[number];
export type FailureMode = (typeof failureModes)[number];

export interface DataClass {
  readonly name: string;
  readonly description: string;
  readonly phi: boolean;
  readonly cacheable: boolean;
  /** 0 for a class that may not be cached and declares no cap (only an exception can then give one). */
  readonly maxTtlMs: number;
  readonly defaultTtlMs: number;
  readonly scope: readonly ScopePart[];
  /** `allow` holds dot paths into the serialized value (`labs.code`, `labs.*`); see field-paths.ts. */
  readonly fields: { readonly allow: readonly string[]; readonly others: 'strip' | 'reject' } | undefined;
  readonly tags: readonly string[];
  readonly failureMode: FailureMode;
}

export interface PolicyException {
  readonly id: string;
  readonly className: string;
  readonly owner: string;
  readonly reason: string;
  readonly compensatingControl: string;
  /** Epoch milliseconds; the exception works while `now < expiresAt`. */
  readonly expiresAt: number;
  readonly allowCacheable: boolean;
  readonly maxTtlMs: number | undefined;
}

export interface AccessScope {
  tenant?: string;
  user?: string;
  session?: string;
}

export interface WriteRequest {
  className: string;
  /** Integer milliseconds > 0, or undefined for the class default. Anything else throws a RangeError. */
  ttlMs: number | undefined;
  scope: AccessScope;
  principal: string | undefined;
  purpose: string | undefined;
  /** Decided on what JSON.stringify makes of it, once: that text is what gets stored. */
  value: unknown;
  tagKinds: readonly string[];
}

export interface ReadRequest {
  className: string;
  scope: AccessScope;
  principal: string | undefined;
  purpose: string | undefined;
}

/**
 * The outcome of a decision. A deny never carries a caller value: `reason` names classes, rules, scope parts and
 * counts only, and for POL-CLASS-01 `className` is `(undeclared)` rather than whatever the caller passed.
 * `strippedFields` does hold caller field names: it is for the caller, not for logs.
 */
export type PolicyDecision =
  | {
      readonly effect: 'allow';
      readonly rule: AllowRuleId;
      readonly dataClass: DataClass;
      /** Writes: the TTL to store with. Reads: the longest TTL an entry of the class may have right now. */
      readonly ttlMs: number;
      /**
       * Writes: the value as stored, plain JSON data (stripped when fields were removed): what a later get returns,
       * so also what getOrSet hands its caller on a miss. Parsed from `json` on first access when the class has no
       * field list, so a plain set pays no parse. Reads: undefined.
       */
      readonly value: unknown;
      /** Writes: the JSON text of `value`, to be stored as it is (serialized once). Reads: undefined. */
      readonly json: string | undefined;
      /** Writes: dot paths of the fields removed (array elements share one path). Reads: empty. */
      readonly strippedFields: readonly string[];
      readonly exceptionId: string | undefined;
    }
  | {
      readonly effect: 'deny';
      readonly rule: DenyRuleId;
      readonly code: PhiCacheErrorCode;
      readonly reason: string;
      readonly className: string;
    };

type Deny = Extract<PolicyDecision, { effect: 'deny' }>;

/** What decideWrite answers: an allowed write always carries the JSON text to store. */
export type WriteDecision = Deny | (Extract<PolicyDecision, { effect: 'allow' }> & { readonly json: string });

const undeclaredClass = '(undeclared)';
const noFields: readonly string[] = Object.freeze([]);

/**
 * A validated policy, frozen: decisions are pure functions of the policy, the request and the clock, so two
 * instances given the same file decide the same way. Refusals are returned, never thrown; the caller audits the
 * decision and then throws PolicyDeniedError.
 *
 * Checks run in this order, and the first refusal wins: class (POL-CLASS-01), cacheability and TTL with their
 * exceptions (POL-CACHE-01, PHI-TTL-01, POL-EXC-01), scope (POL-SCOPE-01), context (POL-CTX-01), purpose
 * (POL-PURPOSE-01), tags (POL-TAG-01), the value's serialization (POL-VALUE-01), fields (POL-FIELD-01).
 */
export class Policy {
  readonly classes: ReadonlyMap<string, DataClass>;
  readonly exceptions: readonly PolicyException[];
  /** The purposes of use the policy accepts, in the order the file declares them. */
  readonly purposes: readonly string[];
  readonly #purposes: ReadonlySet<string>;
  /** The allow lists of the classes that have one, compiled once. */
  readonly #fieldTrees: ReadonlyMap<string, FieldTree>;

  constructor(document: PolicyDocument) {
    this.classes = new FrozenMap(
      Object.entries(document.classes).map(([name, doc]) => [name, toDataClass(name, doc)] as const),
    );
    this.exceptions = Object.freeze(document.exceptions.map(toException));
    this.purposes = Object.freeze([...document.purposes]);
    this.#purposes = new Set(document.purposes);
    this.#fieldTrees = new FrozenMap(
      [...this.classes.values()].flatMap(({ name, fields }) =>
        fields === undefined ? [] : [[name, compileFieldPaths(fields.allow)] as const],
      ),
    );
    Object.freeze(this);
  }

  dataClass(name: string): DataClass | undefined {
    return this.classes.get(name);
  }

  /** The exception for the class that is active at `now` and expires last, if any. */
  activeException(className: string, now: number): PolicyException | undefined {
    checkNow(now);
    let best: PolicyException | undefined;
    for (const exception of this.exceptions) {
      if (exception.className !== className || now >= exception.expiresAt) continue;
      if (best === undefined || exception.expiresAt > best.expiresAt) best = exception;
    }
    return best;
  }

  decideWrite(request: WriteRequest, now: number): WriteDecision {
    checkNow(now);
    const { ttlMs } = request;
    /* Precondition (PHI-TTL-01): a TTL is a positive integer of milliseconds; anything else is misuse. */
    if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0)) {
      throw new RangeError('ttlMs must be a positive integer number of milliseconds (rule PHI-TTL-01)');
    }
    const dataClass = this.classes.get(request.className);
    if (dataClass === undefined) return unknownClass();

    const grant = this.grant(dataClass, { read: false, ttlMs }, now);
    if (grant.effect === 'deny') return grant;
    const refusal =
      checkScope(dataClass, request.scope) ??
      checkContext(dataClass, request) ??
      checkPurpose(dataClass, request.purpose, this.#purposes);
    if (refusal !== undefined) return refusal;

    const undeclared = request.tagKinds.filter((kind) => !dataClass.tags.includes(kind)).length;
    if (undeclared > 0) {
      return deny('POL-TAG-01', dataClass.name, `${count(undeclared, 'tag kind')} not declared by the class`);
    }

    /* Precondition (POL-VALUE-01): the value serializes to JSON text, and everything after decides on that text. */
    const json = serialize(request.value);
    if (json === undefined) {
      // JSON.stringify's own messages name the caller's fields (a cycle's path), so none of them is kept.
      return deny(
        'POL-VALUE-01',
        dataClass.name,
        'the value does not serialize to JSON (undefined, a function, a symbol, a cycle, a BigInt, or nesting deeper than 100)',
      );
    }
    const tree = this.#fieldTrees.get(dataClass.name);
    if (tree === undefined) return new UnfilteredWrite(grant.exceptionId, dataClass, grant.ttlMs, json);
    return checkFields(dataClass, tree, json, grant);
  }

  decideRead(request: ReadRequest, now: number): PolicyDecision {
    checkNow(now);
    const dataClass = this.classes.get(request.className);
    if (dataClass === undefined) return unknownClass();

    const grant = this.grant(dataClass, { read: true }, now);
    if (grant.effect === 'deny') return grant;
    const refusal =
      checkScope(dataClass, request.scope) ??
      checkContext(dataClass, request) ??
      checkPurpose(dataClass, request.purpose, this.#purposes);
    if (refusal !== undefined) return refusal;
    return Object.freeze({
      effect: 'allow',
      rule: ruleOf(grant.exceptionId),
      dataClass,
      ttlMs: grant.ttlMs,
      value: undefined,
      json: undefined,
      strippedFields: noFields,
      exceptionId: grant.exceptionId,
    });
  }

  /**
   * Whether the class, or else an active exception, lets an entry be cached with this TTL. For a read the
   * question is only whether the class may be cached, and the answer carries the longest TTL an entry may have
   * now. An expired exception that would have allowed the request is named (POL-EXC-01), so its owner learns that
   * renewal is due instead of reading a generic refusal.
   */
  private grant(
    dataClass: DataClass,
    access: { read: true } | { read: false; ttlMs: number | undefined },
    now: number,
  ): { effect: 'allow'; ttlMs: number; exceptionId: string | undefined } | Deny {
    const isRead = access.read;
    const requestedMs = access.read ? undefined : access.ttlMs;
    const fits = (exception: PolicyException | undefined): number | undefined => {
      if (!dataClass.cacheable && !exception?.allowCacheable) return undefined;
      const capMs = Math.max(dataClass.maxTtlMs, exception?.maxTtlMs ?? 0);
      const ttlMs = isRead
        ? capMs
        : (requestedMs ?? (dataClass.defaultTtlMs > 0 ? dataClass.defaultTtlMs : capMs));
      return ttlMs <= capMs ? ttlMs : undefined;
    };

    const own = fits(undefined);
    if (own !== undefined && !isRead) return { effect: 'allow', ttlMs: own, exceptionId: undefined };
    const candidates = this.exceptions.filter((exception) => exception.className === dataClass.name);

    let best: { ttlMs: number; exception: PolicyException } | undefined;
    let expired: PolicyException | undefined;
    for (const exception of candidates) {
      const ttlMs = fits(exception);
      if (ttlMs === undefined) continue;
      if (now >= exception.expiresAt) {
        if (expired === undefined || exception.expiresAt > expired.expiresAt) expired = exception;
      } else if (best === undefined || ttlMs > best.ttlMs) {
        best = { ttlMs, exception };
      }
    }

    if (own !== undefined) {
      // A read of a cacheable class needs no exception, but may meet entries written under one.
      return { effect: 'allow', ttlMs: Math.max(own, best?.ttlMs ?? 0), exceptionId: undefined };
    }
    if (best !== undefined) {
      return { effect: 'allow', ttlMs: best.ttlMs, exceptionId: best.exception.id };
    }
    if (expired !== undefined) {
      const when = new Date(expired.expiresAt).toISOString();
      return deny(
        'POL-EXC-01',
        dataClass.name,
        `policy exception ${expired.id} for the class expired at ${when}`,
      );
    }
    // Still refused: the cap in force is the class's, raised by whichever active exception raises it most.
    const active = candidates.filter(
      (exception) => now < exception.expiresAt && (dataClass.cacheable || exception.allowCacheable),
    );
    if (!dataClass.cacheable && active.length === 0) {
      return deny('POL-CACHE-01', dataClass.name, 'the data class may not be cached');
    }
    const capMs = Math.max(dataClass.maxTtlMs, ...active.map((exception) => exception.maxTtlMs ?? 0));
    return deny(
      'PHI-TTL-01',
      dataClass.name,
      `the TTL exceeds the cap of ${capMs} ms in force for the class`,
    );
  }
}

function toDataClass(name: string, doc: DataClassDocument): DataClass {
  const maxTtlMs = (doc.maxTtlSeconds ?? 0) * 1000;
  return Object.freeze({
    name,
    description: doc.description,
    phi: doc.phi,
    cacheable: doc.cacheable,
    maxTtlMs,
    defaultTtlMs: doc.defaultTtlSeconds === undefined ? maxTtlMs : doc.defaultTtlSeconds * 1000,
    scope: Object.freeze([...doc.scope]),
    fields:
      doc.fields === undefined
        ? undefined
        : Object.freeze({ allow: Object.freeze([...doc.fields.allow]), others: doc.fields.others }),
    tags: Object.freeze([...doc.tags]),
    // PHI fails closed unless the policy says otherwise; anything else degrades to a miss.
    failureMode: doc.failureMode ?? (doc.phi ? 'closed' : 'miss'),
  });
}

function toException(doc: PolicyExceptionDocument): PolicyException {
  return Object.freeze({
    id: doc.id,
    className: doc.class,
    owner: doc.owner,
    reason: doc.reason,
    compensatingControl: doc.compensatingControl,
    expiresAt: Date.parse(doc.expires),
    allowCacheable: doc.allow.cacheable === true,
    maxTtlMs: doc.allow.maxTtlSeconds === undefined ? undefined : doc.allow.maxTtlSeconds * 1000,
  });
}

function checkScope(dataClass: DataClass, scope: AccessScope): Deny | undefined {
  // Every decision runs this: the list of what is missing is only made when something is.
  if (dataClass.scope.every((part) => isPresent(scope[part]))) return undefined;
  const missing = dataClass.scope.filter((part) => !isPresent(scope[part]));
  if (missing.length === 0) return undefined;
  return deny(
    'POL-SCOPE-01',
    dataClass.name,
    `the class requires scope parts the request lacks: ${missing.join(', ')}`,
  );
}

function checkContext(
  dataClass: DataClass,
  request: { principal: string | undefined; purpose: string | undefined },
): Deny | undefined {
  if (!dataClass.phi || (isPresent(request.principal) && isPresent(request.purpose))) return undefined;
  const missing = [
    isPresent(request.principal) ? undefined : 'principal',
    isPresent(request.purpose) ? undefined : 'purpose',
  ].filter((name) => name !== undefined);
  if (missing.length === 0) return undefined;
  return deny(
    'POL-CTX-01',
    dataClass.name,
    `a PHI class needs a principal and a purpose; ${missing.join(' and ')} missing`,
  );
}

/**
 * POL-PURPOSE-01: a purpose, when given, is one the policy declares, for every class. A PHI class requires one
 * (POL-CTX-01); a non-PHI class does not, but checks one that is given, so the purpose an audit record carries is
 * always a word of the policy's vocabulary and never free text from a caller, and a misspelt purpose is caught
 * wherever it is first used rather than only on PHI. The refusal does not repeat the purpose: it is caller input.
 */
function checkPurpose(
  dataClass: DataClass,
  purpose: string | undefined,
  declared: ReadonlySet<string>,
): Deny | undefined {
  if (!isPresent(purpose) || declared.has(purpose)) return undefined;
  return deny(
    'POL-PURPOSE-01',
    dataClass.name,
    'the purpose of use is not one the policy declares under purposes',
  );
}

/**
 * The field checks, run on the parsed serialized text: a Proxy, a getter or a `toJSON` cannot show the check one
 * thing and the store another. Costs a parse, and a second stringify only when something was stripped.
 */
function checkFields(
  dataClass: DataClass,
  tree: FieldTree,
  json: string,
  grant: { ttlMs: number; exceptionId: string | undefined },
): WriteDecision {
  const parsed: unknown = JSON.parse(json);
  if (!isJsonObject(parsed)) {
    return deny(
      'POL-FIELD-01',
      dataClass.name,
      'the class has a field allow list and accepts only an object value',
    );
  }
  const { value, stripped } = filterFields(tree, parsed);
  if (stripped.length > 0 && dataClass.fields?.others === 'reject') {
    // Paths are not echoed: a field name can itself be PHI (a patient's name used as a key).
    return deny(
      'POL-FIELD-01',
      dataClass.name,
      `the value has ${count(stripped.length, 'field')} the class does not allow`,
    );
  }
  return Object.freeze({
    effect: 'allow',
    rule: ruleOf(grant.exceptionId),
    dataClass,
    ttlMs: grant.ttlMs,
    value,
    json: value === parsed ? json : JSON.stringify(value),
    strippedFields: stripped,
    exceptionId: grant.exceptionId,
  });
}

/**
 * An allowed write of a class without a field list: the text is stored as it is, and parsed only if `value` is
 * read (getOrSet does, set does not). A class rather than an object literal with a getter: V8 builds and freezes
 * this in tens of nanoseconds, the literal in about a microsecond.
 */
class UnfilteredWrite {
  readonly effect = 'allow';
  readonly rule: AllowRuleId;
  readonly strippedFields = noFields;
  #parsed: { readonly value: unknown } | undefined;

  constructor(
    readonly exceptionId: string | undefined,
    readonly dataClass: DataClass,
    readonly ttlMs: number,
    readonly json: string,
  ) {
    this.rule = ruleOf(exceptionId);
    Object.freeze(this);
  }

  get value(): unknown {
    this.#parsed ??= { value: JSON.parse(this.json) };
    return this.#parsed.value;
  }
}

/**
 * How deep a cached value may nest. Engines give up at different depths (a value Node 20's JSON.stringify refuses
 * for its stack, Node 26's serializes), so the policy sets the bound itself and every version decides alike.
 */
export const MAX_VALUE_DEPTH = 100;

/** The text JSON.stringify makes of the value, or undefined when it makes none, throws, or nests too deep. */
function serialize(value: unknown): string | undefined {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return undefined;
  }
  // A text shorter than twice the bound cannot hold that many open brackets, nor can one with fewer of them
  // (counted natively, strings included, which only overcounts): most values skip the scan.
  if (json === undefined || json.length <= 2 * MAX_VALUE_DEPTH) return json;
  if (openBracketsAtMost(json, MAX_VALUE_DEPTH)) return json;
  return nestingDepth(json) <= MAX_VALUE_DEPTH ? json : undefined;
}

/** Whether the text holds at most `bound` of `{` and `[` together, anywhere. */
function openBracketsAtMost(json: string, bound: number): boolean {
  let seen = 0;
  for (const bracket of ['{', '[']) {
    for (let at = json.indexOf(bracket); at !== -1; at = json.indexOf(bracket, at + 1)) {
      seen += 1;
      if (seen > bound) return false;
    }
  }
  return true;
}

/** The deepest nesting of objects and arrays in JSON text, brackets inside strings not counted. */
function nestingDepth(json: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      depth += 1;
      if (depth > deepest) deepest = depth;
    } else if (c === 0x7d || c === 0x5d) depth -= 1;
  }
  return deepest;
}

function ruleOf(exceptionId: string | undefined): AllowRuleId {
  return exceptionId === undefined ? 'POL-ALLOW-01' : 'POL-ALLOW-02';
}

function deny(rule: DenyRuleId, className: string, reason: string): Deny {
  return Object.freeze({ effect: 'deny', rule, code: denyRules[rule], reason, className });
}

function unknownClass(): Deny {
  return deny('POL-CLASS-01', undeclaredClass, 'the data class is not declared in the policy');
}

function checkNow(now: number): void {
  if (!Number.isFinite(now)) throw new RangeError('now must be a finite number of epoch milliseconds');
}

function isPresent(value: string | undefined): value is string {
  return typeof value === 'string' && value.length > 0;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** A ReadonlyMap that is read-only at run time too: Object.freeze does not stop Map.prototype.set. */
class FrozenMap<K, V> implements ReadonlyMap<K, V> {
  readonly #map: Map<K, V>;

  constructor(entries: Iterable<readonly [K, V]>) {
    this.#map = new Map(entries);
    Object.freeze(this);
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.#map) callback.call(thisArg, value, key, this);
  }

  entries(): MapIterator<[K, V]> {
    return this.#map.entries();
  }

  keys(): MapIterator<K> {
    return this.#map.keys();
  }

  values(): MapIterator<V> {
    return this.#map.values();
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.#map[Symbol.iterator]();
  }
}
