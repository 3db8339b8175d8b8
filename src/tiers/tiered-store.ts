import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { integerOption } from '../options.js';
import { assertWriteOptions, type CacheStore, type StoreWriteOptions } from '../store/cache-store.js';
import { MemoryStore } from '../store/memory/memory-store.js';
import { FillFences } from './fill-fences.js';
import { GenerationWatch } from './generation-watch.js';
import {
  assertStoreName,
  type Invalidation,
  type InvalidationBus,
  type InvalidationNotice,
} from './invalidation-bus.js';

export interface TieredStoreOptions {
  /** The store every instance shares, such as a RedisStore. The tiered store owns it: `close()` closes it. */
  readonly l2: CacheStore;
  /** How instances tell each other what to drop: a RedisInvalidationBus over the same Redis as `l2`. */
  readonly bus: InvalidationBus;
  /**
   * Makes an empty L1. Called at start, and again each time L1 is dropped whole (the old one is closed).
   * Default: `() => new MemoryStore()`.
   */
  readonly l1?: () => CacheStore;
  /**
   * Longest life of an L1 entry, in ms. Pub/sub is at-most-once, so this is the bound on serving a value that
   * another instance already replaced or purged, should every other safeguard miss it. Default 5,000; 1..60,000.
   */
  readonly l1MaxTtlMs?: number;
  /** How often the generation counters are read, in ms. Default 1,000 (at most `l1MaxTtlMs`); 10..l1MaxTtlMs. */
  readonly generationCheckMs?: number;
  /**
   * How long a counted notice may take to arrive before it counts as missed, in ms. Default 100 (at most
   * `generationCheckMs`); 1..generationCheckMs.
   */
  readonly deliveryGraceMs?: number;
}

/** Typed events for operators. They carry reasons and causes, never names or values. */
export interface TieredStoreEvents {
  /** L1 was dropped whole: a notice was missed, a counter was reset, or the counters could not be read. */
  'l1-drop': [{ reason: 'missed' | 'reset' | 'unverified' }];
  /** The bus failed. A failed publish leaves other instances' copies to their L1 TTL. */
  'bus-error': [{ operation: 'publish' | 'generations'; cause: unknown }];
}

export interface TieredStoreStats {
  readonly l1Hits: number;
  readonly l1Misses: number;
  /** Notices from other instances. */
  readonly noticesReceived: number;
  readonly l1Drops: number;
}

/**
 * L1 entries filled from L2 carry this tag, in L1 only. Their real tags are sealed inside the envelope, out of
 * the tier's sight, so any tag purge must drop all of them; entries written here carry their real tags as well.
 */
const FILLED_FROM_L2 = 'phc:l1:filled';

const ignore = () => undefined;

/**
 * An L1 in process memory in front of a shared L2, kept coherent across instances:
 *
 * - get: L1, else L2, and the value goes into L1 for the shorter of its remaining L2 TTL and `l1MaxTtlMs`;
 * - set/add/delete/deleteByTag: L2 first, then L1, then a notice (hashed key or tag, instance id) that makes
 *   every other instance drop its copy;
 * - a missed notice shows as a generation counter that moved past the notices received, and L1 is dropped
 *   within `generationCheckMs + deliveryGraceMs`; when the counters cannot be read, L1 is dropped and bypassed
 *   until they can;
 * - L2 errors propagate, as the CacheStore contract says (PhiCache turns them into misses and dropped writes).
 */
export class TieredStore extends EventEmitter<TieredStoreEvents> implements CacheStore {
  readonly name = 'tiered';
  /** Random, per process: notices carry it so that an instance skips its own. */
  readonly instanceId = randomBytes(8).toString('hex');
  readonly options: Readonly<{ l1MaxTtlMs: number; generationCheckMs: number; deliveryGraceMs: number }>;
  readonly #l2: CacheStore;
  readonly #bus: InvalidationBus;
  readonly #makeL1: () => CacheStore;
  readonly #fences = new FillFences();
  readonly #watch: GenerationWatch;
  #l1: CacheStore;
  /** Whether L1 may serve and be filled: the counters were read, and every notice is accounted for or dropped. */
  #trusted = false;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;
  #stats = { l1Hits: 0, l1Misses: 0, noticesReceived: 0, l1Drops: 0 };

