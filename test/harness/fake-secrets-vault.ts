/**
 * A local HashiCorp Vault for tests, KV version 2 reads only: `GET /v1/<mount>/data/<path>` with `X-Vault-Token`,
 * answering with Vault's documented JSON shapes and statuses, on 127.0.0.1 and a free port (plain http, as
 * Vault's dev server). Faults: permission denied, sealed (503), a destroyed version, a malformed answer, no answer.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type VaultFault = 'deny' | 'sealed' | 'destroyed' | 'malformed' | 'hang';

export interface FakeVault {
  /** 127.0.0.1:P, as a vault-kv:// reference names it. */
  readonly host: string;
  readonly token: string;
  /** KV v2 secrets by `<mount>/data/<path>`. */
  readonly secrets: Map<string, Record<string, string>>;
  fault: VaultFault | undefined;
  close(): Promise<void>;
}

export async function startFakeVault(token: string): Promise<FakeVault> {
  const hanging = new Set<ServerResponse>();
  const fake: FakeVault = {
    host: '',
    token,
    secrets: new Map(),
    fault: undefined,
    close: async () => {
      for (const response of hanging) response.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((request, response) => {
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    if (fake.fault === 'hang') {
      hanging.add(response);
      return;
    }
    if (fake.fault === 'sealed') return send(503, { errors: ['Vault is sealed'] });
    if (request.headers['x-vault-token'] !== fake.token || fake.fault === 'deny') {
      return send(403, { errors: ['permission denied'] });
    }
    const path = new URL(request.url ?? '/', 'http://vault').pathname.replace(/^\/v1\//, '');
    const data = request.method === 'GET' ? fake.secrets.get(path) : undefined;
    if (data === undefined) return send(404, { errors: [] });
    const metadata = {
      created_time: '2020-01-01T00:00:00Z',
      deletion_time: '',
      destroyed: false,
      version: 1,
    };
    if (fake.fault === 'destroyed') {
      return send(404, { data: { data: null, metadata: { ...metadata, destroyed: true } } });
    }
    if (fake.fault === 'malformed') return send(200, '{"data": [');
    send(200, { request_id: 'fake', lease_id: '', renewable: false, data: { data, metadata } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, { host: `127.0.0.1:${port}` });
}
