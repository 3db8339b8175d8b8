import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PhiCacheError } from '../../errors.js';
import { integerOption } from '../../options.js';
import { DeadlineTracker } from '../../runtime/deadlines.js';
import {
  assertWriteOptions,
  type CacheStore,
  type StoredEntry,
  type StoreWriteOptions,
} from '../cache-store.js';
import {
  type BreakerState,
  CircuitBreaker,
  type CircuitBreakerOptions,
  resolveBreakerOptions,
} from './circuit-breaker.js';
import { type RedisArg, type RedisCommands, RedisReplyError } from './commands.js';
import {
  DELETE_IF_SAME_SCRIPT,
  DELETE_IF_TAGGED_SCRIPT,
  frame,
  frameCarries,
  INDEX_SCRIPT,
  MAX_TAGS,
  READ_SCRIPT,
  REPLACE_IF_SAME_SCRIPT,
  RETIRE_SCRIPT,
  scoreBytes,
  tagFingerprint,
  unframe,
  WRITE_SCRIPT,
} from './tag-index.js';

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
   * a Redis must use the same value, and changing it moves keys to other shards: entries written before the
   * change cannot be purged by tag until they expire, so change it only on an empty cache. Default 8; 1..1024.
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
 * Index members live this long past their entry's expiry. Their scores come from the writers' clocks (scripts do
 * not call TIME, which a least-privilege ACL user lacks), so this is also the clock skew between app instances
 * that the index tolerates before it drops a member of a live entry.
 */
const INDEX_MARGIN_MS = 60_000;
const PURGE_BATCH = 500;

interface Script {
  readonly source: string;
  readonly sha1: string;
}

