import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A local AWS KMS for tests: it speaks the service's JSON 1.1 protocol (`X-Amz-Target: TrentService.<Op>`) on
 * 127.0.0.1, checks every request's SigV4 signature against the test's credentials, keeps its own keys and
 * really encrypts (AES-256-GCM with the encryption context as AAD), and injects faults with the error shapes KMS
 * sends. Its ciphertext blobs are its own format; only this server reads them.
 */

export const FAKE_KMS_REGION = 'us-east-1';
export const FAKE_KMS_ACCOUNT = '111122223333';

export interface FakeKmsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** What the server does instead of answering, for the next `times` calls of an operation (or of every one). */
export type FakeKmsFault =
  | 'throttle'
  | 'internal'
  | 'dependency-timeout'
  | 'access-denied'
  | 'hang'
  | 'malformed-json'
  | 'short-plaintext';

export type FakeKmsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

export interface FakeKms {
  readonly endpoint: string;
  readonly credentials: FakeKmsCredentials;
  /** Creates a key and returns its ARN. */
  createKey(): string;
  /** Points an alias (`alias/NAME`) at a key and returns the alias ARN. */
  createAlias(name: string, keyArn: string): string;
  setKeyState(keyArn: string, state: FakeKmsKeyState): void;
  /** New key material, as KMS's automatic rotation makes: earlier blobs still decrypt. */
  rotate(keyArn: string): void;
  /** Which material generation of its key a blob was wrapped under (0 first). */
  materialOf(blob: Buffer): number;
  inject(fault: FakeKmsFault, options?: { operation?: string; times?: number }): void;
  /** Requests received, by operation, signed or not. */
  readonly calls: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

interface Key {
  readonly id: string;
  readonly arn: string;
  readonly createdAt: number;
  state: FakeKmsKeyState;
  readonly materials: Buffer[];
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const BLOB_MAGIC = Buffer.from('FKMS1');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Starts the server on a free port. `createdAt` (epoch seconds) is what DescribeKey reports as CreationDate, so
 * no answer depends on today's date.
 */
export async function startFakeKms(
  options: { credentials?: FakeKmsCredentials; createdAt?: number } = {},
): Promise<FakeKms> {
  const credentials = options.credentials ?? {
    accessKeyId: 'AKIAFAKEKMS000000001',
    secretAccessKey: randomBytes(30).toString('base64'),
  };
  const createdAt = options.createdAt ?? 1_700_000_000;
  const keys = new Map<string, Key>();
  const aliases = new Map<string, string>();
  const faults: { fault: FakeKmsFault; operation: string | undefined; left: number }[] = [];
  const calls = new Map<string, number>();
  const sockets = new Set<Socket>();

  const keyOf = (keyId: unknown): Key => {
    if (typeof keyId !== 'string' || keyId.length === 0) throw new KmsError('ValidationException', 'KeyId');
    let id = keyId;
    if (id.startsWith('alias/')) id = aliases.get(id) ?? '';
    else if (/^arn:aws:kms:[^:]+:\d+:alias\//.test(id))
      id = aliases.get(id.slice(id.indexOf('alias/'))) ?? '';
    else if (id.startsWith('arn:')) id = id.slice(id.lastIndexOf('/') + 1);
    const key = keys.get(id);
    if (key === undefined) throw new KmsError('NotFoundException', 'Key not found');
    return key;
  };
  const usable = (key: Key) => {
    if (key.state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    if (key.state === 'PendingDeletion') {
      throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
  };

  const seal = (key: Key, plaintext: Buffer, context: unknown): Buffer => {
    const generation = key.materials.length - 1;
    const nonce = randomBytes(NONCE_BYTES);
    const header = Buffer.concat([BLOB_MAGIC, Buffer.from([generation]), Buffer.from(key.id, 'utf8')]);
    const cipher = createCipheriv('aes-256-gcm', key.materials[generation]!, nonce);
    cipher.setAAD(Buffer.concat([header, aadOf(context)]));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, nonce, body, cipher.getAuthTag()]);
  };
  const open = (blob: Buffer, context: unknown): { key: Key; plaintext: Buffer } => {
    const invalid = () => new KmsError('InvalidCiphertextException', '');
    const idEnd = BLOB_MAGIC.length + 1 + 36;
    if (blob.length < idEnd + NONCE_BYTES + TAG_BYTES || !blob.subarray(0, 5).equals(BLOB_MAGIC))
      throw invalid();
    const key = keys.get(blob.subarray(BLOB_MAGIC.length + 1, idEnd).toString('utf8'));
    const material = key?.materials[blob[BLOB_MAGIC.length]!];
    if (key === undefined || material === undefined) throw invalid();
    usable(key);
    try {
      const decipher = createDecipheriv('aes-256-gcm', material, blob.subarray(idEnd, idEnd + NONCE_BYTES));
      decipher.setAAD(Buffer.concat([blob.subarray(0, idEnd), aadOf(context)]));
      decipher.setAuthTag(blob.subarray(blob.length - TAG_BYTES));
      const body = blob.subarray(idEnd + NONCE_BYTES, blob.length - TAG_BYTES);
      return { key, plaintext: Buffer.concat([decipher.update(body), decipher.final()]) };
    } catch {
      throw invalid();
    }
  };
  const blobOf = (value: unknown) => {
    if (typeof value !== 'string') throw new KmsError('ValidationException', 'CiphertextBlob');
    return Buffer.from(value, 'base64');
  };

  const operations: Record<string, (input: Record<string, unknown>) => unknown> = {
    GenerateDataKey(input) {
      const key = keyOf(input.KeyId);
      usable(key);
      if (input.KeySpec !== 'AES_256') throw new KmsError('ValidationException', 'KeySpec');
      const plaintext = randomBytes(32);
      const blob = seal(key, plaintext, input.EncryptionContext);
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString('base64'),
        CiphertextBlob: blob.toString('base64'),
      };
    },
    Decrypt(input) {
      const { key, plaintext } = open(blobOf(input.CiphertextBlob), input.EncryptionContext);
      if (input.KeyId !== undefined && keyOf(input.KeyId) !== key) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key.');
      }
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      };
    },
    ReEncrypt(input) {
      const { key: source, plaintext } = open(blobOf(input.CiphertextBlob), input.SourceEncryptionContext);
      if (input.SourceKeyId !== undefined && keyOf(input.SourceKeyId) !== source) {
        throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify the key.');
      }
      const destination = keyOf(input.DestinationKeyId);
      usable(destination);
      const blob = seal(destination, plaintext, input.DestinationEncryptionContext);
      plaintext.fill(0);
      return { CiphertextBlob: blob.toString('base64'), SourceKeyId: source.arn, KeyId: destination.arn };
    },
    DescribeKey(input) {
      const key = keyOf(input.KeyId);
      return {
        KeyMetadata: {
          AWSAccountId: FAKE_KMS_ACCOUNT,
          KeyId: key.id,
          Arn: key.arn,
          CreationDate: key.createdAt,
          Enabled: key.state === 'Enabled',
          KeyState: key.state,
          KeyUsage: 'ENCRYPT_DECRYPT',
          KeySpec: 'SYMMETRIC_DEFAULT',
          KeyManager: 'CUSTOMER',
          Origin: 'AWS_KMS',
        },
      };
    },
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => answer(request, response, Buffer.concat(chunks)));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const answer = (request: IncomingMessage, response: ServerResponse, body: Buffer) => {
    const target = String(request.headers['x-amz-target'] ?? '');
    const operation = target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '';
    calls.set(operation, (calls.get(operation) ?? 0) + 1);
    const send = (status: number, payload: string) => {
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': randomUUID(),
      });
      response.end(payload);
    };
    const fail = (error: KmsError) =>
      send(error.status, JSON.stringify({ __type: error.type, message: error.message }));
    try {
      if (request.method !== 'POST' || request.headers['content-type'] !== 'application/x-amz-json-1.1') {
        throw new KmsError('SerializationException', 'Expected application/x-amz-json-1.1');
      }
      checkSignature(request, body, credentials);
      const run = operations[operation];
      if (run === undefined) throw new KmsError('UnknownOperationException', '');
      const fault = takeFault(faults, operation);
      if (fault === 'hang') return;
      if (fault === 'malformed-json') return send(200, '{"KeyId": "arn:aws:kms:');
      if (fault !== undefined && fault !== 'short-plaintext') throw faultError(fault);
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        throw new KmsError('SerializationException', 'Malformed JSON');
      }
      const output = run(input) as Record<string, unknown>;
      if (fault === 'short-plaintext') output.Plaintext = randomBytes(16).toString('base64');
      send(200, JSON.stringify(output));
    } catch (error) {
      if (!(error instanceof KmsError)) throw error;
      fail(error);
    }
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials,
    calls,
    createKey() {
      const id = randomUUID();
      const arn = `arn:aws:kms:${FAKE_KMS_REGION}:${FAKE_KMS_ACCOUNT}:key/${id}`;
      keys.set(id, { id, arn, createdAt, state: 'Enabled', materials: [randomBytes(32)] });
      return arn;
    },
    createAlias(name, keyArn) {
      aliases.set(`alias/${name}`, keyOf(keyArn).id);
      return `arn:aws:kms:${FAKE_KMS_REGION}:${FAKE_KMS_ACCOUNT}:alias/${name}`;
    },
    setKeyState(keyArn, state) {
      keyOf(keyArn).state = state;
    },
    rotate(keyArn) {
      keyOf(keyArn).materials.push(randomBytes(32));
    },
    materialOf(blob) {
      return blob[BLOB_MAGIC.length]!;
    },
    inject(fault, { operation, times = 1 } = {}) {
      faults.push({ fault, operation, left: times });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function takeFault(
  faults: { fault: FakeKmsFault; operation: string | undefined; left: number }[],
  operation: string,
): FakeKmsFault | undefined {
  const found = faults.find((f) => f.left > 0 && (f.operation === undefined || f.operation === operation));
  if (found === undefined) return undefined;
  found.left -= 1;
  return found.fault;
}

function faultError(fault: FakeKmsFault): KmsError {
  switch (fault) {
    case 'throttle':
      return new KmsError('ThrottlingException', 'Rate exceeded');
    case 'internal':
      return new KmsError('KMSInternalException', 'An internal error occurred.', 500);
    case 'dependency-timeout':
      return new KmsError('DependencyTimeoutException', 'The system timed out.', 503);
    default:
      return new KmsError(
        'AccessDeniedException',
        'User is not authorized to perform: kms:* on this resource because no resource-based policy allows it',
      );
  }
}

/** The encryption context as KMS treats it: an unordered map of strings, compared whole. */
function aadOf(context: unknown): Buffer {
  if (context === undefined || context === null) return Buffer.alloc(0);
  if (typeof context !== 'object') throw new KmsError('ValidationException', 'EncryptionContext');
  const entries = Object.entries(context as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
  if (entries.some(([, value]) => typeof value !== 'string')) {
    throw new KmsError('ValidationException', 'EncryptionContext');
  }
  return Buffer.from(JSON.stringify(entries), 'utf8');
}

/**
 * Recomputes the request's AWS Signature Version 4 from its method, path, query, the headers it says it signed
 * and its body, with the test's secret, and refuses it as KMS does when it differs.
 */
function checkSignature(request: IncomingMessage, body: Buffer, credentials: FakeKmsCredentials): void {
  const authorization = String(request.headers.authorization ?? '');
  const parsed =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (parsed === null)
    throw new KmsError('IncompleteSignatureException', 'Authorization header is malformed');
  const [, accessKeyId, day, region, service, signedHeaders, signature] = parsed as unknown as string[];
  if (accessKeyId !== credentials.accessKeyId) {
    throw new KmsError(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    );
  }
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day!) || region !== FAKE_KMS_REGION || service !== 'kms') {
    throw new KmsError(
      'InvalidSignatureException',
      'Credential should be scoped to a valid region and service.',
    );
  }
  const url = new URL(request.url ?? '/', 'http://fake');
  const query = [...url.searchParams]
    .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)])
    .sort(([a], [b]) => (a! < b! ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders!.split(';');
  const canonicalHeaders = names
    .map((name) => {
      const value = request.headers[name];
      const text = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${text.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalRequest = [
    request.method,
    url.pathname,
    query,
    canonicalHeaders,
    signedHeaders,
    sha256Hex(body),
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(Buffer.from(canonicalRequest))].join(
    '\n',
  );
  let signingKey: Buffer = Buffer.from(`AWS4${credentials.secretAccessKey}`, 'utf8');
  for (const part of [day!, region!, service!, 'aws4_request']) signingKey = hmac(signingKey, part);
  const expected = hmac(signingKey, stringToSign).toString('hex');
  if (!names.includes('host') || !names.includes('x-amz-date') || expected !== signature) {
    throw new KmsError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
