/**
 * Every non-canonical re-encoding of a JSON object line that a JSON parser reads as the same object, or as the
 * same object but for one value: generated from the fields of the line itself, at every depth. Each comes with a
 * name that says what was done to which field.
 */
export function reencodings(text: string): [string, string][] {
  const value = JSON.parse(text) as Record<string, unknown>;
  if (objectText(value) !== text) throw new Error('the line is not JSON.stringify of what it holds');
  const out: [string, string][] = variants(value, '');
  out.push(['leading space', ` ${text}`]);
  out.push(['trailing space', `${text} `]);
  out.push(['space before the closing brace', `${text.slice(0, -1)} }`]);
  return out;
}

/** The object written back in its own key order, without spaces: how the writer wrote it. */
function objectText(value: Record<string, unknown>): string {
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(',')}}`;
}

const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** A value of the same type that differs: for a repeated key to carry. */
function other(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(`${value}-forged`);
  if (typeof value === 'number') return String(value + 1);
  if (typeof value === 'boolean') return String(!value);
  if (value === null) return '"forged"';
  return '{}';
}

function variants(value: Record<string, unknown>, path: string): [string, string][] {
  const entries = Object.entries(value);
  const parts = entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
  const rebuild = (next: readonly string[]) => `{${next.join(',')}}`;
  const out: [string, string][] = [];
  for (const [i, [key, v]] of entries.entries()) {
    const name = `${path}${key}`;
    const set = (what: string, replacement: readonly string[]) => {
      out.push([`${what} (${name})`, rebuild(parts.toSpliced(i, 1, ...replacement))]);
    };
    const valueText = JSON.stringify(v);
    set('escaped first character of the key', [`"${unicodeEscape(key[0]!)}${key.slice(1)}":${valueText}`]);
    if (typeof v === 'string' && v.length > 0 && JSON.stringify(v).length === v.length + 2) {
      const at = Math.floor(v.length / 2);
      set('escaped middle character of the value', [
        `"${key}":"${v.slice(0, at)}${unicodeEscape(v[at]!)}${v.slice(at + 1)}"`,
      ]);
    }
    set('repeated key, another value before', [`"${key}":${other(v)}`, parts[i]!]);
    set('repeated key, another value after', [parts[i]!, `"${key}":${other(v)}`]);
    set('repeated key, same value', [parts[i]!, parts[i]!]);
    set('space after the colon', [`"${key}": ${valueText}`]);
    set('space before the key', [` ${parts[i]}`]);
    set('space after the value', [`${parts[i]} `]);
    if (typeof v === 'number') set('number with a fraction', [`"${key}":${v}.0`]);
    if (i + 1 < entries.length) {
      out.push([
        `swapped with the next key (${name})`,
        rebuild(parts.toSpliced(i, 2, parts[i + 1]!, parts[i]!)),
      ]);
    }
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      for (const [what, nested] of variants(v as Record<string, unknown>, `${name}.`))
        set(what, [`"${key}":${nested}`]);
    }
  }
  return out;
}
