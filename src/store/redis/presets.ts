/**
 * Connection presets for managed Redis that holds (encrypted) PHI: Google Memorystore for Redis and AWS
 * ElastiCache. Each returns plain `RedisConnectionOptions` for `nodeRedisCommands` or `ioredisCommands`, with TLS
 * always on and the server always verified. There is deliberately no option to turn TLS off or to skip
 * verification: a deployment that needs that is not one these presets describe, and it can still build
 * `RedisConnectionOptions` by hand where a reviewer will see it.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { isSecretSource } from '../../secrets/connection-password.js';
import type { SecretSource as SecretReference } from '../../secrets/secret-source.js';
import { checkConnectionOptions, type RedisConnectionOptions, type RedisTlsOptions } from './commands.js';

export interface MemorystoreOptions {
  /** The instance's private IP address (`host` in `gcloud redis instances describe`). */
  readonly host: string;
  /** The TLS port. Default 6378, where an instance with in-transit encryption listens. */
  readonly port?: number;
  /**
   * The instance's server CA as PEM: `serverCaCerts[].cert` in `gcloud redis instances describe`. While a CA
   * rotation is under way the instance lists two; pass both, concatenated.
   */
  readonly serverCa: string | Buffer;
  /**
   * The instance's AUTH string (`gcloud redis instances get-auth-string`): read with `readSecret`, or a
   * `SecretSource` (`openSecretSource('aws-sm://…' | 'file:…')`) read again on every reconnection.
   */
  readonly authString: string | SecretReference;
  /** The name to verify the server certificate against, when it is not `host`. */
  readonly servername?: string;
  /** How long to wait for the first connection, in ms (see `RedisConnectionOptions`). */
  readonly connectTimeoutMs?: number;
}

export interface ElastiCacheOptions {
  /** The primary endpoint, or the configuration endpoint with `cluster: true`. */
  readonly host: string;
  /** Default 6379. */
  readonly port?: number;
  /** The replication group's AUTH token (the default user's password). Not with `username`/`password`. */
  readonly authToken?: string;
  /** An RBAC user (Redis 6 and later), with its `password` (or an IAM authentication token as the password). */
  readonly username?: string;
  readonly password?: string;
  /**
   * CA certificates as PEM. Default: Node's bundled root certificates, which include the Amazon roots that
   * ElastiCache's server certificates chain to. Pin a CA here only if your policy requires it.
   */
  readonly ca?: string | Buffer;
  /** The replication group runs in cluster mode: `host` is its configuration endpoint. */
  readonly cluster?: boolean;
  /** How long to wait for the first connection, in ms (see `RedisConnectionOptions`). */
  readonly connectTimeoutMs?: number;
}

const MEMORYSTORE_KEYS = ['host', 'port', 'serverCa', 'authString', 'servername', 'connectTimeoutMs'];
const ELASTICACHE_KEYS = [
  'host',
  'port',
  'authToken',
  'username',
  'password',
  'ca',
  'cluster',
  'connectTimeoutMs',
];
/** Options other client configurations use to weaken TLS; named here so the error says why they are refused. */
const TLS_WEAKENERS = ['tls', 'ssl', 'url', 'rejectUnauthorized', 'insecure', 'checkServerIdentity'];

/** Memorystore for Redis with in-transit encryption (SERVER_AUTHENTICATION) and AUTH enabled. */
export function memorystore(options: MemorystoreOptions): RedisConnectionOptions {
  checkKeys(options, MEMORYSTORE_KEYS, 'memorystore');
  const host = checkHost(options.host, 'memorystore');
  const port = checkPort(options.port ?? 6378, 'memorystore');
  if (options.serverCa === undefined) {
    throw new TypeError(
      "memorystore needs serverCa, the instance's server CA (serverCaCerts in `gcloud redis instances describe`)",
    );
  }
  const ca = checkCertificates(options.serverCa, 'memorystore serverCa');
  const password = isSecretSource(options.authString)
    ? options.authString
    : checkSecret(options.authString, 'memorystore authString', 1, 512);
  const tls: RedisTlsOptions = {
    ca,
    ...(options.servername === undefined ? {} : { servername: checkHost(options.servername, 'servername') }),
  };
  return finish({
    url: `rediss://${urlHost(host)}:${port}`,
    tls,
    password,
    ...timeout(options.connectTimeoutMs),
  });
}

/** ElastiCache (Redis OSS or Valkey) with in-transit encryption and an AUTH token or an RBAC user. */
export function elasticache(options: ElastiCacheOptions): RedisConnectionOptions {
  checkKeys(options, ELASTICACHE_KEYS, 'elasticache');
  const host = checkHost(options.host, 'elasticache');
  const port = checkPort(options.port ?? 6379, 'elasticache');
  if (options.cluster !== undefined && typeof options.cluster !== 'boolean') {
    throw new TypeError('elasticache cluster is true or false');
  }
  const tls: RedisTlsOptions =
    options.ca === undefined ? {} : { ca: checkCertificates(options.ca, 'elasticache ca') };
  const { authToken, username, password } = options;
  let auth: { username?: string; password: string };
  if (authToken !== undefined) {
    if (username !== undefined || password !== undefined) {
      throw new TypeError('elasticache takes an authToken or an RBAC username and password, not both');
    }
    // ElastiCache's own rule for AUTH tokens: 16 to 128 printable characters.
    auth = { password: checkSecret(authToken, 'elasticache authToken', 16, 128) };
  } else if (username !== undefined || password !== undefined) {
    if (username === undefined || password === undefined) {
      throw new TypeError(
        'an elasticache RBAC user needs both username and password (for the AUTH token, use authToken)',
      );
    }
    if (typeof username !== 'string' || !/^[A-Za-z0-9_.@-]{1,128}$/.test(username)) {
      throw new TypeError('elasticache username is 1..128 letters, digits and _.@-');
    }
    // IAM authentication tokens are presigned URLs, far longer than a password: allow for them.
    auth = { username, password: checkSecret(password, 'elasticache password', 1, 4096) };
  } else {
    // A cache that holds PHI, even encrypted, is not left open to everything in the VPC.
    throw new TypeError('elasticache needs authToken, or username and password of an RBAC user');
  }
  const common = { tls, ...auth, ...timeout(options.connectTimeoutMs) };
  if (options.cluster === true) return finish({ cluster: { seeds: [{ host, port }] }, ...common });
  return finish({ url: `rediss://${urlHost(host)}:${port}`, ...common });
}