  private constructor(options: TieredStoreOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('TieredStore needs options');
    const { l2, bus } = options;
    if (typeof l2 !== 'object' || l2 === null || typeof l2.get !== 'function') {
      throw new TypeError('TieredStore needs `l2`, a CacheStore such as a RedisStore');
    }
    if (
      typeof bus !== 'object' ||
      bus === null ||
      typeof bus.publish !== 'function' ||
      typeof bus.subscribe !== 'function' ||
      !Number.isSafeInteger(bus.shards) ||
      bus.shards < 1
    ) {
      throw new TypeError('TieredStore needs `bus`, an InvalidationBus such as a RedisInvalidationBus');
    }
    if (options.l1 !== undefined && typeof options.l1 !== 'function') {
      throw new TypeError('TieredStore `l1` is a function that makes an empty CacheStore');
    }
    const l1MaxTtlMs = integerOption('tiered store', 'l1MaxTtlMs', options.l1MaxTtlMs ?? 5_000, 1, 60_000);
    const generationCheckMs = integerOption(
      'tiered store',
      'generationCheckMs',
      options.generationCheckMs ?? Math.min(1_000, l1MaxTtlMs),
      Math.min(10, l1MaxTtlMs),
      l1MaxTtlMs,
    );
    const deliveryGraceMs = integerOption(
      'tiered store',
      'deliveryGraceMs',
      options.deliveryGraceMs ?? Math.min(100, generationCheckMs),
      1,
      generationCheckMs,
    );
    this.options = Object.freeze({ l1MaxTtlMs, generationCheckMs, deliveryGraceMs });
    this.#l2 = l2;
    this.#bus = bus;
    this.#makeL1 = options.l1 ?? (() => new MemoryStore());
    this.#l1 = this.#makeL1();
    this.#watch = new GenerationWatch(bus.shards);
  }

