import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PhiCacheError } from '../../errors.js';
import { assertWriteOptions, type CacheStore, type StoreWriteOptions } from '../cache-store.js';
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  resolveBreakerOptions,
} from './circuit-breaker.js';
import { type RedisArg, type RedisCommands, RedisReplyError } from './commands.js';
import { DeadlineTracker } from './deadlines.js';

export interface RedisStoreOptions {
  /**
   * Deadline of every Redis command, in ms: a command unanswered by then rejects with `ERR_STORE_UNAVAILABLE`
   * (the cache turns that into a miss or a dropped write). Default 500; 1..60,000.
   */
  readonly commandTimeoutMs?: number;
  /**
   * How often in-flight commands are checked against their deadline, in ms; a late command rejects at most this
   * much after its deadline. Default a tenth of `commandTimeoutMs`, at least 1 and at most 100; 1..commandTimeoutMs.
   */
  readonly sweepIntervalMs?: number;
  /** When to stop calling Redis at all, and when to try again. */
  readonly breaker?: CircuitBreakerOptions;
  /**
   * Each tag index is split into this many sorted sets named `<tag>:<n>`, so a tag carried by every entry of a
   * tenant does not pin the tenant's writes to one slot. deleteByTag reads every shard. All instances sharing
   * a Redis must use the same value; raising it later is safe, lowering it strands entries. Default 8; 1..1024.
   */
  readonly tagIndexShards?: number;
  /** Largest value accepted, in bytes. Default 1 MiB; 1..512 MiB. */
  readonly maxEntryBytes?: number;
  /** How many deletions one deleteByTag keeps in flight. Default 32; 1..1024. */
  readonly purgeConcurrency?: number;
}

/** Typed events for operators. They carry command names and timings, never keys or values. */
export interface RedisStoreEvents {
  /** The breaker opened: calls fail at once until a probe after the cool-down succeeds. */
  'breaker-open': [{ failures: number; cooldownMs: number }];
  /** The breaker closed again; `openMs` is how long calls were refused or probed. */
  'breaker-close': [{ openMs: number }];
  /** A command passed its deadline and was rejected. */
  'command-timeout': [{ command: string; elapsedMs: number; deadlineMs: number }];
}

interface ResolvedOptions {
  readonly commandTimeoutMs: number;
  readonly sweepIntervalMs: number;
  readonly tagIndexShards: number;
  readonly maxEntryBytes: number;
  readonly purgeConcurrency: number;
}

/**
 * Every stored value is framed as `0xF1 || write id (8 bytes) || envelope`. A tag index member is
 * `write id || key`, and deleteByTag deletes a key only while it still holds that write: an entry overwritten
 * since (with other tags or none) is left alone, without the store ever reading an entry's old tags.
 */
const FRAME_MAGIC = 0xf1;
const WRITE_ID_BYTES = 8;
const FRAME_BYTES = 1 + WRITE_ID_BYTES;
/**
 * Index members live this long past their entry's expiry. Their scores come from the writers' clocks (scripts do
 * not call TIME, which a least-privilege ACL user lacks), so this is also the clock skew between app instances
 * that the index tolerates before it drops a member of a live entry.
 */
const INDEX_MARGIN_MS = 60_000;
const PURGE_BATCH = 500;

/**
 * Adds member `ARGV[1]` to the tag index shard `KEYS[1]` with its expiry (`ARGV[4]` now + `ARGV[2]` ttl) as
 * score, drops members expired more than `ARGV[3]` ago, and keeps the index alive at least as long as its newest
 * member: the add and the PEXPIRE in one atomic step, so no index ever exists without a TTL and an index holds
 * live members only. One key, so one slot.
 */
const INDEX_SCRIPT = `local ttl = tonumber(ARGV[2])
local margin = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - margin)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl + margin then redis.call('PEXPIRE', KEYS[1], ttl + margin) end
return 1`;

