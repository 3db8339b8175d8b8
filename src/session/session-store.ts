import { EventEmitter } from 'node:events';
import type { AccessContext, PhiCache } from '../cache.js';
import { findPhiInValue } from '../detect/phi-detectors.js';
import { PhiCacheError } from '../errors.js';
import { integerOption } from '../options.js';
import { MemorySessionIndex, type SessionIndex } from './session-index.js';

/** Session data as the session middleware hands it over: its own fields plus the cookie's attributes. */
export type SessionData = Record<string, unknown> & { cookie?: unknown };

export interface PhiSessionStoreOptions {
  readonly cache: PhiCache;
  /**
   * The tenant the sessions are kept under. A session id names no tenant, so every session of one store lives in
   * this one namespace; `clear()` crypto-shreds it. Use one per application (for example `portal-sessions`).
   */
  readonly tenant: string;
  /** The data class of the sessions. Default `session-token` (the default policy caps it at 1800 s). */
  readonly className?: string;
  /**
   * A session unused for this long ends, in ms: every save or touch sets the entry's TTL to at most this. It must
   * not exceed the class cap, or the cache refuses the write. Default 1,800,000 (30 min); 1..86,400,000.
   */
  readonly idleTimeoutMs?: number;
  /**
   * A session ends this long after it was issued, however busy, in ms. Default 28,800,000 (8 h);
   * 1..2,592,000,000 (30 days).
   */
  readonly absoluteTimeoutMs?: number;
  /** While the store is down, how often it is probed to announce `connect` again, in ms. Default 1,000; 10..60,000. */
  readonly probeIntervalMs?: number;
  /** Who the audit trail names for session operations. Default `session-store`. */
  readonly principal?: string;
  /** Wall clock in ms. Default `Date.now`. */
  readonly clock?: () => number;
  /**
   * Which sessions are live, for `all()` and `length()`. Default: an in-memory index on the embedded store; a shared
   * store needs a shared one (`new RedisSessionIndex(commands)`), and without it `all()` and `length()` reject.
   */
  readonly index?: SessionIndex;
}

export interface PhiSessionStoreEvents {
  /** The store answers again (after a `disconnect`). express-session resumes using it. */
  connect: [];
  /** The cache reported a store failure; express-session stops loading sessions until `connect`. */
  disconnect: [];
}

const STORE_RESOURCE = 'session';
/** The reference that names a store's index key; the tenant's name key turns it into an HMAC. */
const INDEX_RESOURCE = 'session-index';

/**
 * Sessions kept through phicache. The session id never reaches the store: its reference hash is the entry's id
 * and its session scope, both turned into HMAC names again by the cache, and the member of the live-session index.
 * The data is checked twice before it is written: for PHI-looking field names and values (the shared detectors),
 * and by the class's field allow list. Each save sets the TTL to
 * the shortest of the idle timeout, the cookie's remaining life and the absolute timeout's remainder; the issue
 * time travels sealed inside the entry (`issuedAt`), so a session cannot be kept alive past the absolute timeout by
 * touching it. Destroy purges the session's whole scope, and the cache's purge marker refuses a copy written back.
 *
 * Framework-free: the express-session and @fastify/session adapters wrap it.
 */
export class PhiSessionStore extends EventEmitter<PhiSessionStoreEvents> {
  readonly #cache: PhiCache;
  readonly #tenant: string;
  readonly #className: string;
  readonly #idleTimeoutMs: number;
  readonly #absoluteTimeoutMs: number;
  readonly #probeIntervalMs: number;
  readonly #principal: string;
  readonly #clock: () => number;
  readonly #index: SessionIndex | undefined;
  #indexKey: string | undefined;
  #ready = true;
  #probe: NodeJS.Timeout | undefined;
  readonly #onStoreError = () => this.#down();

