import { randomBytes } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import { integerOption } from '../options.js';
import { DeadlineTracker } from '../runtime/deadlines.js';
import { type RedisCommands, RedisReplyError } from '../store/redis/commands.js';
import { type CounterScript, FIXED_WINDOW_SCRIPT, SLIDING_WINDOW_SCRIPT } from './counter-scripts.js';
import type { CounterHit, CounterRequest, CounterStore } from './counter-store.js';

export interface RedisCountersOptions {
  /** Deadline of each counter step, in ms; past it the step fails as the store being down. Default 200; 1..60,000. */
  readonly commandTimeoutMs?: number;
}

/**
 * Counters in Redis (standalone, Sentinel or Cluster) over the same command bindings as RedisStore. Each request
 * is one Lua script on one key, so it is atomic and lands on one Cluster slot; keys carry no hash tag, so hot
 * identities spread over the shards. Every reply that is not a count (an error reply, a timeout, a refused
 * connection) rejects with `ERR_STORE_UNAVAILABLE`, never with anything that reads as "limited".
 */
export class RedisCounters implements CounterStore {
  readonly name = 'redis';
  readonly #commands: RedisCommands;
  readonly #deadlines: DeadlineTracker;
  #closed = false;

  constructor(commands: RedisCommands, options: RedisCountersOptions = {}) {
    if (typeof commands?.evalsha !== 'function') throw new TypeError('RedisCounters needs Redis commands');
    this.#commands = commands;
    const timeoutMs = integerOption(
      'RedisCounters',
      'commandTimeoutMs',
      options.commandTimeoutMs ?? 200,
      1,
      60_000,
    );
    this.#deadlines = new DeadlineTracker(
      timeoutMs,
      Math.max(1, Math.min(100, Math.floor(timeoutMs / 10))),
      ({ command }) =>
        new PhiCacheError('ERR_STORE_UNAVAILABLE', `redis ${command} did not answer within ${timeoutMs} ms`),
    );
  }

  async hit(request: CounterRequest): Promise<CounterHit> {
    if (this.#closed) throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the redis counters are closed');
    const reply =
      request.algorithm === 'fixed'
        ? await this.#eval(FIXED_WINDOW_SCRIPT, request.key, [String(request.windowMs)])
        : await this.#eval(SLIDING_WINDOW_SCRIPT, request.key, [
            String(request.now),
            String(request.windowMs),
            String(request.limit),
            // Unique per request, so two requests in the same millisecond are two members.
            `${request.now}:${randomBytes(8).toString('base64url')}`,
          ]);
    const [count, resetMs] = Array.isArray(reply) ? reply.map(Number) : [];
    if (!Number.isSafeInteger(count) || !Number.isFinite(resetMs)) {
      throw new PhiCacheError(
        'ERR_STORE_UNAVAILABLE',
        'redis answered the counter script with something else',
      );
    }
    return { count: count!, resetMs: Math.max(0, resetMs!) };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#deadlines.clear(new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the redis counters are closed'));
  }

  async #eval(script: CounterScript, key: string, args: string[]): Promise<unknown> {
    try {
      try {
        return await this.#deadlines.track('EVALSHA', this.#commands.evalsha(script.sha1, [key], args));
      } catch (error) {
        if (!(error instanceof RedisReplyError) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.#deadlines.track('EVAL', this.#commands.eval(script.source, [key], args));
      }
    } catch (error) {
      if (error instanceof PhiCacheError) throw error;
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'redis refused the counter script', { cause: error });
    }
  }
}
