import type { KeyDomain } from './key-provider.js';

/**
 * Key URIs name a KEK the way Tink names KMS keys, one syntax for the library, the CLI and the example app:
 *
 * - `aws-kms://arn:aws:kms:<region>:<account>:key/<id>` or `…:alias/<name>`
 * - `gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>`
 * - `hcvault://<host>:<port>/<mount>/keys/<name>` (the mount may have several segments)
 * - `pkcs11:token=<t>;object=<o>?module-path=<lib>&pin-source=<env:VAR|file:/path>` (RFC 7512)
 * - `local:` or `local:<domain>` (the development keyring)
 *
 * A URI is configuration that ends up in files, logs and process lists, so it may say where a secret is read
 * from but never hold one. A refused URI is never echoed back: it may be exactly the secret that was refused.
 */
export type KeyUri = AwsKmsKeyUri | GcpKmsKeyUri | VaultTransitKeyUri | Pkcs11KeyUri | LocalKeyUri;

export type KeyUriScheme = KeyUri['scheme'];

export interface AwsKmsKeyUri {
  readonly scheme: 'aws-kms';
  readonly uri: string;
  /** The key or alias ARN, as KMS takes it in `KeyId`. */
  readonly arn: string;
  readonly partition: string;
  readonly region: string;
  readonly account: string;
  /** `key/<id>` or `alias/<name>`. */
  readonly resource: string;
}

export interface GcpKmsKeyUri {
  readonly scheme: 'gcp-kms';
  readonly uri: string;
  /** The CryptoKey resource name, as Cloud KMS takes it in `name`. */
  readonly name: string;
  readonly project: string;
  readonly location: string;
  readonly keyRing: string;
  readonly cryptoKey: string;
}

export interface VaultTransitKeyUri {
  readonly scheme: 'hcvault';
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  /** The transit mount path, without slashes at either end (`transit`, `team-a/transit`). */
  readonly mount: string;
  readonly key: string;
  /** Query parameters other than secrets (say, `auth=approle` or `role-id-source=env:VAR`), for the adapter. */
  readonly params: Readonly<Record<string, string>>;
}

export interface Pkcs11KeyUri {
  readonly scheme: 'pkcs11';
  readonly uri: string;
  /** Path attributes (`token`, `object`, `id`, `slot-id`, …), percent-decoded. */
  readonly path: Readonly<Record<string, string>>;
  readonly token: string;
  readonly object: string;
  readonly modulePath: string;
  /** Where the user PIN is read from: `env:VAR` or `file:/absolute/path`. */
  readonly pinSource: string;
}

export interface LocalKeyUri {
  readonly scheme: 'local';
  readonly uri: string;
  /** The keyring named in the URI; absent for `local:`, which means the keyring of the domain that opens it. */
  readonly domain?: KeyDomain;
}

/** A refused key URI. Its message says what is wrong by name, never by quoting the URI. */
export class KeyUriError extends RangeError {
  constructor(message: string) {
    super(`key URI: ${message}`);
    this.name = 'KeyUriError';
  }
}

/** Query parameters and attributes that would carry a secret in the URI itself. */
const SECRET_PARAMS: ReadonlySet<string> = new Set([
  'pin-value',
  'pin',
  'password',
  'passphrase',
  'secret',
  'secret-id',
  'client-secret',
]);
/** In Vault a token is a credential; in PKCS#11 `token` is the label of the token, not a secret. */
const VAULT_SECRET_PARAMS: ReadonlySet<string> = new Set([...SECRET_PARAMS, 'token', 'vault-token']);

const DOMAINS: readonly KeyDomain[] = ['cache', 'audit', 'backup'];

export function parseKeyUri(uri: string): KeyUri {
  if (typeof uri !== 'string') throw new TypeError('a key URI must be a string');
  if (uri.length === 0 || uri.length > 2048) throw new KeyUriError('empty or longer than 2048 characters');
  if (hasWhiteSpaceOrControl(uri)) throw new KeyUriError('contains white space or control characters');
  const scheme = uri.slice(0, uri.indexOf(':') + 1);
  switch (scheme) {
    case 'aws-kms:':
      return parseAws(uri);
    case 'gcp-kms:':
      return parseGcp(uri);
    case 'hcvault:':
      return parseVault(uri);
    case 'pkcs11:':
      return parsePkcs11(uri);
    case 'local:':
      return parseLocal(uri);
    default:
      throw new KeyUriError(
        'unknown scheme; use aws-kms://, gcp-kms://, hcvault://, pkcs11: or local: (see DESIGN.md §4)',
      );
  }
}

