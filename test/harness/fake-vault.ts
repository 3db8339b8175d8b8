/**
 * A local stand-in for HashiCorp Vault's Transit engine and its token and AppRole auth, speaking Vault's HTTP API:
 * the same paths under /v1/, the same JSON shapes (`{"data":…}`, `{"auth":…}`, `{"errors":[…]}`) and the same
 * status codes (400 for a bad request or ciphertext, 403 for permission denied, 404 for a missing route, 429 for
 * a rate-limit quota, 503 when sealed). It keeps its own keys and really encrypts: each version is 32 random bytes,
 * a derived key is HKDF-SHA256 of the version under the request's `context`, and a ciphertext is
 * `vault:v<N>:base64(nonce ‖ AES-256-GCM ciphertext ‖ tag)`, so a wrong context fails as it does in Vault.
 * Writes that seal (datakey, encrypt, rewrap) honour `key_version`, and `keys/<name>/rotate` adds a version.
 * Faults are injected per operation: throttling, a sealed node, a request that is never answered, a malformed
 * answer, permission denied.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeVaultOperation =
  | 'datakey'
  | 'encrypt'
  | 'decrypt'
  | 'rewrap'
  | 'read'
  | 'rotate'
  | 'login'
  | 'renew';
export type FakeVaultFault = 'throttle' | 'sealed' | 'hang' | 'malformed' | 'deny';

export interface FakeVaultOptions {
  /** The transit mount's path. Default `transit`. */
  readonly mount?: string;
  /** Seconds since the epoch, for key creation times and token expiry. Default the real clock. */
  readonly now?: () => number;
}

interface KeyVersion {
  readonly material: Buffer;
  readonly created: number;
}

interface TransitKey {
  readonly type: string;
  readonly derived: boolean;
  readonly versions: Map<number, KeyVersion>;
  latest: number;
  minDecryption: number;
  minAvailable: number;
  deletionAllowed: boolean;
}

interface Token {
  /** Path prefixes this token may call; `*` for the root token. */
  readonly paths: readonly string[];
  readonly expiresAt: number;
  readonly ttlSeconds: number;
}

interface Role {
  readonly secretId: string;
  readonly paths: readonly string[];
  readonly ttlSeconds: number;
}

