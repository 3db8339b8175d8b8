import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32c } from '../../src/keys/providers/gcp-crc32c.js';

/**
 * A local Cloud KMS that speaks the REST transcoding of `google.cloud.kms.v1.KeyManagementService` (the JSON that
 * `@google-cloud/kms` sends in its `fallback` mode) on 127.0.0.1: `:encrypt`, `:decrypt`, `GetCryptoKey` and
 * `ListCryptoKeyVersions`. It keeps its own key versions and really encrypts (AES-256-GCM, the caller's
 * additional authenticated data bound), checks the CRC32C fields of requests as Cloud KMS does and fills those
 * of its answers, and injects the faults a real service shows.
 */

export type GcpVersionState =
  | 'ENABLED'
  | 'DISABLED'
  | 'DESTROYED'
  | 'DESTROY_SCHEDULED'
  | 'PENDING_GENERATION';

/** What the next matching calls suffer instead of a normal answer. */
export type GcpFault =
  /** 429 RESOURCE_EXHAUSTED, as Cloud KMS answers past its quota. */
  | 'throttle'
  /** 503 UNAVAILABLE. */
  | 'unavailable'
  /** 403 PERMISSION_DENIED. */
  | 'deny'
  /** Reads the request and never answers. */
  | 'hang'
  /** 200 with a body that is not JSON. */
  | 'malformed'
  /** 200 with a ciphertext (encrypt) or plaintext (decrypt) changed on the way: its CRC32C no longer matches. */
  | 'corrupt'
  /** 200 on encrypt, but the server says it did not verify the CRC32C of the plaintext it got. */
  | 'unverified';

export type GcpMethod =
  | 'encrypt'
  | 'decrypt'
  | 'getCryptoKey'
  | 'listCryptoKeyVersions'
  | 'createCryptoKeyVersion';

interface Version {
  readonly id: number;
  readonly material: Buffer;
  state: GcpVersionState;
}

interface Key {
  readonly versions: Map<number, Version>;
  primary: number;
}

