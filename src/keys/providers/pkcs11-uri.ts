import { isAbsolute } from 'node:path';

/**
 * A PKCS#11 KEK named by an RFC 7512 URI:
 *
 *     pkcs11:token=phicache;object=phicache-cache?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:HSM_PIN
 *
 * `token` is the token label, `object` the KEK's label stem (its versions are `<object>/v1`, `<object>/v2`, ...),
 * `module-path` the absolute path of the vendor's PKCS#11 library, `pin-source` where the user PIN is read from:
 * `env:VAR` or `file:/path` (RFC 7512's own form). A PIN itself (`pin-value`) is refused, so a keyset file or a
 * log line that shows the URI never shows the PIN.
 */
export interface Pkcs11KeyUri {
  readonly token: string;
  readonly object: string;
  readonly modulePath: string;
  readonly pinSource: PinSource;
}

export type PinSource =
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'file'; readonly path: string };

const SCHEME = 'pkcs11:';
const PATH_ATTRIBUTES = new Set(['token', 'object', 'type', 'id', 'manufacturer', 'model', 'serial']);
const QUERY_ATTRIBUTES = new Set(['module-path', 'pin-source']);
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parsePkcs11Uri(uri: string): Pkcs11KeyUri {
  if (typeof uri !== 'string' || !uri.startsWith(SCHEME)) {
    throw new TypeError('a PKCS#11 key URI starts with "pkcs11:"');
  }
  const body = uri.slice(SCHEME.length);
  const queryAt = body.indexOf('?');
  const path = attributes(queryAt < 0 ? body : body.slice(0, queryAt), ';', PATH_ATTRIBUTES);
  const query = attributes(queryAt < 0 ? '' : body.slice(queryAt + 1), '&', QUERY_ATTRIBUTES);
  if (path.has('type') && path.get('type') !== 'secret-key') {
    throw new TypeError('a PKCS#11 KEK URI names a secret key (type=secret-key, or no type)');
  }
  const token = required(path, 'token');
  const object = required(path, 'object');
  const modulePath = required(query, 'module-path');
  if (!isAbsolute(modulePath))
    throw new TypeError('module-path in a PKCS#11 key URI must be an absolute path');
  return { token, object, modulePath, pinSource: parsePinSource(required(query, 'pin-source')) };
}

function parsePinSource(source: string): PinSource {
  if (source.startsWith('env:')) {
    const name = source.slice('env:'.length);
    if (!ENV_NAME.test(name)) throw new TypeError('pin-source=env:VAR names an environment variable');
    return { kind: 'env', name };
  }
  if (source.startsWith('file:')) {
    // RFC 8089: file:/path and file:///path name the same local file.
    const path = source.slice('file:'.length).replace(/^\/\/(?=\/)/, '');
    if (!isAbsolute(path)) throw new TypeError('pin-source=file:/path names an absolute path');
    return { kind: 'file', path };
  }
  throw new TypeError('pin-source in a PKCS#11 key URI is env:VAR or file:/path');
}

function attributes(text: string, separator: string, allowed: ReadonlySet<string>): Map<string, string> {
  const found = new Map<string, string>();
  if (text === '') return found;
  for (const pair of text.split(separator)) {
    const equals = pair.indexOf('=');
    const name = equals < 0 ? pair : pair.slice(0, equals);
    if (name === 'pin-value') {
      throw new TypeError('a PIN never goes in a key URI: name where to read it with pin-source=env:VAR');
    }
    if (!allowed.has(name)) throw new TypeError(`unknown attribute "${name}" in a PKCS#11 key URI`);
    if (found.has(name)) throw new TypeError(`attribute "${name}" appears twice in a PKCS#11 key URI`);
    found.set(name, decode(name, pair.slice(equals + 1)));
  }
  return found;
}

function decode(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new TypeError(`attribute "${name}" in a PKCS#11 key URI is not valid percent-encoding`);
  }
}

function required(found: ReadonlyMap<string, string>, name: string): string {
  const value = found.get(name);
  if (value === undefined || value === '') throw new TypeError(`a PKCS#11 key URI needs ${name}=`);
  return value;
}

/** The label of one KEK version on the token. */
export function versionLabel(object: string, version: number): string {
  return `${object}/v${version}`;
}

/** The version a label names, or undefined when the label is not a version of `object`. */
export function versionOfLabel(object: string, label: string): number | undefined {
  const prefix = `${object}/v`;
  if (!label.startsWith(prefix)) return undefined;
  const digits = label.slice(prefix.length);
  return /^[1-9][0-9]{0,8}$/.test(digits) ? Number(digits) : undefined;
}

/** A kid names token and object version, never the module path or PIN source, which differ between hosts. */
export function kidOf(token: string, object: string, version: number): string {
  return `pkcs11:token=${encode(token)};object=${encode(versionLabel(object, version))}`;
}

/** The version a kid names, or undefined when it is not a kid of this token and object. */
export function versionOfKid(token: string, object: string, kid: string): number | undefined {
  const prefix = `pkcs11:token=${encode(token)};object=`;
  if (!kid.startsWith(prefix)) return undefined;
  let label: string;
  try {
    label = decodeURIComponent(kid.slice(prefix.length));
  } catch {
    return undefined;
  }
  return versionOfLabel(object, label);
}

/** RFC 7512 pchar, minus the characters the URI syntax itself uses. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/%2F/g, '/');
}
