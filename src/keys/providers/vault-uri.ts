/**
 * The `hcvault://host[:port]/<mount>/keys/<name>` key URI, as Tink names Vault Transit keys, and the query
 * parameters that say where credentials are read from. A token, role id or secret id never appears in the URI:
 * only `env:VAR` or `file:/path`, so a URI can sit in a config map, a log line or an audit record.
 *
 *   hcvault://vault.internal:8200/transit/keys/phicache-cache
 *     ?token-source=file:/var/run/vault/token            (default: env:VAULT_TOKEN)
 *   hcvault://vault.internal:8200/transit/keys/phicache-cache
 *     ?role-id-source=env:VAULT_ROLE_ID&secret-id-source=file:/run/secrets/vault-secret-id&auth-mount=approle
 *   &namespace=team-a                                     (Vault Enterprise namespaces)
 */

export type SecretSource =
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'file'; readonly path: string };

export type VaultAuthConfig =
  | { readonly kind: 'token'; readonly token: SecretSource }
  | {
      readonly kind: 'approle';
      readonly mount: string;
      readonly roleId: SecretSource;
      readonly secretId: SecretSource;
    };

export interface VaultKeyLocation {
  /** The key's name as phicache records it: scheme, host, port, mount and key, no query. */
  readonly uri: string;
  /** Where requests go: `https://host:port`, or the `endpoint` open option. */
  readonly origin: string;
  readonly mount: string;
  readonly keyName: string;
  readonly namespace: string | undefined;
  readonly auth: VaultAuthConfig;
}

const VAULT_DEFAULT_PORT = '8200';
const KNOWN_PARAMETERS = new Set([
  'token-source',
  'role-id-source',
  'secret-id-source',
  'auth-mount',
  'namespace',
]);
const PATH_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Parses a key URI; `endpoint` (an `https:` origin, or `http:` on loopback only) replaces the URI's host. */
export function parseVaultKeyUri(uri: string, endpoint?: string): VaultKeyLocation {
  if (typeof uri !== 'string') throw new TypeError('a Vault key URI must be a string');
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new TypeError('the Vault key URI is not a URI; expected hcvault://host:port/<mount>/keys/<name>');
  }
  if (url.protocol !== 'hcvault:') throw new TypeError('a Vault key URI starts with hcvault://');
  if (url.username !== '' || url.password !== '') {
    throw new TypeError(
      'a Vault key URI never holds credentials; name their source with token-source=env:VAR',
    );
  }
  if (url.hostname === '' || url.hash !== '') {
    throw new TypeError('a Vault key URI is hcvault://host:port/<mount>/keys/<name>');
  }
  const path = decodeURIComponent(url.pathname).replace(/^\/+/, '');
  const split = path.lastIndexOf('/keys/');
  const mount = split > 0 ? path.slice(0, split) : '';
  const keyName = split > 0 ? path.slice(split + '/keys/'.length) : '';
  if (!mount.split('/').every((segment) => PATH_SEGMENT.test(segment)) || !PATH_SEGMENT.test(keyName)) {
    throw new TypeError('a Vault key URI is hcvault://host:port/<mount>/keys/<name>');
  }
  for (const name of url.searchParams.keys()) {
    if (!KNOWN_PARAMETERS.has(name)) {
      // Only the parameter's name: its value may be the very secret that does not belong here.
      throw new TypeError(
        `the Vault key URI parameter ${JSON.stringify(name)} is not supported; credentials are named by their source (token-source, role-id-source, secret-id-source)`,
      );
    }
  }
  const port = url.port === '' ? VAULT_DEFAULT_PORT : url.port;
  const host = url.hostname;
  return {
    uri: `hcvault://${host}:${port}/${mount}/keys/${keyName}`,
    origin: endpoint === undefined ? `https://${host}:${port}` : endpointOrigin(endpoint),
    mount,
    keyName,
    namespace: url.searchParams.get('namespace') ?? undefined,
    auth: authOf(url.searchParams),
  };
}

function authOf(query: URLSearchParams): VaultAuthConfig {
  const roleId = query.get('role-id-source');
  const secretId = query.get('secret-id-source');
  const token = query.get('token-source');
  if (roleId !== null || secretId !== null) {
    if (roleId === null || secretId === null || token !== null) {
      throw new TypeError(
        'AppRole needs both role-id-source and secret-id-source, and no token-source beside them',
      );
    }
    const mount = query.get('auth-mount') ?? 'approle';
    if (!mount.split('/').every((segment) => PATH_SEGMENT.test(segment))) {
      throw new TypeError('auth-mount must be a Vault mount path such as approle');
    }
    return { kind: 'approle', mount, roleId: sourceOf(roleId), secretId: sourceOf(secretId) };
  }
  return { kind: 'token', token: sourceOf(token ?? 'env:VAULT_TOKEN') };
}

/** `env:VAR` or `file:/absolute/path`. */
export function sourceOf(text: string): SecretSource {
  if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return { kind: 'env', name: text.slice('env:'.length) };
  if (text.startsWith('file:/')) return { kind: 'file', path: text.slice('file:'.length) };
  throw new TypeError('a credential source is env:VAR or file:/absolute/path');
}

function endpointOrigin(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError('the Vault endpoint must be a URL such as https://vault.internal:8200');
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
    throw new TypeError('the Vault endpoint is an origin only: scheme, host and port');
  }
  // A Vault token crosses this connection on every call: plain HTTP only where no network sees it.
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
    throw new RangeError('a plain http: Vault endpoint is allowed on loopback only; use https:');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('the Vault endpoint must be an https: URL');
  }
  return url.origin;
}