/** Deletes `KEYS[1]` only while it still holds the write whose frame header is `ARGV[1]`; 1 when it did. */
const DELETE_IF_WRITE_SCRIPT = `if redis.call('GETRANGE', KEYS[1], 0, ${FRAME_BYTES - 1}) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

interface Script {
  readonly source: string;
  readonly sha1: string;
}

const script = (source: string): Script => ({
  source,
  sha1: createHash('sha1').update(source).digest('hex'),
});
const INDEX = script(INDEX_SCRIPT);
const DELETE_IF_WRITE = script(DELETE_IF_WRITE_SCRIPT);

/**
 * The CacheStore on Redis (standalone, Sentinel, Cluster) over the narrow `RedisCommands` interface.
 *
 * - Every write carries PX, and tag indexes get their TTL in the same script that fills them (PHI-TTL-01).
 * - No KEYS; multi-key commands and scripts touch one slot only; no hash tag is added to any key.
 * - Each command has a deadline, enforced by one sweeping timer rather than a timer per command, and a circuit
 *   breaker fails calls at once while Redis is down. Failures reject with `ERR_STORE_UNAVAILABLE`.
 */
export class RedisStore extends EventEmitter<RedisStoreEvents> implements CacheStore {
  readonly name = 'redis';
  readonly options: Readonly<ResolvedOptions & { breaker: ReturnType<typeof resolveBreakerOptions> }>;
  readonly #commands: RedisCommands;
  readonly #breaker: CircuitBreaker;
  readonly #deadlines: DeadlineTracker;
  readonly #writerId = randomBytes(4);
  #writeCount = 0;
  #closed = false;

  constructor(commands: RedisCommands, options: RedisStoreOptions = {}) {
    super();
    if (typeof commands !== 'object' || commands === null || typeof commands.get !== 'function') {
      throw new TypeError('RedisStore needs RedisCommands: use nodeRedisCommands() or ioredisCommands()');
    }
    const commandTimeoutMs = integer('commandTimeoutMs', options.commandTimeoutMs ?? 500, 1, 60_000);
    const sweepIntervalMs = integer(
      'sweepIntervalMs',
      options.sweepIntervalMs ?? Math.min(100, Math.max(1, Math.round(commandTimeoutMs / 10))),
      1,
      commandTimeoutMs,
    );
    this.options = Object.freeze({
      commandTimeoutMs,
      sweepIntervalMs,
      tagIndexShards: integer('tagIndexShards', options.tagIndexShards ?? 8, 1, 1024),
      maxEntryBytes: integer('maxEntryBytes', options.maxEntryBytes ?? 1024 * 1024, 1, 512 * 1024 * 1024),
      purgeConcurrency: integer('purgeConcurrency', options.purgeConcurrency ?? 32, 1, 1024),
      breaker: resolveBreakerOptions(options.breaker),
    });
    this.#commands = commands;
    const now = () => performance.now();
    this.#breaker = new CircuitBreaker(this.options.breaker, now, {
      opened: (failures) =>
        this.emit('breaker-open', { failures, cooldownMs: this.options.breaker.cooldownMs }),
      closed: (openMs) => this.emit('breaker-close', { openMs: Math.round(openMs) }),
    });
    this.#deadlines = new DeadlineTracker(
      commandTimeoutMs,
      sweepIntervalMs,
      ({ command, elapsedMs }) => {
        this.#breaker.failure();
        this.emit('command-timeout', { command, elapsedMs, deadlineMs: commandTimeoutMs });
        return new PhiCacheError(
          'ERR_STORE_UNAVAILABLE',
          `redis ${command} did not answer within ${commandTimeoutMs} ms`,
        );
      },
      now,
    );
  }

  /** `closed` while calls pass, `open` while they are refused, `half-open` while one probe is out. */
  get breakerState(): BreakerState {
    return this.#breaker.state;
  }

  /** Commands sent and not yet answered or timed out. */
  get inFlight(): number {
    return this.#deadlines.size;
  }

  async get(key: string): Promise<Buffer | undefined> {
    try {
      const raw = await this.#run('GET', () => this.#commands.get(key));
      return raw === null ? undefined : unframe(raw);
    } catch (error) {
      throw unavailable('GET', error);
    }
  }

  async set(key: string, value: Buffer, options: StoreWriteOptions): Promise<void> {
    await this.#write(key, value, options, false);
  }

  async add(key: string, value: Buffer, options: StoreWriteOptions): Promise<boolean> {
    return this.#write(key, value, options, true);
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.#run('DEL', () => this.#commands.del([key]))) > 0;
    } catch (error) {
      throw unavailable('DEL', error);
    }
  }

  /**
   * Reads each index shard in batches, deletes every member that still holds the indexed write (one script per
   * member, in the member's own slot), then removes the batch from the index. Entries added to the tag while
   * the purge runs are purged too or stay indexed; none is left unindexed. Counts only live deletions.
   */
  async deleteByTag(tag: string): Promise<number> {
    try {
      const counts = await Promise.all(this.#shardKeys(tag).map((shard) => this.#purgeShard(shard)));
      return counts.reduce((sum, count) => sum + count, 0);
    } catch (error) {
      throw unavailable('deleteByTag', error);
    }
  }

  /** Remaining ms, undefined when absent, and Infinity for a key someone stripped of its TTL (never written so). */
  async ttl(key: string): Promise<number | undefined> {
    let ms: number;
    try {
      ms = await this.#run('PTTL', () => this.#commands.pttl(key));
    } catch (error) {
      throw unavailable('PTTL', error);
    }
    if (ms === -2) return undefined;
    if (ms === -1) return Number.POSITIVE_INFINITY;
    return ms;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#deadlines.clear(new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the redis store was closed'));
    await this.#commands.close();
  }

  async #write(
    key: string,
    value: Buffer,
    options: StoreWriteOptions,
    onlyIfAbsent: boolean,
  ): Promise<boolean> {
    assertWriteOptions(options);
    if (!Buffer.isBuffer(value)) throw new TypeError('a store value is a Buffer');
    if (value.length > this.options.maxEntryBytes) {
      throw new PhiCacheError(
        'ERR_VALUE_TOO_LARGE',
        `value of ${value.length} bytes exceeds the redis store limit`,
      );
    }
    const framed = this.#frame(value);
    const tags = options.tags ?? [];
    try {
      // The index first: were the entry written first and the index write lost, no purge could reach the entry.
      if (tags.length > 0) {
        const member = Buffer.concat([framed.subarray(1, FRAME_BYTES), Buffer.from(key)]);
        const shard = shardOf(key, this.options.tagIndexShards);
        const args = [member, String(options.ttlMs), String(INDEX_MARGIN_MS), String(Date.now())];
        await Promise.all(
          tags.map((tag) => this.#script(INDEX, [shardKey(tag, shard, this.options.tagIndexShards)], args)),
        );
      }
      return await this.#run('SET', () => this.#commands.set(key, framed, options.ttlMs, onlyIfAbsent));
    } catch (error) {
      throw unavailable('SET', error);
    }
  }

  async #purgeShard(shard: string): Promise<number> {
    let deleted = 0;
    for (;;) {
      const members = await this.#run('ZRANGE', () => this.#commands.zrange(shard, 0, PURGE_BATCH - 1));
      if (members.length === 0) return deleted;
      deleted += await this.#deleteMembers(members);
      await this.#run('ZREM', () => this.#commands.zrem(shard, members));
      if (members.length < PURGE_BATCH) return deleted;
    }
  }

  async #deleteMembers(members: readonly Buffer[]): Promise<number> {
    let next = 0;
    let deleted = 0;
    const worker = async () => {
      while (next < members.length) {
        const member = members[next++]!;
        if (member.length <= WRITE_ID_BYTES) continue;
        const header = Buffer.allocUnsafe(FRAME_BYTES);
        header[0] = FRAME_MAGIC;
        member.copy(header, 1, 0, WRITE_ID_BYTES);
        const reply = await this.#script(DELETE_IF_WRITE, [member.subarray(WRITE_ID_BYTES)], [header]);
        if (reply === 1) deleted += 1;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(this.options.purgeConcurrency, members.length) }, worker),
    );
    return deleted;
  }

  /** EVALSHA, falling back to EVAL (which caches the script) when this server has not seen it yet. */
  async #script(s: Script, keys: readonly RedisArg[], args: readonly RedisArg[]): Promise<unknown> {
    try {
      return await this.#run('EVALSHA', () => this.#commands.evalsha(s.sha1, keys, args));
    } catch (error) {
      if (!(error instanceof RedisReplyError) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#run('EVAL', () => this.#commands.eval(s.source, keys, args));
    }
  }

  /** One command under the breaker and the deadline. A reply error proves the server is up, so it is no failure. */
  #run<T>(command: string, call: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the redis store is closed'));
    }
    if (!this.#breaker.allow()) {
      return Promise.reject(
        new PhiCacheError('ERR_STORE_UNAVAILABLE', `redis ${command} refused: the circuit breaker is open`),
      );
    }
    let sent: Promise<T>;
    try {
      sent = call();
    } catch (error) {
      sent = Promise.reject(error);
    }
    // One promise per command: the deadline, the breaker and the answer meet in these two callbacks.
    return new Promise<T>((resolve, reject) => {
      const pending = this.#deadlines.start(command, reject);
      sent.then(
        (value) => {
          if (!this.#deadlines.finish(pending)) return;
          this.#breaker.success();
          resolve(value);
        },
        (error: unknown) => {
          if (!this.#deadlines.finish(pending)) return;
          if (error instanceof RedisReplyError) this.#breaker.success();
          else this.#breaker.failure();
          reject(error);
        },
      );
    });
  }

  #frame(value: Buffer): Buffer {
    const framed = Buffer.allocUnsafe(FRAME_BYTES + value.length);
    framed[0] = FRAME_MAGIC;
    this.#writerId.copy(framed, 1);
    framed.writeUInt32BE(this.#writeCount, 5);
    this.#writeCount = (this.#writeCount + 1) >>> 0;
    value.copy(framed, FRAME_BYTES);
    return framed;
  }

  #shardKeys(tag: string): string[] {
    const shards = this.options.tagIndexShards;
    return Array.from({ length: shards }, (_, shard) => shardKey(tag, shard, shards));
  }
}

/** A value not framed by this store (written by something else) is passed on whole: the envelope parser refuses it. */
function unframe(raw: Buffer): Buffer {
  return raw.length >= FRAME_BYTES && raw[0] === FRAME_MAGIC ? raw.subarray(FRAME_BYTES) : raw;
}

function shardKey(tag: string, shard: number, shards: number): string {
  return shards === 1 ? tag : `${tag}:${shard}`;
}

/** FNV-1a: cheap and even enough to spread one tag's members over its shards. */
function shardOf(key: string, shards: number): number {
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** Every failure leaves the store as ERR_STORE_UNAVAILABLE; the cause says which command and why. */
function unavailable(operation: string, error: unknown): unknown {
  if (error instanceof PhiCacheError || error instanceof TypeError || error instanceof RangeError)
    return error;
  return new PhiCacheError('ERR_STORE_UNAVAILABLE', `redis ${operation} failed`, { cause: error });
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`redis store ${name} must be an integer in ${min}..${max}`);
  }
  return value;
}
