import { setTimeout as sleep } from 'node:timers/promises';
import { PhiCacheError } from '../../errors.js';
import { isTransient, unreadableAnswer, type VaultOperation, vaultError } from './vault-errors.js';
import type { VaultSession } from './vault-session.js';

export interface VaultRetry {
  /** Attempts per call, the first included. */
  readonly attempts: number;
  /** The first backoff's upper bound; each retry doubles it, up to `capMs`. */
  readonly baseMs: number;
  readonly capMs: number;
}

export const DEFAULT_VAULT_RETRY: VaultRetry = { attempts: 5, baseMs: 50, capMs: 1000 };

/** Vault answers are small JSON documents: anything larger is not an answer. */
const MAX_ANSWER_BYTES = 1 << 20;

export interface VaultTransportOptions {
  readonly origin: string;
  readonly namespace: string | undefined;
  /** Names the key in error messages. */
  readonly key: string;
  readonly retry: VaultRetry;
  readonly random: () => number;
}

/**
 * Vault's HTTP API over the platform's `fetch`, with the habits a key service needs: the caller's signal cancels
 * the request and any backoff; throttling, a sealed node and network failures are retried with full jitter while
 * the signal allows; a refused token is replaced once (AppRole re-login, token file re-read); every failure
 * leaves as one of the port's codes.
 */
export class VaultTransport {
  readonly #options: VaultTransportOptions;
  #session: VaultSession | undefined;

  constructor(options: VaultTransportOptions) {
    this.#options = options;
  }

  attach(session: VaultSession): void {
    this.#session = session;
  }

  /** An authenticated call: `GET` when `body` is undefined. Resolves to the answer's `data`. */
  async call(
    operation: VaultOperation,
    path: string,
    body: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const session = this.#session;
    if (session === undefined) throw new Error('VaultTransport used before a session was attached');
    let token = await session.token(signal);
    try {
      return dataOf(await this.send(operation, path, body, token, signal), operation, this.#options.key);
    } catch (error) {
      if (!(error instanceof PhiCacheError) || error.code !== 'ERR_KEY_ACCESS_DENIED') throw error;
      if (!(await session.replace(token, signal))) throw error;
      token = await session.token(signal);
      return dataOf(await this.send(operation, path, body, token, signal), operation, this.#options.key);
    }
  }

  /** One call with retries; resolves to the whole answer document. */
  async send(
    operation: VaultOperation,
    path: string,
    body: Record<string, unknown> | undefined,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<unknown> {
    const { retry, random } = this.#options;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.#once(operation, path, body, token, signal);
      if (outcome.ok) return outcome.answer;
      if (attempt >= retry.attempts || signal.aborted) throw outcome.error;
      // Full jitter spreads a fleet's retries apart; Vault's Retry-After, when it sends one, is a floor.
      const backoff = Math.min(retry.capMs, retry.baseMs * 2 ** (attempt - 1)) * random();
      try {
        await sleep(Math.min(retry.capMs, Math.max(backoff, outcome.retryAfterMs)), undefined, { signal });
      } catch {
        throw abandoned(operation, this.#options.key);
      }
    }
  }

  async #once(
    operation: VaultOperation,
    path: string,
    body: Record<string, unknown> | undefined,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<{ ok: true; answer: unknown } | { ok: false; error: PhiCacheError; retryAfterMs: number }> {
    const { origin, namespace, key } = this.#options;
    const headers: Record<string, string> = { 'X-Vault-Request': 'true' };
    if (token !== undefined) headers['X-Vault-Token'] = token;
    if (namespace !== undefined) headers['X-Vault-Namespace'] = namespace;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await fetch(`${origin}/v1/${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal,
        redirect: 'error',
      });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (cause) {
      if (signal.aborted) throw abandoned(operation, key);
      return {
        ok: false,
        retryAfterMs: 0,
        error: new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `Vault ${operation} on ${key} is unreachable`,
          {
            cause,
          },
        ),
      };
    }
    if (text.length > MAX_ANSWER_BYTES) throw unreadableAnswer(operation, key);
    let answer: unknown;
    try {
      answer = text === '' ? {} : JSON.parse(text);
    } catch {
      if (status >= 200 && status < 300) throw unreadableAnswer(operation, key);
      answer = {};
    }
    if (status >= 200 && status < 300) return { ok: true, answer };
    const error = vaultError(operation, status, errorsOf(answer), key);
    if (!isTransient(status)) throw error;
    const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
    return {
      ok: false,
      error,
      retryAfterMs: Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 0,
    };
  }
}

function errorsOf(answer: unknown): string[] {
  const errors = (answer as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string') : [];
}

function dataOf(answer: unknown, operation: VaultOperation, key: string): Record<string, unknown> {
  const data = (answer as { data?: unknown } | null)?.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw unreadableAnswer(operation, key);
  return data as Record<string, unknown>;
}

function abandoned(operation: VaultOperation, key: string): PhiCacheError {
  return new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `Vault ${operation} on ${key} was abandoned`);
}