export interface FakeVault {
  /** `http://127.0.0.1:<port>`, for the provider's `endpoint` option. */
  readonly endpoint: string;
  readonly rootToken: string;
  /** Requests seen, as `<operation>` or `<METHOD> <path>`, in order. */
  readonly requests: string[];
  createKey(name: string, options?: { derived?: boolean; type?: string }): void;
  rotate(name: string): void;
  /** Archives the versions below `version`, as `min_decryption_version` does. */
  setMinDecryptionVersion(name: string, version: number): void;
  deleteKey(name: string): void;
  /** A token limited to these path prefixes (under /v1/), for `ttlSeconds` (0: no expiry). */
  issueToken(paths: readonly string[], ttlSeconds?: number): string;
  addAppRole(roleId: string, secretId: string, paths: readonly string[], ttlSeconds: number): void;
  /** Every issued token stops working, as when their leases run out. */
  expireAllTokens(): void;
  /** The next `times` requests of `operation` meet `fault` (default: every one until cleared). */
  inject(operation: FakeVaultOperation, fault: FakeVaultFault, times?: number): void;
  clearFaults(): void;
  close(): Promise<void>;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const PERMISSION_DENIED = '1 error occurred:\n\t* permission denied\n\n';

export async function startFakeVault(options: FakeVaultOptions = {}): Promise<FakeVault> {
  const mount = options.mount ?? 'transit';
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const keys = new Map<string, TransitKey>();
  const tokens = new Map<string, Token>();
  const roles = new Map<string, Role>();
  const faults: { operation: FakeVaultOperation; fault: FakeVaultFault; left: number }[] = [];
  const requests: string[] = [];
  const rootToken = `hvs.root-${randomUUID()}`;
  tokens.set(rootToken, { paths: ['*'], expiresAt: Number.POSITIVE_INFINITY, ttlSeconds: 0 });

  const issue = (paths: readonly string[], ttlSeconds: number) => {
    const token = `hvs.${randomBytes(18).toString('base64url')}`;
    tokens.set(token, {
      paths,
      ttlSeconds,
      expiresAt: ttlSeconds > 0 ? now() + ttlSeconds : Number.POSITIVE_INFINITY,
    });
    return token;
  };

  const keyOf = (name: string) => {
    const key = keys.get(name);
    if (key === undefined) throw new Error(`fake Vault has no key ${name}`);
    return key;
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        handle(request, Buffer.concat(chunks).toString('utf8'), response);
      } catch (error) {
        send(response, 500, { errors: [`fake vault: ${(error as Error).message}`] });
      }
    });
  });

  function handle(request: IncomingMessage, text: string, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/v1\//, '');
    const method = request.method ?? 'GET';
    const route = routeOf(method, path);
    requests.push(route?.operation ?? `${method} ${path}`);
    if (route === undefined) {
      send(response, 404, { errors: [`no handler for route "${path}". route entry not found.`] });
      return;
    }
    const fault = takeFault(route.operation);
    if (fault === 'hang') return; // never answered: the client's signal must end it
    if (fault === 'throttle') {
      response.setHeader('Retry-After', '0');
      send(response, 429, { errors: [`request path "${path}": rate limit quota exceeded`] });
      return;
    }
    if (fault === 'sealed') {
      send(response, 503, { errors: ['Vault is sealed'] });
      return;
    }
    if (fault === 'deny') {
      send(response, 403, { errors: [PERMISSION_DENIED] });
      return;
    }
    let body: Record<string, unknown> = {};
    if (text !== '') {
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        send(response, 400, { errors: ['failed to parse JSON input: invalid character'] });
        return;
      }
    }
    if (route.operation !== 'login' && !allowed(request.headers['x-vault-token'], path)) {
      send(response, 403, { errors: [PERMISSION_DENIED] });
      return;
    }
    const [status, answer] = route.run(body, request.headers['x-vault-token'] as string | undefined);
    if (fault === 'malformed') {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end(status === 200 ? '{"data":{"plaintext":"bm90IGEga2V5","ciphertext":"vault:' : '<html>');
      return;
    }
    send(response, status, answer);
  }

  function takeFault(operation: FakeVaultOperation): FakeVaultFault | undefined {
    const index = faults.findIndex((f) => f.operation === operation && f.left > 0);
    if (index < 0) return undefined;
    const found = faults[index]!;
    found.left -= 1;
    return found.fault;
  }

  function allowed(token: string | string[] | undefined, path: string): boolean {
    const found = typeof token === 'string' ? tokens.get(token) : undefined;
    if (found === undefined || now() >= found.expiresAt) return false;
    if (path === 'auth/token/renew-self') return true;
    return found.paths.some((prefix) => prefix === '*' || path === prefix || path.startsWith(`${prefix}/`));
  }

  type Answer = [number, unknown];
  type Route = {
    operation: FakeVaultOperation;
    run: (body: Record<string, unknown>, token: string | undefined) => Answer;
  };

  function routeOf(method: string, path: string): Route | undefined {
    const match = new RegExp(`^${mount}/(datakey/plaintext|encrypt|decrypt|rewrap|keys)/([^/]+)$`).exec(path);
    if (match !== null) {
      const [, verb, name] = match as unknown as [string, string, string];
      if (verb === 'keys' && method === 'GET') return { operation: 'read', run: () => readKey(name) };
      if (method !== 'POST') return undefined;
      if (verb === 'datakey/plaintext') return { operation: 'datakey', run: (b) => datakey(name, b) };
      if (verb === 'encrypt') return { operation: 'encrypt', run: (b) => encrypt(name, b) };
      if (verb === 'decrypt') return { operation: 'decrypt', run: (b) => decrypt(name, b) };
      if (verb === 'rewrap') return { operation: 'rewrap', run: (b) => rewrap(name, b) };
      return undefined;
    }
    const rotation = new RegExp(`^${mount}/keys/([^/]+)/rotate$`).exec(path);
    if (rotation !== null && method === 'POST') {
      return { operation: 'rotate', run: () => rotateKey(rotation[1] as string) };
    }
    const login = /^auth\/([^/]+)\/login$/.exec(path);
    if (login !== null && method === 'POST') return { operation: 'login', run: (b) => appRoleLogin(b) };
    if (path === 'auth/token/renew-self' && method === 'POST') {
      return { operation: 'renew', run: (_b, token) => renewSelf(token) };
    }
    return undefined;
  }

  function readKey(name: string): Answer {
    const key = keys.get(name);
    if (key === undefined) return [404, { errors: [] }];
    const listed = Object.fromEntries(
      [...key.versions].filter(([v]) => v >= key.minDecryption).map(([v, k]) => [String(v), k.created]),
    );
    return [
      200,
      envelope({
        name,
        type: key.type,
        derived: key.derived,
        kdf: 'hkdf_sha256',
        deletion_allowed: key.deletionAllowed,
        exportable: false,
        keys: listed,
        latest_version: key.latest,
        min_available_version: key.minAvailable,
        min_decryption_version: key.minDecryption,
        min_encryption_version: 0,
        supports_decryption: true,
        supports_derivation: true,
        supports_encryption: true,
        supports_signing: false,
      }),
    ];
  }

  /** `POST <mount>/keys/<name>/rotate`: a new version, which becomes the latest; answers the key as a read does. */
  function rotateKey(name: string): Answer {
    const key = keys.get(name);
    if (key === undefined) return [400, { errors: ['key not found'] }];
    key.latest += 1;
    key.versions.set(key.latest, { material: randomBytes(32), created: now() });
    return readKey(name);
  }

  /**
   * The version an encrypt, datakey or rewrap seals under: `key_version` when the request names one (0 or absent
   * is the latest), checked as Vault's keysutil checks it before encrypting.
   */
  function sealingVersion(key: TransitKey, body: Record<string, unknown>): number | Answer {
    const raw = body.key_version ?? 0;
    const version = typeof raw === 'string' && /^-?[0-9]+$/.test(raw) ? Number(raw) : raw;
    if (typeof version !== 'number' || !Number.isInteger(version)) {
      return [400, { errors: ['error parsing key_version'] }];
    }
    if (version === 0) return key.latest;
    if (version < 0) return [400, { errors: ['requested version for encryption is negative'] }];
    if (version > key.latest) {
      return [400, { errors: ['requested version for encryption is higher than the latest key version'] }];
    }
    return version;
  }

  /** The key a request encrypts or decrypts with: the version itself, or derived from the context. */
  function workingKey(key: TransitKey, version: number, body: Record<string, unknown>): Buffer | Answer {
    const material = key.versions.get(version)?.material;
    if (material === undefined) return [400, { errors: ['invalid ciphertext: version does not exist'] }];
    if (!key.derived) return material;
    if (typeof body.context !== 'string' || body.context === '') {
      return [
        400,
        {
          errors: [
            "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key",
          ],
        },
      ];
    }
    return Buffer.from(
      hkdfSync('sha256', material, Buffer.alloc(0), Buffer.from(body.context, 'base64'), 32),
    );
  }

  function seal(key: TransitKey, plaintext: Buffer, body: Record<string, unknown>): Answer {
    const version = sealingVersion(key, body);
    if (typeof version !== 'number') return version;
    const working = workingKey(key, version, body);
    if (!Buffer.isBuffer(working)) return working;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', working, nonce);
    const sealed = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return [200, { ciphertext: `vault:v${version}:${sealed.toString('base64')}`, key_version: version }];
  }

  function open(key: TransitKey, ciphertext: unknown, body: Record<string, unknown>): Buffer | Answer {
    const match = typeof ciphertext === 'string' ? /^vault:v(\d+):(.*)$/.exec(ciphertext) : null;
    if (match === null) return [400, { errors: ['invalid ciphertext: no prefix'] }];
    const version = Number(match[1]);
    if (version < key.minDecryption) {
      return [400, { errors: ['ciphertext or signature version is disallowed by policy (too old)'] }];
    }
    if (version > key.latest) return [400, { errors: ['invalid ciphertext: version is too new'] }];
    const working = workingKey(key, version, body);
    if (!Buffer.isBuffer(working)) return working;
    const sealed = Buffer.from(match[2]!, 'base64');
    if (sealed.length < NONCE_BYTES + TAG_BYTES) {
      return [400, { errors: ['invalid ciphertext: unable to decrypt'] }];
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', working, sealed.subarray(0, NONCE_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      return Buffer.concat([
        decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      return [400, { errors: ['1 error occurred:\n\t* cipher: message authentication failed\n\n'] }];
    }
  }

  const notFound = (): Answer => [400, { errors: ['encryption key not found'] }];

  function datakey(name: string, body: Record<string, unknown>): Answer {
    const key = keys.get(name);
    if (key === undefined) return notFound();
    const bits = body.bits ?? 256;
    if (bits !== 128 && bits !== 256 && bits !== 512) {
      return [400, { errors: ['invalid bit length'] }];
    }
    const plaintext = randomBytes((bits as number) / 8);
    const [status, sealed] = seal(key, plaintext, body);
    if (status !== 200) return [status, sealed];
    return [200, envelope({ ...(sealed as object), plaintext: plaintext.toString('base64') })];
  }

  function encrypt(name: string, body: Record<string, unknown>): Answer {
    const key = keys.get(name);
    if (key === undefined) return notFound();
    if (typeof body.plaintext !== 'string') return [400, { errors: ['missing plaintext to encrypt'] }];
    const [status, sealed] = seal(key, Buffer.from(body.plaintext, 'base64'), body);
    return status === 200 ? [200, envelope(sealed as object)] : [status, sealed];
  }

  function decrypt(name: string, body: Record<string, unknown>): Answer {
    const key = keys.get(name);
    if (key === undefined) return notFound();
    const opened = open(key, body.ciphertext, body);
    if (!Buffer.isBuffer(opened)) return opened;
    return [200, envelope({ plaintext: opened.toString('base64') })];
  }

  function rewrap(name: string, body: Record<string, unknown>): Answer {
    const key = keys.get(name);
    if (key === undefined) return notFound();
    const opened = open(key, body.ciphertext, body);
    if (!Buffer.isBuffer(opened)) return opened;
    const [status, sealed] = seal(key, opened, body);
    return status === 200 ? [200, envelope(sealed as object)] : [status, sealed];
  }

  function appRoleLogin(body: Record<string, unknown>): Answer {
    const role = typeof body.role_id === 'string' ? roles.get(body.role_id) : undefined;
    if (role === undefined) return [400, { errors: ['invalid role or secret ID'] }];
    if (body.secret_id !== role.secretId) return [400, { errors: ['invalid role or secret ID'] }];
    return [200, authAnswer(issue(role.paths, role.ttlSeconds), role.ttlSeconds)];
  }

  function renewSelf(token: string | undefined): Answer {
    const found = token === undefined ? undefined : tokens.get(token);
    if (token === undefined || found === undefined) return [403, { errors: [PERMISSION_DENIED] }];
    tokens.set(token, {
      ...found,
      expiresAt: found.ttlSeconds > 0 ? now() + found.ttlSeconds : found.expiresAt,
    });
    return [200, authAnswer(token, found.ttlSeconds)];
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    rootToken,
    requests,
    createKey(name, { derived = true, type = 'aes256-gcm96' } = {}) {
      keys.set(name, {
        type,
        derived,
        versions: new Map([[1, { material: randomBytes(32), created: now() }]]),
        latest: 1,
        minDecryption: 1,
        minAvailable: 0,
        deletionAllowed: false,
      });
    },
    rotate(name) {
      keyOf(name);
      rotateKey(name);
    },
    setMinDecryptionVersion(name, version) {
      keyOf(name).minDecryption = version;
    },
    deleteKey(name) {
      keyOf(name);
      keys.delete(name);
    },
    issueToken: (paths, ttlSeconds = 0) => issue(paths, ttlSeconds),
    addAppRole(roleId, secretId, paths, ttlSeconds) {
      roles.set(roleId, { secretId, paths, ttlSeconds });
    },
    expireAllTokens() {
      for (const [token, found] of tokens) {
        if (token !== rootToken) tokens.set(token, { ...found, expiresAt: 0 });
      }
    },
    inject(operation, fault, times = Number.POSITIVE_INFINITY) {
      faults.push({ operation, fault, left: times });
    },
    clearFaults() {
      faults.length = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function envelope(data: object): object {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: null,
    auth: null,
  };
}

function authAnswer(token: string, ttlSeconds: number): object {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: {
      client_token: token,
      accessor: randomBytes(12).toString('base64url'),
      policies: ['default', 'phicache'],
      token_policies: ['default', 'phicache'],
      metadata: {},
      lease_duration: ttlSeconds,
      renewable: ttlSeconds > 0,
      entity_id: '',
      token_type: 'service',
      orphan: true,
    },
  };
}

function send(response: ServerResponse, status: number, answer: unknown): void {
  response.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  response.end(JSON.stringify(answer));
}