  /**
   * Subscribes, reads the generation counters, and resolves when L1 may be used. Fails (leaving `l2` open) when
   * the bus cannot subscribe or the counters cannot be read.
   */
  static async create(options: TieredStoreOptions): Promise<TieredStore> {
    const store = new TieredStore(options);
    try {
      store.#unsubscribe = await store.#bus.subscribe((notice) => store.#onNotice(notice));
      store.#watch.settle(await store.#bus.generations());
    } catch (error) {
      await store.#unsubscribe?.().catch(ignore);
      await store.#l1.close().catch(ignore);
      throw error;
    }
    store.#trusted = true;
    store.#timer = setInterval(() => {
      store.checkGenerations().catch(ignore);
    }, store.options.generationCheckMs);
    store.#timer.unref();
    return store;
  }

  /** Counters since start. */
  stats(): TieredStoreStats {
    return { ...this.#stats };
  }

  async get(key: string): Promise<Buffer | undefined> {
    assertStoreName(key, 'key');
    if (this.#trusted) {
      const hit = await this.#l1.get(key);
      if (hit !== undefined) {
        this.#stats.l1Hits += 1;
        return hit;
      }
    }
    this.#stats.l1Misses += 1;
    if (!this.#trusted) return this.#l2.get(key);
    const fence = this.#fences.open(key);
    try {
      // The TTL rides along (pipelined, one round trip), so that L1 never outlives the L2 entry it copies.
      const [value, ttlMs] = await Promise.all([this.#l2.get(key), this.#l2.ttl(key).catch(ignore)]);
      if (value !== undefined && ttlMs !== undefined && !fence.broken && this.#trusted) {
        await this.#fill(key, value, Math.min(Math.floor(ttlMs), this.options.l1MaxTtlMs), [FILLED_FROM_L2]);
      }
      return value;
    } finally {
      this.#fences.close(key, fence);
    }
  }

  async set(key: string, value: Buffer, options: StoreWriteOptions): Promise<void> {
    await this.#write(key, value, options, async () => {
      await this.#l2.set(key, value, options);
      return true;
    });
  }

  async add(key: string, value: Buffer, options: StoreWriteOptions): Promise<boolean> {
    return this.#write(key, value, options, () => this.#l2.add(key, value, options));
  }

  async delete(key: string): Promise<boolean> {
    assertStoreName(key, 'key');
    this.#fences.breakKey(key);
    let deleted: boolean;
    try {
      deleted = await this.#l2.delete(key);
    } finally {
      // Whether or not L2 took it, the local copy goes: dropping a copy is never wrong.
      this.#fences.breakKey(key);
      await this.#dropKey(key);
    }
    // Announced even when L2 had nothing: an L2 that lost the entry (eviction, failover) may leave copies in L1s.
    await this.#announce({ kind: 'key', name: key });
    return deleted;
  }

  /** L2 deletes atomically; if it cannot, it compares and deletes. Either way every L1 copy of the key goes. */
  async deleteIfSame(key: string, value: Buffer): Promise<boolean> {
    assertStoreName(key, 'key');
    this.#fences.breakKey(key);
    let deleted: boolean;
    try {
      if (this.#l2.deleteIfSame !== undefined) deleted = await this.#l2.deleteIfSame(key, value);
      else deleted = (await this.#l2.get(key))?.equals(value) === true && (await this.#l2.delete(key));
    } finally {
      this.#fences.breakKey(key);
      await this.#dropKey(key);
    }
    if (deleted) await this.#announce({ kind: 'key', name: key });
    return deleted;
  }

  /** L2 replaces atomically (a re-encrypted entry, a rewrapped key record); every L1 copy of the key goes. */
  async replaceIfSame(key: string, seen: Buffer, next: Buffer, ttlMs?: number): Promise<boolean> {
    assertStoreName(key, 'key');
    if (this.#l2.replaceIfSame === undefined) return false;
    this.#fences.breakKey(key);
    let replaced: boolean;
    try {
      replaced = await this.#l2.replaceIfSame(key, seen, next, ttlMs);
    } finally {
      this.#fences.breakKey(key);
      await this.#dropKey(key);
    }
    if (replaced) await this.#announce({ kind: 'key', name: key });
    return replaced;
  }

  /** The shared tier's index: L1 holds copies of some of its keys. */
  keysByTag(tag: string): AsyncIterable<string> {
    if (this.#l2.keysByTag === undefined) throw new TypeError(`the ${this.#l2.name} store cannot list a tag`);
    return this.#l2.keysByTag(tag);
  }

  /** The shared tier's keys: L1 holds copies of some of them. */
  scan(prefix: string): AsyncIterable<string> {
    if (this.#l2.scan === undefined) throw new TypeError(`the ${this.#l2.name} store cannot be scanned`);
    return this.#l2.scan(prefix);
  }

  async deleteByTag(tag: string): Promise<number> {
    assertStoreName(tag, 'tag');
    this.#fences.breakAll();
    let deleted: number;
    try {
      deleted = await this.#l2.deleteByTag(tag);
    } finally {
      this.#fences.breakAll();
      await this.#dropTag(tag);
    }
    await this.#announce({ kind: 'tag', name: tag });
    return deleted;
  }

  /** L2's answer: it holds the entry of record. */
  async ttl(key: string): Promise<number | undefined> {
    assertStoreName(key, 'key');
    return this.#l2.ttl(key);
  }

  /** Unsubscribes, then closes L1 and L2. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#trusted = false;
    clearInterval(this.#timer);
    await this.#unsubscribe?.().catch(ignore);
    await this.#checking?.catch(ignore);
    this.#fences.breakAll();
    await this.#l1.close();
    await this.#l2.close();
  }

  /**
   * Reads the generation counters and drops L1 if a notice was missed. Runs every `generationCheckMs`; calling it
   * checks at once (concurrent calls share one check).
   */
  checkGenerations(): Promise<void> {
    this.#checking ??= this.#check().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    if (this.#closed) return;
    try {
      const current = await this.#bus.generations();
      if (this.#closed) return;
      if (!this.#watch.started) {
        // L1 was dropped and bypassed while unverified, so it is empty: counting starts again from here.
        this.#watch.settle(current);
        this.#trusted = true;
        return;
      }
      let verdict = this.#watch.judge(current);
      if (verdict === 'missing') {
        // Counted by the server and not here yet may still be on its way (or be this instance's own publish).
        await new Promise((resolve) => setTimeout(resolve, this.options.deliveryGraceMs));
        if (this.#closed) return;
        verdict = this.#watch.judge(current);
      }
      if (verdict !== 'complete') this.#dropL1(verdict === 'reset' ? 'reset' : 'missed');
      this.#watch.settle(current);
    } catch (cause) {
      this.emit('bus-error', { operation: 'generations', cause });
      if (this.#trusted) {
        this.#trusted = false;
        this.#watch.stop();
        this.#dropL1('unverified');
      }
    }
  }

  async #write(
    key: string,
    value: Buffer,
    options: StoreWriteOptions,
    write: () => Promise<boolean>,
  ): Promise<boolean> {
    assertWriteOptions(options);
    assertStoreName(key, 'key');
    for (const tag of options.tags ?? []) assertStoreName(tag, 'tag');
    this.#fences.breakKey(key);
    const fence = this.#fences.open(key);
    let written: boolean;
    try {
      written = await write();
    } catch (error) {
      this.#fences.close(key, fence);
      this.#fences.breakKey(key);
      await this.#dropKey(key);
      throw error;
    }
    this.#fences.close(key, fence);
    // An add that lost changed nothing in L2: nothing to copy, nothing to announce.
    if (!written) return false;
    // Operations on this key that overlapped this write may have reached L2 in either order: none of them fills,
    // and if one broke this write's fence, the key is dropped here rather than guessed.
    this.#fences.breakKey(key);
    if (fence.broken || !this.#trusted) await this.#dropKey(key);
    else
      await this.#fill(key, value, Math.min(options.ttlMs, this.options.l1MaxTtlMs), [
        ...(options.tags ?? []),
      ]);
    await this.#announce({ kind: 'key', name: key });
    return true;
  }

  /** L1 is a copy: a value it refuses (too large for it, say) is simply not copied. */
  async #fill(key: string, value: Buffer, ttlMs: number, tags: string[]): Promise<void> {
    if (ttlMs < 1) return;
    try {
      await this.#l1.set(key, value, { ttlMs, tags });
    } catch {
      await this.#dropKey(key);
    }
  }

  async #dropKey(key: string): Promise<void> {
    await this.#l1.delete(key).catch(ignore);
  }

  async #dropTag(tag: string): Promise<void> {
    await this.#l1.deleteByTag(tag).catch(ignore);
    await this.#l1.deleteByTag(FILLED_FROM_L2).catch(ignore);
  }

  #dropL1(reason: TieredStoreEvents['l1-drop'][0]['reason']): void {
    this.#fences.breakAll();
    const old = this.#l1;
    this.#l1 = this.#makeL1();
    old.close().catch(ignore);
    this.#stats.l1Drops += 1;
    this.emit('l1-drop', { reason });
  }

  #onNotice(notice: InvalidationNotice): void {
    this.#watch.saw(notice.shard, notice.generation);
    if (notice.from === this.instanceId || this.#closed) return;
    this.#stats.noticesReceived += 1;
    if (notice.kind === 'key') {
      this.#fences.breakKey(notice.name);
      void this.#dropKey(notice.name);
    } else {
      this.#fences.breakAll();
      void this.#dropTag(notice.name);
    }
  }

  /** A failed publish is not the write's failure: the write is in L2, and other copies end with their L1 TTL. */
  async #announce(invalidation: Invalidation): Promise<void> {
    try {
      const notice = await this.#bus.publish(this.instanceId, invalidation);
      this.#watch.saw(notice.shard, notice.generation);
    } catch (cause) {
      this.emit('bus-error', { operation: 'publish', cause });
    }
  }
}
