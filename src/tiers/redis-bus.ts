import { createHash } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import { integerOption } from '../options.js';
import { DeadlineTracker } from '../runtime/deadlines.js';
import { type RedisCommands, RedisReplyError } from '../store/redis/commands.js';
import {
  assertStoreName,
  generationShard,
  INSTANCE_ID,
  type Invalidation,
  type InvalidationBus,
  type InvalidationNotice,
} from './invalidation-bus.js';
import { noticeHead, parseNotice } from './notice-wire.js';

export interface RedisInvalidationBusOptions {
  /**
   * The pub/sub channel: `phc:` and then up to 200 of `[A-Za-z0-9._:-]`, inside the least-privilege ACL user's
   * `&phc:*`. Instances that share a channel share its generation counters. Default `phc:inv`.
   */
  readonly channel?: string;
  /** Deadline of each command (publish, counter reads), in ms. Default 500; 1..60,000. */
  readonly commandTimeoutMs?: number;
  /** Deadline for a subscription to start, in ms. Default 5,000; 1..120,000. */
  readonly subscribeTimeoutMs?: number;
}

/**
 * The generation counters of channel `phc:inv` are `phc:g:inv:0` .. `phc:g:inv:7`; a notice advances the one its
 * name hashes to.
 *
 * Why this shape and not one counter per tenant, user or session scope: the tier sees only HMAC names, and a
 * tag's entries sit under unrelated keys, so it cannot map an L1 entry to a scope, and polling one counter per
 * scope held in L1 would cost a read per scope per interval. Recovery therefore drops the whole L1 (short-lived
 * anyway, and missed notices are rare: a subscriber reconnecting). One global counter would do for that, but every
 * write in the fleet advances it, and one hot key lives in one slot, so on one master of a Cluster: eight counters
 * spread that load over the masters, and an instance reads all eight per check, which is cheap.
 */
export const GENERATION_SHARDS = 8;
const CHANNEL = /^phc:[A-Za-z0-9._:-]{1,200}$/;
/** A counter lives a day past its last notice (every key expires, PHI-TTL-01); a counter that expired reads 0. */
const COUNTER_TTL_MS = 86_400_000;

/**
 * INCR the counter `KEYS[1]`, renew its TTL (`ARGV[1]`) and PUBLISH on `ARGV[2]` the notice head `ARGV[3]`
 * completed with the new generation: one round trip, and a counter that moved always has its message sent.
 * One key, so one slot; PUBLISH inside a script reaches every node of a Cluster like any other PUBLISH.
 */
const PUBLISH_SCRIPT = `local generation = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PUBLISH', ARGV[2], ARGV[3] .. generation .. '}')
return generation`;
const PUBLISH_SHA1 = createHash('sha1').update(PUBLISH_SCRIPT).digest('hex');