/** Where a secret (an AUTH string, a token, a password) comes from: an environment variable or a file. */
export type SecretSource =
  | {
      readonly env: string;
      /** Default `process.env`. */
      readonly environment?: Readonly<Record<string, string | undefined>>;
    }
  | { readonly file: string };

const MAX_SECRET_FILE_BYTES = 64 * 1024;

/**
 * Reads a secret from an environment variable or a file (a Secret Manager or Kubernetes secret mounted as one),
 * and drops trailing line breaks, which `echo` and most editors add. Errors name the variable or the path, never
 * the value, and nothing is logged.
 */
export async function readSecret(source: SecretSource): Promise<string> {
  if (typeof source !== 'object' || source === null)
    throw new TypeError('readSecret needs { env } or { file }');
  let raw: string;
  let origin: string;
  if ('env' in source && !('file' in source)) {
    if (typeof source.env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(source.env)) {
      throw new TypeError('readSecret env is the name of an environment variable');
    }
    origin = `environment variable ${source.env}`;
    const value = (source.environment ?? process.env)[source.env];
    if (value === undefined) throw new Error(`the ${origin} is not set`);
    raw = value;
  } else if ('file' in source && !('env' in source)) {
    if (typeof source.file !== 'string' || source.file.length === 0) {
      throw new TypeError('readSecret file is a path');
    }
    origin = `secret file ${source.file}`;
    let bytes: Buffer;
    try {
      bytes = await readFile(source.file);
    } catch (cause) {
      throw new Error(`the ${origin} cannot be read`, { cause });
    }
    if (bytes.length > MAX_SECRET_FILE_BYTES) throw new Error(`the ${origin} is too large to be a secret`);
    raw = bytes.toString('utf8');
  } else {
    throw new TypeError('readSecret needs exactly one of { env } and { file }');
  }
  const secret = raw.replace(/[\r\n]+$/, '');
  if (secret.length === 0) throw new Error(`the ${origin} is empty`);
  return secret;
}

function checkKeys(options: object, allowed: readonly string[], preset: string): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${preset} needs an options object`);
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    if (TLS_WEAKENERS.includes(key)) {
      throw new TypeError(`${preset} always connects over verified TLS; it takes no ${key} option`);
    }
    throw new TypeError(`${preset} has no option ${key} (it takes ${allowed.join(', ')})`);
  }
}

function checkHost(host: unknown, what: string): string {
  if (typeof host !== 'string' || host.length === 0 || host.length > 253) {
    throw new TypeError(`${what} host is a DNS name or an IP address`);
  }
  if (isIPv6(host) || /^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return host;
  throw new TypeError(`${what} host is a DNS name or an IP address, without scheme, port or path`);
}

function checkPort(port: unknown, what: string): number {
  if (typeof port !== 'number' || !Number.isSafeInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`${what} port is an integer in 1..65535`);
  }
  return port;
}

/**
 * PEM certificates, each parsed, so that a truncated download or the wrong file fails here with a plain message
 * rather than later as a TLS handshake error. Returned as given: Node reads every certificate in a PEM bundle.
 */
function checkCertificates(pem: unknown, what: string): string | Buffer {
  if (typeof pem !== 'string' && !Buffer.isBuffer(pem)) throw new TypeError(`${what} is PEM text or bytes`);
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new TypeError(`${what} holds a private key: pass only the CA certificate`);
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TypeError(`${what} holds no PEM certificate`);
  const expiries = blocks.map((block, i) => {
    try {
      return new Date(new X509Certificate(block).validTo);
    } catch (cause) {
      throw new TypeError(`${what} certificate ${i + 1} cannot be parsed`, { cause });
    }
  });
  if (expiries.every((date) => date.getTime() < Date.now())) {
    throw new RangeError(`${what} has expired: download the current CA`);
  }
  return pem;
}

/** Printable ASCII without spaces: what Memorystore AUTH strings and ElastiCache tokens and passwords are. */
function checkSecret(secret: unknown, what: string, min: number, max: number): string {
  if (typeof secret !== 'string') throw new TypeError(`${what} is a string`);
  if (secret.length < min || secret.length > max) {
    throw new RangeError(`${what} is ${min}..${max} characters long`);
  }
  // The value itself is never quoted: a message must be safe to log.
  if (!/^[\x21-\x7e]+$/.test(secret)) {
    throw new TypeError(`${what} holds whitespace or non-printable characters (a stray newline?)`);
  }
  return secret;
}

function timeout(connectTimeoutMs: number | undefined): { connectTimeoutMs?: number } {
  return connectTimeoutMs === undefined ? {} : { connectTimeoutMs };
}

function urlHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

function finish(options: RedisConnectionOptions): RedisConnectionOptions {
  checkConnectionOptions(options);
  return Object.freeze(options);
}
