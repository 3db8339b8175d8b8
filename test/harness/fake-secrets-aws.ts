/**
 * A local AWS Secrets Manager for tests: `GetSecretValue` over the real wire protocol (HTTP POST,
 * `application/x-amz-json-1.1`, `X-Amz-Target: secretsmanager.GetSecretValue`), with every request's SigV4
 * signature recomputed and checked against the one access key it knows, on 127.0.0.1 and a free port.
 * Faults: throttling (a number of times, then answers), access denied, a secret scheduled for deletion, a
 * malformed answer, and no answer at all.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AwsSecretsFault = 'deny' | 'deleted' | 'malformed' | 'hang';

export interface FakeSecretsManager {
  /** http://127.0.0.1:P */
  readonly endpoint: string;
  readonly region: 'us-east-1';
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** Secrets by name or ARN: a string is SecretString, a Buffer SecretBinary. */
  readonly secrets: Map<string, string | Buffer>;
  fault: AwsSecretsFault | undefined;
  /** Answer this many requests with ThrottlingException before answering normally. */
  throttleNext: number;
  /** Requests seen, signed correctly or not. */
  requests: number;
  close(): Promise<void>;
}

export async function startFakeSecretsManager(): Promise<FakeSecretsManager> {
  const credentials = {
    accessKeyId: 'AKIDFAKESECRETS01',
    secretAccessKey: 'fake-secret-access-key-for-tests',
  };
  const hanging = new Set<ServerResponse>();
  const fake: FakeSecretsManager = {
    endpoint: '',
    region: 'us-east-1',
    credentials,
    secrets: new Map(),
    fault: undefined,
    throttleNext: 0,
    requests: 0,
    close: async () => {
      for (const response of hanging) response.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    fake.requests++;
    const error = (type: string, status = 400) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ __type: type, message: `fake: ${type}` }));
    };
    if (
      request.method !== 'POST' ||
      request.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue' ||
      request.headers['content-type'] !== 'application/x-amz-json-1.1'
    ) {
      return error('UnknownOperationException');
    }
    if (!signatureHolds(request, body, credentials.secretAccessKey, credentials.accessKeyId)) {
      return error('InvalidSignatureException');
    }
    if (fake.fault === 'hang') {
      hanging.add(response);
      return;
    }
    if (fake.throttleNext > 0) {
      fake.throttleNext--;
      return error('ThrottlingException');
    }
    if (fake.fault === 'deny') return error('AccessDeniedException');
    if (fake.fault === 'deleted') return error('InvalidRequestException');
    if (fake.fault === 'malformed') {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      return response.end('{"SecretString": ');
    }
    const { SecretId } = JSON.parse(body.toString('utf8')) as { SecretId: string };
    const secret = fake.secrets.get(SecretId);
    if (secret === undefined) return error('ResourceNotFoundException');
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    response.end(
      JSON.stringify({
        ARN: SecretId,
        Name: SecretId,
        VersionId: '00000000-0000-4000-8000-000000000001',
        VersionStages: ['AWSCURRENT'],
        ...(typeof secret === 'string'
          ? { SecretString: secret }
          : { SecretBinary: secret.toString('base64') }),
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, { endpoint: `http://127.0.0.1:${port}` });
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

/** AWS Signature Version 4, recomputed from the request as received (a POST to `/` with no query). */
function signatureHolds(
  request: IncomingMessage,
  body: Buffer,
  secretKey: string,
  accessKey: string,
): boolean {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/secretsmanager\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      String(request.headers.authorization ?? ''),
    );
  const amzDate = request.headers['x-amz-date'];
  if (match === null || typeof amzDate !== 'string' || match[1] !== accessKey) return false;
  const [, , day, region, signedHeaders, signature] = match as unknown as string[];
  const headers = signedHeaders!.split(';');
  const canonicalHeaders = headers
    .map(
      (name) =>
        `${name}:${String(request.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const canonicalRequest = [request.method, '/', '', canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/secretsmanager/aws4_request`;
  const toSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key: Buffer = Buffer.from(`AWS4${secretKey}`);
  for (const part of [day!, region!, 'secretsmanager', 'aws4_request']) {
    key = createHmac('sha256', key).update(part).digest();
  }
  return createHmac('sha256', key).update(toSign).digest('hex') === signature;
}