/**
 * What makes two URIs the same KEK, so that a keyset can refuse one KEK for two domains. `local:` is the keyring
 * of the domain that opens it, so it is a different KEK in each domain.
 */
export function kekIdentity(key: KeyUri, domain: KeyDomain): string {
  switch (key.scheme) {
    case 'aws-kms':
      return `aws-kms:${key.arn}`;
    case 'gcp-kms':
      return `gcp-kms:${key.name}`;
    case 'hcvault':
      return `hcvault:${key.host.toLowerCase()}:${key.port}/${key.mount}/${key.key}`;
    case 'pkcs11':
      return `pkcs11:${key.modulePath}|${key.token}|${key.object}`;
    case 'local':
      return `local:${key.domain ?? domain}`;
  }
}

const AWS_ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):((?:key\/(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}))|(?:alias\/[A-Za-z0-9/_-]{1,250}))$/;

function parseAws(uri: string): AwsKmsKeyUri {
  if (!uri.startsWith('aws-kms://')) throw new KeyUriError('aws-kms URIs start with aws-kms://arn:');
  const arn = uri.slice('aws-kms://'.length);
  const match = AWS_ARN.exec(arn);
  if (match === null) {
    throw new KeyUriError(
      'aws-kms takes a KMS key or alias ARN: aws-kms://arn:aws:kms:<region>:<account>:key/<id> or …:alias/<name>',
    );
  }
  return Object.freeze({
    scheme: 'aws-kms',
    uri,
    arn,
    partition: match[1]!,
    region: match[2]!,
    account: match[3]!,
    resource: match[4]!,
  });
}

const GCP_NAME =
  /^projects\/([a-z][a-z0-9.:-]{4,62}[a-z0-9])\/locations\/([a-z0-9-]{1,63})\/keyRings\/([A-Za-z0-9_-]{1,63})\/cryptoKeys\/([A-Za-z0-9_-]{1,63})$/;

function parseGcp(uri: string): GcpKmsKeyUri {
  if (!uri.startsWith('gcp-kms://')) throw new KeyUriError('gcp-kms URIs start with gcp-kms://projects/');
  const name = uri.slice('gcp-kms://'.length);
  const match = GCP_NAME.exec(name);
  if (match === null) {
    throw new KeyUriError(
      'gcp-kms takes a CryptoKey name without a version: gcp-kms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>',
    );
  }
  return Object.freeze({
    scheme: 'gcp-kms',
    uri,
    name,
    project: match[1]!,
    location: match[2]!,
    keyRing: match[3]!,
    cryptoKey: match[4]!,
  });
}

function parseVault(uri: string): VaultTransitKeyUri {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new KeyUriError('hcvault takes hcvault://<host>:<port>/<mount>/keys/<name>');
  }
  // Checked before anything else: a Vault token or password pasted into the URI must be refused, not parsed.
  if (url.username !== '' || url.password !== '') {
    throw new KeyUriError(
      'hcvault URIs carry no user or password; name where the token is read from instead',
    );
  }
  const params = queryParams(url.search.slice(1), '&', VAULT_SECRET_PARAMS);
  if (url.hash !== '') throw new KeyUriError('hcvault URIs have no #fragment');
  if (url.hostname === '' || url.port === '') {
    throw new KeyUriError(
      'hcvault takes a host and an explicit port: hcvault://<host>:<port>/<mount>/keys/<name>',
    );
  }
  const segments = url.pathname.split('/').slice(1);
  const keysAt = segments.lastIndexOf('keys');
  const mount = segments.slice(0, keysAt);
  const key = segments[keysAt + 1];
  const segmentOk = (s: string) => /^[A-Za-z0-9_.-]{1,128}$/.test(s) && s !== '.' && s !== '..';
  if (
    keysAt < 1 ||
    keysAt !== segments.length - 2 ||
    key === undefined ||
    !segmentOk(key) ||
    !mount.every(segmentOk)
  ) {
    throw new KeyUriError('hcvault takes hcvault://<host>:<port>/<mount>/keys/<name>');
  }
  return Object.freeze({
    scheme: 'hcvault',
    uri,
    host: url.hostname,
    port: Number(url.port),
    mount: mount.join('/'),
    key,
    params,
  });
}

