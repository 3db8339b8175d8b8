import { readFile } from 'node:fs/promises';
import { PhiCacheError } from '../../errors.js';
import type { SecretSource, VaultAuthConfig } from './vault-uri.js';

/** One unauthenticated call to Vault (login, renew): the client's transport, without the session. */
export type VaultAuthCall = (
  path: string,
  body: Record<string, unknown>,
  token: string | undefined,
  signal: AbortSignal,
) => Promise<unknown>;

/**
 * The Vault token phicache presents, and how it gets a new one. A static token is read from its source; when Vault
 * refuses it and the source is a file (a Vault Agent sink rewrites it), the file is read again. An AppRole token
 * comes from a login; it is renewed once two thirds of its lease have passed, and replaced by a fresh login when
 * renewal fails or Vault refuses it (an expired or revoked token answers 403). Concurrent calls share one login.
 */
export class VaultSession {
  readonly #auth: VaultAuthConfig;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #call: VaultAuthCall;
  readonly #now: () => number;
  #token: string | undefined;
  #renewAt = Number.POSITIVE_INFINITY;
  #renewable = false;
  #pending: Promise<string> | undefined;

  constructor(
    auth: VaultAuthConfig,
    env: Readonly<Record<string, string | undefined>>,
    call: VaultAuthCall,
    now: () => number,
  ) {
    this.#auth = auth;
    this.#env = env;
    this.#call = call;
    this.#now = now;
  }

  /** The token to present now. */
  async token(signal: AbortSignal): Promise<string> {
    if (this.#token !== undefined && this.#now() < this.#renewAt) return this.#token;
    return this.#once(() => (this.#token === undefined ? this.#obtain(signal) : this.#renew(signal)));
  }

  /**
   * Vault refused `refused`: true when a different token is now at hand and the call is worth one more try. A
   * static token from the environment cannot change, so there is nothing to retry with.
   */
  async replace(refused: string, signal: AbortSignal): Promise<boolean> {
    if (this.#token !== refused) return this.#token !== undefined;
    if (this.#auth.kind === 'token' && this.#auth.token.kind === 'env') return false;
    this.#token = undefined;
    return (await this.#once(() => this.#obtain(signal))) !== refused;
  }

  #once(run: () => Promise<string>): Promise<string> {
    this.#pending ??= run().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #obtain(signal: AbortSignal): Promise<string> {
    if (this.#auth.kind === 'token') {
      this.#token = await readSource(this.#auth.token, this.#env, 'Vault token');
      return this.#token;
    }
    const { mount, roleId, secretId } = this.#auth;
    const answer = await this.#call(
      `auth/${mount}/login`,
      {
        role_id: await readSource(roleId, this.#env, 'AppRole role id'),
        secret_id: await readSource(secretId, this.#env, 'AppRole secret id'),
      },
      undefined,
      signal,
    );
    return this.#adopt(answer);
  }

  async #renew(signal: AbortSignal): Promise<string> {
    if (this.#renewable) {
      try {
        return this.#adopt(await this.#call('auth/token/renew-self', {}, this.#token, signal));
      } catch (error) {
        // A token past its maximum TTL or revoked cannot be renewed; only an outage is worth reporting as such.
        if (error instanceof PhiCacheError && error.code === 'ERR_KEY_SERVICE_UNAVAILABLE') throw error;
      }
    }
    return this.#obtain(signal);
  }

  #adopt(answer: unknown): string {
    const auth = (answer as { auth?: unknown } | null)?.auth as
      | { client_token?: unknown; lease_duration?: unknown; renewable?: unknown }
      | undefined;
    if (typeof auth?.client_token !== 'string' || auth.client_token === '') {
      throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'Vault answered a login without a token');
    }
    const leaseSeconds = typeof auth.lease_duration === 'number' ? auth.lease_duration : 0;
    this.#token = auth.client_token;
    this.#renewable = auth.renewable === true;
    // Renew at two thirds of the lease, leaving a third for a slow or throttled renewal to still land in time.
    this.#renewAt = leaseSeconds > 0 ? this.#now() + (leaseSeconds * 1000 * 2) / 3 : Number.POSITIVE_INFINITY;
    return this.#token;
  }
}

async function readSource(
  source: SecretSource,
  env: Readonly<Record<string, string | undefined>>,
  what: string,
): Promise<string> {
  if (source.kind === 'env') {
    const value = env[source.name]?.trim();
    if (value) return value;
    throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', `the ${what} is not set: ${source.name} is empty`, {
      hint: `Set the environment variable ${source.name}, or name another source in the key URI.`,
    });
  }
  let text: string;
  try {
    text = await readFile(source.path, 'utf8');
  } catch (cause) {
    throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', `the ${what} file ${source.path} cannot be read`, {
      cause,
      hint: 'Check that the file exists and that this process may read it.',
    });
  }
  const value = text.trim();
  if (value === '') {
    throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', `the ${what} file ${source.path} is empty`);
  }
  return value;
}