const script = (source: string): Script => ({
  source,
  sha1: createHash('sha1').update(source).digest('hex'),
});
const INDEX = script(INDEX_SCRIPT);
const READ = script(READ_SCRIPT);
const DELETE_IF_TAGGED = script(DELETE_IF_TAGGED_SCRIPT);
const DELETE_IF_SAME = script(DELETE_IF_SAME_SCRIPT);
const RETIRE = script(RETIRE_SCRIPT);
const REPLACE_IF_SAME = script(REPLACE_IF_SAME_SCRIPT);
const WRITE = script(WRITE_SCRIPT);

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
  /** Whether every key is on the one server these commands speak to; learnt at the first tagged write. */
  #oneServer: boolean | undefined;
  #closed = false;

  constructor(commands: RedisCommands, options: RedisStoreOptions = {}) {
    super();
    if (typeof commands !== 'object' || commands === null || typeof commands.get !== 'function') {
      throw new TypeError('RedisStore needs RedisCommands: use nodeRedisCommands() or ioredisCommands()');
    }
    const commandTimeoutMs = integerOption(
      'redis store',
      'commandTimeoutMs',
      options.commandTimeoutMs ?? 500,
      1,
      60_000,
    );
    const sweepIntervalMs = integerOption(
      'redis store',
      'sweepIntervalMs',
      options.sweepIntervalMs ?? Math.min(100, Math.max(1, Math.round(commandTimeoutMs / 10))),
      1,
      commandTimeoutMs,
    );
    this.options = Object.freeze({
      commandTimeoutMs,
      sweepIntervalMs,
      tagIndexShards: integerOption('redis store', 'tagIndexShards', options.tagIndexShards ?? 8, 1, 1024),
      maxEntryBytes: integerOption(
        'redis store',
        'maxEntryBytes',
        options.maxEntryBytes ?? 1024 * 1024,
        1,
        512 * 1024 * 1024,
      ),
      purgeConcurrency: integerOption(
        'redis store',
        'purgeConcurrency',
        options.purgeConcurrency ?? 32,
        1,
        1024,
      ),
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

  async getEntry(key: string): Promise<StoredEntry | undefined> {
    let raw: Buffer | null;
    try {
      raw = await this.#run('GET', () => this.#commands.get(key));
    } catch (error) {
      throw unavailable('GET', error);
    }
    if (raw === null) return undefined;
    const framed = raw;
    return { value: unframe(framed), carries: (tags) => frameCarries(framed, tags) };
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

  async deleteIfSame(key: string, value: Buffer): Promise<boolean> {
    try {
      return (await this.#script(DELETE_IF_SAME, [key], [value])) === 1;
    } catch (error) {
      throw unavailable('deleteIfSame', error);
    }
  }

  async replaceIfSame(key: string, seen: Buffer, next: Buffer, ttlMs?: number): Promise<boolean> {
    if (next.length > this.options.maxEntryBytes) {
      throw new PhiCacheError('ERR_VALUE_TOO_LARGE', `value of ${next.length} bytes exceeds maxEntryBytes`);
    }
    if (ttlMs !== undefined) assertWriteOptions({ ttlMs });
    const args = ttlMs === undefined ? [seen, next] : [seen, next, String(ttlMs)];
    try {
      return (await this.#script(REPLACE_IF_SAME, [key], args)) === 1;
    } catch (error) {
      throw unavailable('replaceIfSame', error);
    }
  }

  /** SCAN (never KEYS) on every master, each page under the command deadline. */
  async *scan(prefix: string): AsyncIterable<string> {
    const match = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
    for (const node of this.#commands.masters()) {
      let cursor = '0';
      do {
        let page: { cursor: string; keys: Buffer[] };
        try {
          page = await this.#run('SCAN', () => node.scan(cursor, match, 1000));
        } catch (error) {
          throw unavailable('SCAN', error);
        }
        cursor = page.cursor;
        for (const key of page.keys) yield key.toString('latin1');
      } while (cursor !== '0');
    }
  }

  /** Pages through every index shard of the tag (score order, a page of PURGE_BATCH members per script call). */
  async *keysByTag(tag: string): AsyncIterable<string> {
    for (const shard of this.#shardKeys(tag)) {
      let after = '';
      for (;;) {
        const floor = String(Date.now() - INDEX_MARGIN_MS);
        let page: IndexMember[];
        try {
          page = members(await this.#script(READ, [shard], [after, String(PURGE_BATCH), floor]));
        } catch (error) {
          throw unavailable('keysByTag', error);
        }
        for (const entry of page)
          yield typeof entry.member === 'string' ? entry.member : entry.member.toString('latin1');
        if (page.length < PURGE_BATCH) break;
        after = page[page.length - 1]!.score;
      }
    }
  }

  /**
   * Pages through every index shard of the tag and deletes each entry whose current write carries the tag (one
   * script per member, in the member's own slot). Entries written to the tag while the purge runs are purged too or
   * stay indexed; none is left unindexed. Counts only live deletions.
   */
  async deleteByTag(tag: string): Promise<number> {
    try {
      const fingerprint = tagFingerprint(tag);
      const counts = await Promise.all(
        this.#shardKeys(tag).map((shard) => this.#purgeShard(shard, fingerprint)),
      );
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
    const tags = options.tags === undefined ? [] : [...new Set(options.tags)];
    if (tags.length > MAX_TAGS) throw new RangeError(`a redis store entry carries at most ${MAX_TAGS} tags`);
    try {
      if (tags.length > 0 && this.#onOneServer()) {
        const shard = shardOf(key, this.options.tagIndexShards);
        const written = await this.#script(
          WRITE,
          [key, ...tags.map((tag) => shardKey(tag, shard))],
          [
            String(options.ttlMs),
            String(INDEX_MARGIN_MS),
            String(Date.now()),
            onlyIfAbsent ? 'NX' : '',
            value,
            ...tags.map(tagFingerprint),
          ],
        );
        return written === 1;
      }
      // The index first: were the entry written first and the index write lost, no purge could reach the entry.
      // The shards of different tags are in different slots, so their updates go out together, not one by one;
      // the entry's frame then records the score each shard gave this write.
      let scores: number[] = [];
      if (tags.length > 0) {
        const shard = shardOf(key, this.options.tagIndexShards);
        const args = [key, String(options.ttlMs), String(INDEX_MARGIN_MS), String(Date.now())];
        const replies = await Promise.all(
          tags.map((tag) => this.#script(INDEX, [shardKey(tag, shard)], args)),
        );
        scores = replies.map(indexScore);
      }
      const framed = frame(value, tags, scores);
      return await this.#run('SET', () => this.#commands.set(key, framed, options.ttlMs, onlyIfAbsent));
    } catch (error) {
      throw unavailable('SET', error);
    }
  }

  /**
   * Pages through one shard in score order. Each member's entry is deleted when its current write carries the tag;
   * the member leaves the index only when that write was the one the member stands for (see tag-index.ts), so one
   * whose newer write may still be on its way stays indexed for the next purge.
   */
  async #purgeShard(shard: string, fingerprint: Buffer): Promise<number> {
    let deleted = 0;
    let after = '';
    for (;;) {
      const floor = String(Date.now() - INDEX_MARGIN_MS);
      const page = members(await this.#script(READ, [shard], [after, String(PURGE_BATCH), floor]));
      if (page.length === 0) return deleted;
      const { count, retire } = await this.#deleteMembers(page, fingerprint);
      deleted += count;
      for (let i = 0; i < retire.length; i += PURGE_BATCH) {
        const args = retire.slice(i, i + PURGE_BATCH).flatMap((m) => [m.member, m.score]);
        await this.#script(RETIRE, [shard], args);
      }
      if (page.length < PURGE_BATCH) return deleted;
      after = page[page.length - 1]!.score;
    }
  }

  async #deleteMembers(
    page: readonly IndexMember[],
    fingerprint: Buffer,
  ): Promise<{ count: number; retire: IndexMember[] }> {
    let next = 0;
    let count = 0;
    const retire: IndexMember[] = [];
    const worker = async () => {
      while (next < page.length) {
        const entry = page[next++]!;
        const reply = await this.#script(
          DELETE_IF_TAGGED,
          [entry.member],
          [fingerprint, scoreBytes(Number(entry.score))],
        );
        if (reply === 1 || reply === 2) count += 1;
        if (reply === 2) retire.push(entry);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.purgeConcurrency, page.length) }, worker));
    return { count, retire };
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

  /**
   * True on a standalone server or a Sentinel's master: the commands object is its own only master. A Cluster's
   * masters are other objects, and so are those of a wrapper around the commands, which keeps the step by step path.
   */
  #onOneServer(): boolean {
    if (this.#oneServer === undefined) {
      const masters = this.#commands.masters();
      this.#oneServer = masters.length === 1 && masters[0] === this.#commands;
    }
    return this.#oneServer;
  }

  #shardKeys(tag: string): string[] {
    const shards = this.options.tagIndexShards;
    return Array.from({ length: shards }, (_, shard) => shardKey(tag, shard));
  }
}

interface IndexMember {
  /** The entry key, as the reply gave it: a Buffer (node-redis) or a string (ioredis; keys are always UTF-8). */
  readonly member: Buffer | string;
  /** The member's score as Redis printed it, passed back verbatim. */
  readonly score: string;
}

/** A READ_SCRIPT reply, `member, score, ...`, as pairs. */
function members(reply: unknown): IndexMember[] {
  if (!Array.isArray(reply) || reply.length % 2 !== 0) {
    throw new RedisReplyError('unexpected reply to the tag index read script');
  }
  const page: IndexMember[] = [];
  for (let i = 0; i < reply.length; i += 2) {
    const member: unknown = reply[i];
    const score: unknown = reply[i + 1];
    if (!(Buffer.isBuffer(member) || typeof member === 'string')) {
      throw new RedisReplyError('unexpected member in the tag index read reply');
    }
    page.push({ member, score: String(score) });
  }
  return page;
}

/** The INDEX_SCRIPT reply: the member's new score, an integer. */
function indexScore(reply: unknown): number {
  if (typeof reply !== 'number' || !Number.isSafeInteger(reply)) {
    throw new RedisReplyError('unexpected reply to the tag index script');
  }
  return reply;
}

function shardKey(tag: string, shard: number): string {
  return `${tag}:${shard}`;
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