  constructor(options: PhiSessionStoreOptions) {
    super();
    if (typeof options !== 'object' || options === null || typeof options.cache?.get !== 'function') {
      throw new TypeError('PhiSessionStore needs { cache, tenant }');
    }
    if (typeof options.tenant !== 'string' || options.tenant.length === 0) {
      throw new TypeError('PhiSessionStore needs a non-empty tenant');
    }
    const owner = 'PhiSessionStore';
    this.#cache = options.cache;
    this.#tenant = options.tenant;
    this.#className = options.className ?? 'session-token';
    this.#idleTimeoutMs = integerOption(
      owner,
      'idleTimeoutMs',
      options.idleTimeoutMs ?? 1_800_000,
      1,
      86_400_000,
    );
    this.#absoluteTimeoutMs = integerOption(
      owner,
      'absoluteTimeoutMs',
      options.absoluteTimeoutMs ?? 28_800_000,
      1,
      2_592_000_000,
    );
    this.#probeIntervalMs = integerOption(
      owner,
      'probeIntervalMs',
      options.probeIntervalMs ?? 1_000,
      10,
      60_000,
    );
    this.#principal = options.principal ?? 'session-store';
    this.#clock = options.clock ?? Date.now;
    this.#index =
      options.index ?? (this.#cache.store.name === 'memory' ? new MemorySessionIndex() : undefined);
    this.#cache.on('store-error', this.#onStoreError);
  }

  /** False between a `disconnect` and the next `connect`. */
  get ready(): boolean {
    return this.#ready;
  }

  /** The session's data, or undefined when there is none, it expired, or the store is down (the class's `miss`). */
  async get(sid: string): Promise<SessionData | undefined> {
    return this.#read(this.#hash(sid));
  }

  /**
   * The data of every live session, read through the cache as `get` reads one. Without ids: the store knows only
   * their reference hashes. A listed session whose entry is gone (expired, purged) is dropped from the index.
   */
  async all(): Promise<SessionData[]> {
    const index = this.#requireIndex();
    const key = this.#nameIndex();
    const sessions: SessionData[] = [];
    for (const hash of await index.members(key, this.#clock())) {
      const data = await this.#read(hash);
      if (data === undefined) await index.remove(key, hash, this.#clock());
      else sessions.push(data);
    }
    return sessions;
  }

  /** How many sessions are live, counted as `all()` finds them. */
  async length(): Promise<number> {
    return (await this.all()).length;
  }

  async #read(hash: string): Promise<SessionData | undefined> {
    const data = await this.#cache.get<SessionData>(this.#ref(hash), this.#context(hash));
    if (data === undefined) return undefined;
    // PHI-SESSION-03: past the absolute timeout the session is over, whatever TTL the store still gives it.
    if (this.#absoluteRemainingMs(data) <= 0) {
      await this.#destroy(hash);
      return undefined;
    }
    return data;
  }

  /**
   * Saves the session. Refused with `ERR_SESSION_DATA_PHI` (PHI-looking data) or the class's policy error (a field
   * outside its allow list); a write the store dropped rejects with `ERR_STORE_UNAVAILABLE`, so a login that could
   * not be kept fails visibly instead of handing out a cookie for nothing.
   */
  async set(sid: string, session: SessionData): Promise<void> {
    const data = this.#serializable(session);
    // PHI-SESSION-01: the detectors run before the policy and before any write.
    const findings = findPhiInValue(data);
    if (findings.length > 0) {
      const where = findings.map((finding) => `${finding.path} (${finding.kind})`).join(', ');
      throw new PhiCacheError(
        'ERR_SESSION_DATA_PHI',
        `session data looks like PHI at ${where}; nothing was stored (rule PHI-SESSION-01)`,
      );
    }
    const now = this.#clock();
    // PHI-SESSION-03: an issue time in the future is not believed, so the absolute timeout cannot be pushed back.
    const issuedAt = typeof data.issuedAt === 'number' && data.issuedAt <= now ? data.issuedAt : now;
    const record = { ...data, issuedAt };
    const ttlMs = this.#ttlMs(record, now);
    const hash = this.#hash(sid);
    if (ttlMs <= 0) {
      await this.#destroy(hash);
      return;
    }
    const receipt = await this.#cache.set(this.#ref(hash), record, this.#context(hash), { ttlMs });
    // PHI-SESSION-05: a login that could not be kept fails visibly.
    if (!receipt.stored) {
      throw new PhiCacheError(
        'ERR_STORE_UNAVAILABLE',
        'the session was not stored: the cache dropped the write (rule PHI-SESSION-05)',
      );
    }
    await this.#index?.add(this.#nameIndex(), hash, now + ttlMs, now);
  }

  /**
   * Extends the session's life by the idle timeout (never past the absolute one). The stored data is written
   * again, not the caller's copy: a touch never saves changes, and a session destroyed meanwhile stays destroyed.
   */
  async touch(sid: string, session: SessionData): Promise<void> {
    const stored = await this.get(sid);
    if (stored === undefined) return;
    const cookie = this.#serializable(session).cookie;
    await this.set(sid, cookie === undefined ? stored : { ...stored, cookie });
  }

  /** Ends the session: purges every entry of its scope (the session itself and anything cached for it). */
  async destroy(sid: string): Promise<void> {
    await this.#destroy(this.#hash(sid));
  }

  async #destroy(hash: string): Promise<void> {
    // PHI-SESSION-04: a scope purge leaves a purge marker, so a copy of the entry written back is refused.
    await this.#cache.purgeScope(this.#context(hash), { session: hash });
    await this.#index?.remove(this.#nameIndex(), hash, this.#clock());
  }

  /** Ends every session of this store at once, by crypto-shredding its tenant. */
  async clear(): Promise<void> {
    await this.#cache.purgeTenant({ tenant: this.#tenant, principal: this.#principal });
    await this.#index?.clear(this.#nameIndex());
  }

  /** Stops listening to the cache and probing; the cache itself stays open (its owner closes it). */
  close(): void {
    this.#cache.off('store-error', this.#onStoreError);
    clearTimeout(this.#probe);
    this.#probe = undefined;
  }

  /**
   * PHI-SESSION-06: a session is known by the cache's reference hash of its id (an HMAC under the tenant's name key),
   * never by the id: that hash is its entry's id and its scope, which the cache turns into HMAC names again, and the
   * index's member.
   */
  #hash(sid: string): string {
    if (typeof sid !== 'string' || sid.length === 0)
      throw new TypeError('a session id is a non-empty string');
    return this.#cache.referenceHash(
      { class: this.#className, resource: STORE_RESOURCE, id: sid },
      this.#tenant,
    );
  }

  #ref(hash: string) {
    return { class: this.#className, resource: STORE_RESOURCE, id: hash };
  }

  #context(hash: string): AccessContext {
    return { tenant: this.#tenant, session: hash, principal: this.#principal };
  }

  /** The index key of this store's tenant: an HMAC name, like every name phicache writes. */
  #nameIndex(): string {
    this.#indexKey ??= `phc:x:${this.#cache
      .referenceHash({ class: this.#className, resource: INDEX_RESOURCE, id: 'live' }, this.#tenant)
      .replace('hmac-sha256:', '')}`;
    return this.#indexKey;
  }

  #requireIndex(): SessionIndex {
    if (this.#index === undefined) {
      throw new TypeError(
        'listing sessions of a shared store needs a shared index: pass index: new RedisSessionIndex(commands)',
      );
    }
    return this.#index;
  }

  /** Session objects carry methods and a cookie object with toJSON: keep what JSON keeps, as the cache would. */
  #serializable(session: SessionData): SessionData {
    if (typeof session !== 'object' || session === null) throw new TypeError('session data is an object');
    return JSON.parse(JSON.stringify(session)) as SessionData;
  }

  #absoluteRemainingMs(data: SessionData): number {
    const issuedAt = typeof data.issuedAt === 'number' ? data.issuedAt : 0;
    return issuedAt + this.#absoluteTimeoutMs - this.#clock();
  }

  /** PHI-SESSION-02 and -03: the shortest of the idle timeout, the absolute remainder and the cookie's life. */
  #ttlMs(record: SessionData, now: number): number {
    let ttl = Math.min(this.#idleTimeoutMs, this.#absoluteRemainingMs(record));
    const cookie = record.cookie as { expires?: unknown } | undefined;
    if (typeof cookie?.expires === 'string') {
      const expires = Date.parse(cookie.expires);
      if (Number.isFinite(expires)) ttl = Math.min(ttl, expires - now);
    }
    return Math.floor(ttl);
  }

  /** PHI-SESSION-05: the middleware learns the store is down, and stops loading sessions until `connect`. */
  #down(): void {
    if (!this.#ready) return;
    this.#ready = false;
    this.emit('disconnect');
    this.#scheduleProbe();
  }

  /** Asks the store for the TTL of a name that is never written: any answer means it is back. */
  #scheduleProbe(): void {
    this.#probe = setTimeout(() => {
      this.#cache.store.ttl('phc:probe:session-store').then(
        () => {
          this.#probe = undefined;
          this.#ready = true;
          this.emit('connect');
        },
        () => this.#scheduleProbe(),
      );
    }, this.#probeIntervalMs);
    this.#probe.unref();
  }
}