/**
 * The InvalidationBus on Redis pub/sub over the narrow command interface: notices go out on one channel from a
 * script that also advances the generation counter, and arrive on the binding's subscriber connection. Pass the
 * same RedisCommands as the RedisStore it serves; the bus never closes them.
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly name = 'redis';
  readonly shards = GENERATION_SHARDS;
  readonly channel: string;
  readonly #commands: RedisCommands;
  readonly #subscribeTimeoutMs: number;
  readonly #deadlines: DeadlineTracker;
  readonly #counterKeys: readonly string[];

  constructor(commands: RedisCommands, options: RedisInvalidationBusOptions = {}) {
    if (typeof commands !== 'object' || commands === null || typeof commands.subscribe !== 'function') {
      throw new TypeError(
        'RedisInvalidationBus needs RedisCommands that can subscribe: use nodeRedisCommands() or ioredisCommands()',
      );
    }
    const channel = options.channel ?? 'phc:inv';
    // No braces: a hash tag in the channel would pin every counter to one slot.
    if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
      throw new TypeError('the invalidation channel is phc: and then 1..200 of [A-Za-z0-9._:-]');
    }
    this.channel = channel;
    const scope = channel.slice('phc:'.length);
    this.#counterKeys = Array.from({ length: GENERATION_SHARDS }, (_, i) => `phc:g:${scope}:${i}`);
    this.#commands = commands;
    const commandTimeoutMs = integerOption(
      'redis invalidation bus',
      'commandTimeoutMs',
      options.commandTimeoutMs ?? 500,
      1,
      60_000,
    );
    this.#subscribeTimeoutMs = integerOption(
      'redis invalidation bus',
      'subscribeTimeoutMs',
      options.subscribeTimeoutMs ?? 5_000,
      1,
      120_000,
    );
    // One sweeping timer for every command in flight, as in RedisStore: publishing is on the write path.
    this.#deadlines = new DeadlineTracker(
      commandTimeoutMs,
      Math.min(100, Math.max(1, Math.round(commandTimeoutMs / 10))),
      ({ command }) =>
        new PhiCacheError(
          'ERR_STORE_UNAVAILABLE',
          `redis ${command} did not answer within ${commandTimeoutMs} ms`,
        ),
    );
  }

  async publish(from: string, invalidation: Invalidation): Promise<InvalidationNotice> {
    if (typeof from !== 'string' || !INSTANCE_ID.test(from))
      throw new TypeError('an instance id is 1..64 of [A-Za-z0-9_-]');
    if (invalidation.kind !== 'key' && invalidation.kind !== 'tag')
      throw new TypeError('an invalidation is of a key or a tag');
    assertStoreName(invalidation.name, invalidation.kind);
    const shard = generationShard(invalidation.name, this.shards);
    const keys = [this.#counterKeys[shard]!];
    const args = [String(COUNTER_TTL_MS), this.channel, noticeHead(from, invalidation, shard)];
    let reply: unknown;
    try {
      try {
        reply = await this.#deadlines.track('EVALSHA', this.#commands.evalsha(PUBLISH_SHA1, keys, args));
      } catch (error) {
        if (!(error instanceof RedisReplyError) || !error.message.startsWith('NOSCRIPT')) throw error;
        reply = await this.#deadlines.track('EVAL', this.#commands.eval(PUBLISH_SCRIPT, keys, args));
      }
    } catch (error) {
      throw unavailable('publish', error);
    }
    const generation = Number(reply);
    if (!Number.isSafeInteger(generation) || generation < 1) {
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'redis returned no generation for an invalidation');
    }
    return { kind: invalidation.kind, name: invalidation.name, from, shard, generation };
  }

  async subscribe(listener: (notice: InvalidationNotice) => void): Promise<() => Promise<void>> {
    const subscribing = this.#commands.subscribe!(this.channel, (message) => {
      const notice = parseNotice(message, this.shards);
      if (notice !== undefined) listener(notice);
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no subscription within ${this.#subscribeTimeoutMs} ms`)),
        this.#subscribeTimeoutMs,
      );
    });
    try {
      return await Promise.race([subscribing, late]);
    } catch (error) {
      // A subscription that starts after all is ended at once, so it cannot deliver to a listener given up on.
      subscribing.then((end) => end()).catch(() => undefined);
      throw unavailable('subscribe', error);
    } finally {
      clearTimeout(timer);
    }
  }

  async generations(): Promise<readonly number[]> {
    let replies: (Buffer | null)[];
    try {
      replies = await Promise.all(
        this.#counterKeys.map((key) => this.#deadlines.track('GET', this.#commands.get(key))),
      );
    } catch (error) {
      throw unavailable('generations', error);
    }
    return replies.map((reply) => {
      if (reply === null) return 0;
      const value = Number(reply.toString());
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'a generation counter holds no counter');
      }
      return value;
    });
  }
}

function unavailable(operation: string, error: unknown): unknown {
  if (error instanceof PhiCacheError) return error;
  return new PhiCacheError('ERR_STORE_UNAVAILABLE', `redis invalidation ${operation} failed`, {
    cause: error,
  });
}
