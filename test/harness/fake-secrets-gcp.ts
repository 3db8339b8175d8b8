/**
 * A local Google Secret Manager for tests: `AccessSecretVersion` as the official `@google-cloud/secret-manager`
 * client sends it in REST mode (`GET /v1/projects/P/secrets/S/versions/V:access`), answered with the REST
 * transcoding of `AccessSecretVersionResponse` (`payload.data` in base64, `payload.dataCrc32c` an int64 as a
 * decimal string) or with a `google.rpc.Status` error body, on 127.0.0.1 and a free port. `latest` is the most
 * recently added version, whatever its state, as in the real service.
 * Faults: throttling, unavailability, denial, silence, a payload changed on the way (its CRC32C no longer
 * matches) and an answer that is not JSON; versions can be disabled or destroyed.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32c } from '../../src/keys/providers/gcp-crc32c.js';

export type GcpSecretFault =
  /** 429 RESOURCE_EXHAUSTED, as Secret Manager answers past its quota. */
  | 'throttle'
  /** 503 UNAVAILABLE. */
  | 'unavailable'
  /** 403 PERMISSION_DENIED. */
  | 'deny'
  /** Reads the request and never answers. */
  | 'hang'
  /** 200 with one bit of `payload.data` flipped after its CRC32C was computed. */
  | 'corrupt'
  /** 200 with a body that is not JSON. */
  | 'malformed';

export type GcpSecretVersionState = 'ENABLED' | 'DISABLED' | 'DESTROYED';

interface Version {
  readonly data: Buffer;
  state: GcpSecretVersionState;
}

export interface FakeGcpSecretManager {
  /** `http://127.0.0.1:<port>`, for the source's `endpoint` option. */
  readonly endpoint: string;
  /** Adds a version to `projects/<project>/secrets/<secret>` (made on first use); returns its number. */
  addVersion(secret: string, data: string | Buffer, project?: string): number;
  setState(secret: string, version: number, state: GcpSecretVersionState, project?: string): void;
  /** The next `count` requests (default 1) suffer `fault`. */
  inject(fault: GcpSecretFault, count?: number): void;
  clearFaults(): void;
  /** Hung requests whose connection the client closed: a read it abandoned was cancelled, not left open. */
  readonly cancelled: number;
  /** Every request received: method, path and headers, newest last. */
  readonly requests: ReadonlyArray<{
    method: string;
    path: string;
    headers: Readonly<Record<string, unknown>>;
  }>;
  close(): Promise<void>;
}

export const FAKE_GCP_PROJECT = 'phicache-test';
/** The project number the service puts in the names it answers with, as the real one does. */
const PROJECT_NUMBER = '123456789012';

export async function startFakeGcpSecretManager(): Promise<FakeGcpSecretManager> {
  const secrets = new Map<string, Version[]>();
  const faults: { fault: GcpSecretFault; left: number }[] = [];
  const requests: { method: string; path: string; headers: Record<string, unknown> }[] = [];
  let cancelled = 0;
  const takeFault = (): GcpSecretFault | undefined => {
    const entry = faults[0];
    if (entry === undefined) return undefined;
    entry.left -= 1;
    if (entry.left <= 0) faults.shift();
    return entry.fault;
  };

  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => answer(request, response));
  });

  function answer(request: IncomingMessage, response: ServerResponse) {
    const url = new URL(request.url ?? '/', 'http://fake');
    const path = decodeURIComponent(url.pathname);
    requests.push({ method: request.method ?? '', path, headers: { ...request.headers } });
    const route = /^\/v1\/projects\/([^/]+)\/secrets\/([^/]+)\/versions\/([^/:]+):access$/.exec(path);
    if (route === null) return sendError(response, 404, 'NOT_FOUND', 'no such path');
    if (request.method !== 'GET') return sendError(response, 400, 'INVALID_ARGUMENT', 'wrong HTTP method');
    const [, project = '', secret = '', wanted = ''] = route;
    const fault = takeFault();
    if (fault === 'hang') {
      response.on('close', () => {
        if (!response.writableEnded) cancelled++;
      });
      return;
    }
    if (fault === 'throttle') return sendError(response, 429, 'RESOURCE_EXHAUSTED', 'quota exceeded');
    if (fault === 'unavailable') return sendError(response, 503, 'UNAVAILABLE', 'try again');
    if (fault === 'deny') {
      return sendError(
        response,
        403,
        'PERMISSION_DENIED',
        `Permission 'secretmanager.versions.access' denied for resource '${path.slice(4, -7)}'`,
      );
    }
    if (fault === 'malformed') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"name": "projects/');
      return;
    }
    const versions = secrets.get(`projects/${project}/secrets/${secret}`);
    const number = wanted === 'latest' ? (versions?.length ?? 0) : Number(wanted);
    const version = Number.isSafeInteger(number) && number >= 1 ? versions?.[number - 1] : undefined;
    const name = `projects/${PROJECT_NUMBER}/secrets/${secret}/versions/${number}`;
    if (version === undefined) {
      return sendError(response, 404, 'NOT_FOUND', `Secret Version [${name}] not found.`);
    }
    if (version.state !== 'ENABLED') {
      return sendError(
        response,
        400,
        'FAILED_PRECONDITION',
        `Secret Version [${name}] is in ${version.state} state.`,
      );
    }
    const sent = fault === 'corrupt' ? flipLastBit(version.data) : version.data;
    response.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    response.end(
      JSON.stringify({
        name,
        payload: { data: sent.toString('base64'), dataCrc32c: String(crc32c(version.data)) },
      }),
    );
  }

  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const versionsOf = (secret: string, project: string) => {
    const name = `projects/${project}/secrets/${secret}`;
    let versions = secrets.get(name);
    if (versions === undefined) {
      versions = [];
      secrets.set(name, versions);
    }
    return versions;
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    addVersion(secret, data, project = FAKE_GCP_PROJECT) {
      const versions = versionsOf(secret, project);
      versions.push({ data: Buffer.from(data), state: 'ENABLED' });
      return versions.length;
    },
    setState(secret, version, state, project = FAKE_GCP_PROJECT) {
      const found = versionsOf(secret, project)[version - 1];
      if (found === undefined) throw new RangeError(`no version ${version}`);
      found.state = state;
    },
    inject(fault, count = 1) {
      faults.push({ fault, left: count });
    },
    clearFaults() {
      faults.length = 0;
    },
    requests,
    get cancelled() {
      return cancelled;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function flipLastBit(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0x01;
  return copy;
}

/** The error body of Google APIs (google.rpc.Status in JSON), which the client turns into a GoogleError. */
function sendError(response: ServerResponse, http: number, status: string, message: string): void {
  response.writeHead(http, { 'content-type': 'application/json; charset=UTF-8' });
  response.end(JSON.stringify({ error: { code: http, message, status } }));
}
