/**
 * Reads a record line that is written exactly the writer's way, in one pass, or gives up: the common case of the
 * verifier, which must both parse every line and prove it canonical. The grammar accepted is canonical JSON and
 * nothing else: no whitespace, keys in strictly increasing code-unit order (so none is repeated) with the record's
 * `hash` and `mac` last, strings without any escape or surrogate, integers without sign of zero, fraction, exponent
 * or leading zero and within the safe range. A line that holds anything else (an escape JSON needs, too deep a
 * nesting, a `__proto__` key) gives `undefined`, and the caller decides it with JSON.parse and the writer's own
 * serializer: never a different answer, only a slower one. Only the fields a reader of the chain needs are kept
 * (`KEPT`); the others are checked and passed over, so that no object or string is made for them.
 */
export function scanCanonicalRecord(text: string): Record<string, unknown> | undefined {
  // One native search for anything a string would have to escape (or a surrogate) spares a look at every character.
  if (text.indexOf('\\') !== -1 || NEEDS_ESCAPE.test(text)) return undefined;
  const scan = new Scan(text);
  const value = scan.object(0, true, true);
  return value !== undefined && scan.at === text.length ? value : undefined;
}

const QUOTE = 0x22;
/** A control character or a surrogate: JSON.stringify would write either escaped. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const NEEDS_ESCAPE = /[\u0000-\u001f\ud800-\udfff]/;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MAX_DEPTH = 8;
/** The fields of a record that the verifier reads (see `ReadRecord`). */
const KEPT = new Set([
  'action',
  'chain',
  'detail',
  'hash',
  'mac',
  'mk',
  'outcome',
  'prev',
  'seq',
  'stream',
  'ts',
]);
/**
 * Fields the verifier reads only in an opening or an outage record. Keys are sorted and `action` comes before
 * both, so the scan knows, when it reaches them, whether to build them: an access record's are checked and passed.
 */
const ACTION_ONLY = new Set(['detail', 'outcome']);
const readsDetail = (action: unknown): boolean => action === 'audit.open' || action === 'audit.outage';
/**
 * The top-level keys of a record in the writer's order (`detail` only in some), each with its quoted text and colon:
 * a key found where the order expects it is read with one `startsWith`, without a string made for it. Any other key
 * is read as any string is, so what the scan accepts is the same.
 */
const RECORD_KEYS = [
  'action',
  'actor',
  'chain',
  'class',
  'decision',
  'dek',
  'detail',
  'key',
  'kid',
  'mk',
  'outcome',
  'prev',
  'purpose',
  'seq',
  'stream',
  'tenant',
  'ts',
  'v',
  'hash',
  'mac',
].map((name) => ({ name, quoted: `"${name}":` }));
/** What a failed step returns: no JSON value is a symbol. */
const FAIL = Symbol('not canonical');

class Scan {
  at = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  /** An object with sorted keys; at the top level of a record, `hash` and `mac` close it after the sorted ones. */
  object(depth: number, record: boolean, build: boolean): Record<string, unknown> | undefined {
    const text = this.#text;
    if (depth > MAX_DEPTH || text.charCodeAt(this.at) !== OPEN_BRACE) return undefined;
    this.at += 1;
    const value: Record<string, unknown> = {};
    if (text.charCodeAt(this.at) === CLOSE_BRACE) {
      this.at += 1;
      return record ? undefined : value;
    }
    let previous: string | undefined;
    let tail = 0;
    let expected = 0;
    for (;;) {
      let key: string | undefined;
      // The expected key, or the one after it (a record without `detail`); the order is still checked below.
      for (let i = expected; record && key === undefined && i < expected + 2 && i < RECORD_KEYS.length; i++) {
        const known = RECORD_KEYS[i]!;
        if (text.startsWith(known.quoted, this.at)) {
          key = known.name;
          this.at += known.quoted.length - 1;
          expected = i + 1;
        }
      }
      key ??= this.string();
      if (key === undefined || key === '__proto__' || text.charCodeAt(this.at) !== COLON) return undefined;
      this.at += 1;
      if (record && tail === 0 && key === 'hash') tail = 1;
      else if (record && tail === 1) {
        if (key !== 'mac') return undefined;
        tail = 2;
      } else if (tail !== 0 || (previous !== undefined && !(previous < key))) return undefined;
      else previous = key;
      const keep =
        build && (!record || (KEPT.has(key) && (!ACTION_ONLY.has(key) || readsDetail(value.action))));
      const item = this.value(depth, keep);
      if (item === FAIL) return undefined;
      if (keep) value[key] = item;
      const next = text.charCodeAt(this.at);
      this.at += 1;
      if (next === CLOSE_BRACE) return !record || tail === 2 ? value : undefined;
      if (next !== COMMA) return undefined;
    }
  }

  value(depth: number, build: boolean): unknown {
    const text = this.#text;
    const c = text.charCodeAt(this.at);
    if (c === QUOTE) return this.string(build) ?? FAIL;
    if (c === OPEN_BRACE) return this.object(depth + 1, false, build) ?? FAIL;
    if (c === OPEN_BRACKET) return this.array(depth + 1, build);
    if (c === MINUS || (c >= ZERO && c <= NINE)) return this.integer();
    const literal = c === 0x6e ? 'null' : c === 0x74 ? 'true' : c === 0x66 ? 'false' : undefined;
    if (literal === undefined || !text.startsWith(literal, this.at)) return FAIL;
    this.at += literal.length;
    return literal === 'null' ? null : literal === 'true';
  }

  array(depth: number, build: boolean): unknown[] | typeof FAIL {
    const text = this.#text;
    if (depth > MAX_DEPTH) return FAIL;
    this.at += 1;
    const items: unknown[] = [];
    if (text.charCodeAt(this.at) === CLOSE_BRACKET) {
      this.at += 1;
      return items;
    }
    for (;;) {
      const item = this.value(depth, build);
      if (item === FAIL) return FAIL;
      if (build) items.push(item);
      const next = text.charCodeAt(this.at);
      this.at += 1;
      if (next === CLOSE_BRACKET) return items;
      if (next !== COMMA) return FAIL;
    }
  }

  /** A string: the whole line holds no escape and no character that needs one, so its text is its value. */
  string(build = true): string | undefined {
    const text = this.#text;
    if (text.charCodeAt(this.at) !== QUOTE) return undefined;
    const start = this.at + 1;
    const end = text.indexOf('"', start);
    if (end === -1) return undefined;
    this.at = end + 1;
    return build ? text.slice(start, end) : '';
  }

  integer(): number | typeof FAIL {
    const text = this.#text;
    const start = this.at;
    let i = start;
    if (text.charCodeAt(i) === MINUS) i += 1;
    const first = i;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c < ZERO || c > NINE) break;
      i += 1;
    }
    const digits = i - first;
    // "0" alone, or no leading zero; "-0" is not how any integer is written.
    if (digits === 0 || (text.charCodeAt(first) === ZERO && (digits > 1 || first > start))) return FAIL;
    const next = text.charCodeAt(i);
    if (next === 0x2e || next === 0x65 || next === 0x45) return FAIL;
    const value = Number(text.slice(start, i));
    if (!Number.isSafeInteger(value)) return FAIL;
    this.at = i;
    return value;
  }
}