export interface FakeGcpKms {
  /** `http://127.0.0.1:<port>`, for the adapter's `endpoint` open option. */
  readonly endpoint: string;
  /** `gcp-kms://projects/…/cryptoKeys/<key>` of a key the server holds (made on first use). */
  keyUri(key?: string): string;
  /** A new ENABLED version of the key, made primary when `primary` is true; returns its id. */
  addVersion(key: string, primary: boolean): number;
  setState(key: string, version: number, state: GcpVersionState): void;
  /** The next `count` calls (of `method`, or any) suffer `fault`. */
  inject(fault: GcpFault, options?: { count?: number; method?: GcpMethod }): void;
  /**
   * Grants the caller only these methods (others answer 403 PERMISSION_DENIED), as an IAM role would; `undefined`
   * grants all. `['encrypt', 'decrypt']` is `roles/cloudkms.cryptoKeyEncrypterDecrypter`.
   */
  grant(methods: readonly GcpMethod[] | undefined): void;
  /** Drops every fault not yet used. */
  clearFaults(): void;
  /** Request bodies received, newest last (for asserting what the client sent). */
  readonly requests: ReadonlyArray<{ method: GcpMethod; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

const KEY_PREFIX = 'projects/phicache-test/locations/europe-west1/keyRings/phicache';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const VERSION_BYTES = 4;

export async function startFakeGcpKms(): Promise<FakeGcpKms> {
  const keys = new Map<string, Key>();
  const faults: { fault: GcpFault; method: GcpMethod | undefined; left: number }[] = [];
  const requests: { method: GcpMethod; body: Record<string, unknown> }[] = [];
  let granted: ReadonlySet<GcpMethod> | undefined;

  const keyNamed = (name: string): Key | undefined => keys.get(name);
  const ensureKey = (short: string): Key => {
    const name = `${KEY_PREFIX}/cryptoKeys/${short}`;
    let key = keys.get(name);
    if (key === undefined) {
      key = { versions: new Map(), primary: 1 };
      key.versions.set(1, { id: 1, material: randomBytes(32), state: 'ENABLED' });
      keys.set(name, key);
    }
    return key;
  };
  const takeFault = (method: GcpMethod): GcpFault | undefined => {
    const index = faults.findIndex((f) => f.method === undefined || f.method === method);
    if (index < 0) return undefined;
    const entry = faults[index] as (typeof faults)[number];
    entry.left -= 1;
    if (entry.left <= 0) faults.splice(index, 1);
    return entry.fault;
  };

  const server = createServer((request, response) => {
    readBody(request).then(
      (raw) => answer(request, response, raw),
      () => response.destroy(),
    );
  });

  function answer(request: IncomingMessage, response: ServerResponse, raw: string) {
    const url = new URL(request.url ?? '/', 'http://fake');
    const path = decodeURIComponent(url.pathname);
    const route =
      /^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/:]+)(?:\/cryptoKeyVersions\/([0-9]+)(?=:encrypt$))?(:encrypt|:decrypt|\/cryptoKeyVersions)?$/.exec(
        path,
      );
    if (route === null) return sendError(response, 404, 'NOT_FOUND', 'no such path');
    const [, name = '', versionId, suffix] = route;
    const post = request.method === 'POST';
    const method: GcpMethod =
      suffix === ':encrypt'
        ? 'encrypt'
        : suffix === ':decrypt'
          ? 'decrypt'
          : suffix === '/cryptoKeyVersions'
            ? post
              ? 'createCryptoKeyVersion'
              : 'listCryptoKeyVersions'
            : 'getCryptoKey';
    const posted = method === 'encrypt' || method === 'decrypt' || method === 'createCryptoKeyVersion';
    if (posted !== post) {
      return sendError(response, 400, 'INVALID_ARGUMENT', 'wrong HTTP method');
    }
    let body: Record<string, unknown> = {};
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return sendError(response, 400, 'INVALID_ARGUMENT', 'body is not JSON');
      }
    }
    requests.push({ method, body });
    if (granted !== undefined && !granted.has(method)) {
      return sendError(response, 403, 'PERMISSION_DENIED', `permission denied on ${method}`);
    }
    const fault = takeFault(method);
    if (fault === 'hang') return;
    if (fault === 'throttle') return sendError(response, 429, 'RESOURCE_EXHAUSTED', 'quota exceeded');
    if (fault === 'unavailable') return sendError(response, 503, 'UNAVAILABLE', 'try again');
    if (fault === 'deny') return sendError(response, 403, 'PERMISSION_DENIED', 'permission denied');
    if (fault === 'malformed') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"ciphertext": ');
      return;
    }
    const key = keyNamed(name);
    if (key === undefined) return sendError(response, 404, 'NOT_FOUND', 'CryptoKey not found');
    switch (method) {
      case 'getCryptoKey':
        return sendJson(response, {
          name,
          purpose: 'ENCRYPT_DECRYPT',
          primary: versionJson(name, key, key.primary),
        });
      case 'listCryptoKeyVersions':
        return sendJson(response, {
          cryptoKeyVersions: [...key.versions.keys()].map((id) => versionJson(name, key, id)),
          totalSize: key.versions.size,
        });
      case 'createCryptoKeyVersion': {
        const id = Math.max(...key.versions.keys()) + 1;
        key.versions.set(id, { id, material: randomBytes(32), state: 'ENABLED' });
        return sendJson(response, versionJson(name, key, id));
      }
      case 'encrypt':
        return encrypt(
          response,
          name,
          key,
          body,
          fault,
          versionId === undefined ? undefined : Number(versionId),
        );
      case 'decrypt':
        return decrypt(response, name, key, body, fault);
    }
  }

  function encrypt(
    response: ServerResponse,
    name: string,
    key: Key,
    body: Record<string, unknown>,
    fault: GcpFault | undefined,
    /** The CryptoKeyVersion the request named, or undefined for the key (its primary version). */
    named: number | undefined,
  ) {
    const plaintext = bytesField(body.plaintext);
    const aad = bytesField(body.additionalAuthenticatedData);
    if (plaintext === undefined || aad === undefined) {
      return sendError(
        response,
        400,
        'INVALID_ARGUMENT',
        'plaintext or additionalAuthenticatedData is missing',
      );
    }
    const checked =
      checkCrc(plaintext, body.plaintextCrc32c) && checkCrc(aad, body.additionalAuthenticatedDataCrc32c);
    if (!checked) return sendError(response, 400, 'INVALID_ARGUMENT', 'checksum mismatch');
    const version = key.versions.get(named ?? key.primary);
    if (version === undefined) return sendError(response, 404, 'NOT_FOUND', 'CryptoKeyVersion not found');
    if (version.state !== 'ENABLED') {
      return sendError(response, 400, 'FAILED_PRECONDITION', `the version is ${version.state}`);
    }
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', version.material, nonce);
    cipher.setAAD(Buffer.concat([Buffer.from(name), aad]));
    const header = Buffer.alloc(VERSION_BYTES);
    header.writeUInt32BE(version.id);
    const ciphertext = Buffer.concat([
      header,
      nonce,
      cipher.update(plaintext),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    const sent = fault === 'corrupt' ? flipLastBit(ciphertext) : ciphertext;
    sendJson(response, {
      name: `${name}/cryptoKeyVersions/${version.id}`,
      ciphertext: sent.toString('base64'),
      ciphertextCrc32c: String(crc32c(ciphertext)),
      verifiedPlaintextCrc32c: fault !== 'unverified' && body.plaintextCrc32c !== undefined,
      verifiedAdditionalAuthenticatedDataCrc32c: body.additionalAuthenticatedDataCrc32c !== undefined,
      protectionLevel: 'SOFTWARE',
    });
  }

  function decrypt(
    response: ServerResponse,
    name: string,
    key: Key,
    body: Record<string, unknown>,
    fault: GcpFault | undefined,
  ) {
    const ciphertext = bytesField(body.ciphertext);
    const aad = bytesField(body.additionalAuthenticatedData) ?? Buffer.alloc(0);
    if (ciphertext === undefined)
      return sendError(response, 400, 'INVALID_ARGUMENT', 'ciphertext is missing');
    const checked =
      checkCrc(ciphertext, body.ciphertextCrc32c) && checkCrc(aad, body.additionalAuthenticatedDataCrc32c);
    if (!checked) return sendError(response, 400, 'INVALID_ARGUMENT', 'checksum mismatch');
    const invalid = () =>
      sendError(response, 400, 'INVALID_ARGUMENT', 'Decryption failed: the ciphertext is invalid.');
    if (ciphertext.length < VERSION_BYTES + NONCE_BYTES + TAG_BYTES) return invalid();
    const version = key.versions.get(ciphertext.readUInt32BE(0));
    if (version === undefined) return invalid();
    if (version.state !== 'ENABLED') {
      return sendError(response, 400, 'FAILED_PRECONDITION', `the version is ${version.state}`);
    }
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        version.material,
        ciphertext.subarray(VERSION_BYTES, VERSION_BYTES + NONCE_BYTES),
      );
      decipher.setAAD(Buffer.concat([Buffer.from(name), aad]));
      decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_BYTES));
      plaintext = Buffer.concat([
        decipher.update(ciphertext.subarray(VERSION_BYTES + NONCE_BYTES, ciphertext.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      return invalid();
    }
    const sent = fault === 'corrupt' ? flipLastBit(plaintext) : plaintext;
    sendJson(response, {
      plaintext: sent.toString('base64'),
      plaintextCrc32c: String(crc32c(plaintext)),
      usedPrimary: version.id === key.primary,
      protectionLevel: 'SOFTWARE',
    });
  }

  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    keyUri(short = 'cache') {
      ensureKey(short);
      return `gcp-kms://${KEY_PREFIX}/cryptoKeys/${short}`;
    },
    addVersion(short, primary) {
      const key = ensureKey(short);
      const id = Math.max(...key.versions.keys()) + 1;
      key.versions.set(id, { id, material: randomBytes(32), state: 'ENABLED' });
      if (primary) key.primary = id;
      return id;
    },
    setState(short, version, state) {
      const found = ensureKey(short).versions.get(version);
      if (found === undefined) throw new RangeError(`no version ${version}`);
      found.state = state;
    },
    inject(fault, options = {}) {
      faults.push({ fault, method: options.method, left: options.count ?? 1 });
    },
    grant(methods) {
      granted = methods === undefined ? undefined : new Set(methods);
    },
    clearFaults() {
      faults.length = 0;
    },
    requests,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function versionJson(name: string, key: Key, id: number) {
  const version = key.versions.get(id) as Version;
  return {
    name: `${name}/cryptoKeyVersions/${id}`,
    state: version.state,
    algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
    protectionLevel: 'SOFTWARE',
    createTime: `2020-01-0${Math.min(id, 9)}T00:00:00Z`,
  };
}

function bytesField(value: unknown): Buffer | undefined {
  return typeof value === 'string' ? Buffer.from(value, 'base64') : undefined;
}

/** An absent checksum is not checked, as in Cloud KMS; a present one must match. Int64Value travels as a string. */
function checkCrc(data: Buffer, field: unknown): boolean {
  if (field === undefined || field === null) return true;
  return Number(field) === crc32c(data);
}

function flipLastBit(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0x01;
  return copy;
}

function sendJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** The error body of Google APIs (google.rpc.Status in JSON), which the client turns into a GoogleError. */
function sendError(response: ServerResponse, http: number, status: string, message: string): void {
  response.writeHead(http, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ error: { code: http, message, status } }));
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