const PKCS11_PATH_ATTRS = new Set([
  'token',
  'object',
  'id',
  'type',
  'manufacturer',
  'model',
  'serial',
  'slot-id',
  'slot-description',
  'slot-manufacturer',
  'library-manufacturer',
  'library-description',
  'library-version',
]);
const PKCS11_QUERY_ATTRS = new Set(['module-path', 'module-name', 'pin-source']);

function parsePkcs11(uri: string): Pkcs11KeyUri {
  const body = uri.slice('pkcs11:'.length);
  const queryAt = body.indexOf('?');
  const pathText = queryAt === -1 ? body : body.slice(0, queryAt);
  const query = queryParams(queryAt === -1 ? '' : body.slice(queryAt + 1), '&');
  const path = queryParams(pathText, ';');
  for (const name of Object.keys(path)) {
    if (!PKCS11_PATH_ATTRS.has(name))
      throw new KeyUriError(`pkcs11 path attribute ${safeName(name)} is not known`);
  }
  for (const name of Object.keys(query)) {
    if (!PKCS11_QUERY_ATTRS.has(name))
      throw new KeyUriError(`pkcs11 query attribute ${safeName(name)} is not known`);
  }
  const { token, object } = path;
  const modulePath = query['module-path'];
  const pinSource = query['pin-source'];
  if (token === undefined || object === undefined) {
    throw new KeyUriError('pkcs11 URIs name the token and the key object: pkcs11:token=<t>;object=<o>?…');
  }
  if (modulePath === undefined || !modulePath.startsWith('/')) {
    throw new KeyUriError('pkcs11 URIs name the PKCS#11 library by absolute path: ?module-path=/usr/lib/…so');
  }
  if (pinSource === undefined || !isSecretSource(pinSource)) {
    throw new KeyUriError(
      'pkcs11 URIs say where the user PIN is read from: &pin-source=env:VAR or file:/path',
    );
  }
  return Object.freeze({ scheme: 'pkcs11', uri, path, token, object, modulePath, pinSource });
}

function parseLocal(uri: string): LocalKeyUri {
  const rest = uri.slice('local:'.length);
  if (rest === '') return Object.freeze({ scheme: 'local', uri });
  const domain = DOMAINS.find((d) => d === rest);
  if (domain === undefined) throw new KeyUriError('local takes local: or local:<cache|audit|backup>');
  return Object.freeze({ scheme: 'local', uri, domain });
}

function hasWhiteSpaceOrControl(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code <= 0x20 || code === 0x7f || /\s/.test(char)) return true;
  }
  return false;
}

/** `env:VAR` or `file:/absolute/path`: where a PIN or token is read from. */
export function isSecretSource(source: string): boolean {
  return /^env:[A-Za-z_][A-Za-z0-9_]*$/.test(source) || /^file:\/./.test(source);
}

/** Percent-decoded `name=value` pairs; a secret-carrying name is refused before its value is even decoded. */
function queryParams(
  text: string,
  separator: '&' | ';',
  secrets: ReadonlySet<string> = SECRET_PARAMS,
): Record<string, string> {
  const params: Record<string, string> = {};
  if (text === '') return params;
  for (const pair of text.split(separator)) {
    const eq = pair.indexOf('=');
    const name = decode(eq === -1 ? pair : pair.slice(0, eq)).toLowerCase();
    if (secrets.has(name)) {
      throw new KeyUriError(
        `${name}= would put a secret in the URI; name where it is read from instead (such as pin-source=env:VAR)`,
      );
    }
    if (eq === -1 || eq === pair.length - 1)
      throw new KeyUriError(`attribute ${safeName(name)} has no value`);
    if (name in params) throw new KeyUriError(`attribute ${safeName(name)} appears twice`);
    params[name] = decode(pair.slice(eq + 1));
  }
  return params;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new KeyUriError('has a malformed percent-encoding');
  }
}

/** An attribute name is echoed only when it looks like one; anything else could be a pasted secret. */
function safeName(name: string): string {
  return /^[a-z][a-z0-9-]{0,40}$/.test(name) ? name : '(unnamed)';
}
