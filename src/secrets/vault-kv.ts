/**
 * `vault-kv://host:port/<mount>/data/<path>#field[?token-source=env:VAULT_TOKEN&namespace=ns&version=n]`: one
 * field of a HashiCorp Vault KV version 2 secret, read over Vault's HTTP API (`GET /v1/<mount>/data/<path>`). The
 * token is never in the reference, only where to read it from, and it is read again on every read, since Vault
 * Agent and CSI mounts renew it in place. No SDK: the API is one GET.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { fieldOf, trimSecret } from './secret-bytes.js';
import { checkTimeout, readWithin } from './secret-deadline.js';
import { secretErrors } from './secret-errors.js';
import type { SecretSource } from './secret-source.js';

export interface VaultKvOptions {
  /** CA certificates (PEM) that sign Vault's server certificate. Default: Node's root certificates. */
  readonly ca?: string | Buffer;
}

const MAX_ANSWER_BYTES = 256 * 1024;

export function vaultKvSecret(
  url: URL,
  readToken: SecretSource,
  options: VaultKvOptions = {},
  timeoutMs?: number,
): SecretSource {
  const match = /^\/([^/]+)\/data\/(.+)$/.exec(url.pathname);
  if (match === null) throw new TypeError('vault-kv:// names host:port/<mount>/data/<path>#field');
  const field = decodeURIComponent(url.hash.slice(1));
  if (field.length === 0) throw new TypeError('vault-kv:// names the field to read after #');
  const plainHttp = url.searchParams.get('scheme') === 'http';
  if (plainHttp && !isLoopback(url.hostname)) {
    // A token and a password in clear text over a network: only Vault's dev server on this host speaks http.
    throw new TypeError('vault-kv:// takes scheme=http only for a Vault on this host (127.0.0.1, localhost)');
  }
  const version = url.searchParams.get('version');
  if (version !== null && !/^[1-9][0-9]{0,9}$/.test(version)) {
    throw new TypeError('vault-kv:// version is a positive integer');
  }
  const namespace = url.searchParams.get('namespace');
  const ms = checkTimeout(timeoutMs);
  const path = `/v1/${match[1]}/data/${match[2]}${version === null ? '' : `?version=${version}`}`;
  const reference = `vault-kv://${url.host}${url.pathname}#${field}`;
  const port = url.port === '' ? 8200 : Number(url.port);
  return {
    reference,
    read: (readOptions) =>
      readWithin(reference, ms, readOptions, async (signal) => {
        const token = await readToken.read({ signal });
        let answer: { status: number; body: Buffer };
        try {
          answer = await get(plainHttp, {
            host: url.hostname.replace(/^\[|\]$/g, ''),
            port,
            path,
            signal,
            headers: {
              'X-Vault-Token': token.toString('utf8'),
              ...(namespace === null ? {} : { 'X-Vault-Namespace': namespace }),
            },
            ...(options.ca === undefined ? {} : { ca: options.ca }),
          });
        } catch (cause) {
          if (signal.aborted) throw cause;
          throw secretErrors.unavailable(reference, 'Vault did not answer', cause);
        } finally {
          token.fill(0);
        }
        return trimSecret(reference, fieldFrom(reference, answer));
      }),
  };
}

/** Vault's documented statuses: 403 forbidden (or a bad token), 404 no such path, 429/5xx standby, sealed, busy. */
function fieldFrom(reference: string, { status, body }: { status: number; body: Buffer }): Buffer {
  if (status === 403 || status === 401) throw secretErrors.denied(reference);
  if (status !== 200 && status !== 404) {
    body.fill(0);
    throw secretErrors.unavailable(reference, `Vault answered HTTP ${status}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    if (status === 404) throw secretErrors.notFound(reference, 'no such secret or version');
    throw secretErrors.unavailable(reference, 'Vault answered with something other than JSON');
  } finally {
    body.fill(0);
  }
  const data = (
    parsed as { data?: { data?: unknown; metadata?: { deletion_time?: unknown; destroyed?: unknown } } }
  )?.data;
  if (typeof data !== 'object' || data === null) {
    if (status === 404) throw secretErrors.notFound(reference, 'no such secret or version');
    throw secretErrors.unavailable(reference, 'the answer is not a KV version 2 read');
  }
  // A deleted or destroyed version answers 404 with its metadata; a path never written, 404 without.
  if (data.metadata?.destroyed === true || (data.data === null && data.metadata?.deletion_time)) {
    throw secretErrors.disabled(reference);
  }
  if (status === 404) throw secretErrors.notFound(reference, 'no such secret or version');
  return fieldOf(reference, data.data, fieldName(reference));
}

function fieldName(reference: string): string {
  return reference.slice(reference.lastIndexOf('#') + 1);
}

function get(
  plainHttp: boolean,
  options: https.RequestOptions & { signal: AbortSignal },
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = (plainHttp ? http : https).request({ ...options, method: 'GET' }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          request.destroy(new Error('the answer is too large'));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => {
        const body = Buffer.concat(chunks);
        for (const chunk of chunks) chunk.fill(0);
        resolve({ status: response.statusCode ?? 0, body });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));
}
