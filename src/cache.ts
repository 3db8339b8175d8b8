import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { AuditAction, AuditEvent, AuditOutcome } from './audit/audit-event.js';
import { streamOf } from './audit/audit-event.js';
import type { AuditSink } from './audit/audit-sink.js';
import { canonicalJson } from './audit/canonical-json.js';
import { openEnvelope, parseEnvelope, sealEnvelope } from './crypto/envelope.js';
import { NoncePool } from './crypto/nonce-pool.js';
import { PhiCacheError, type PhiCacheErrorCode, PolicyDeniedError } from './errors.js';
import { checkedKeyProvider } from './keys/checked-provider.js';
import { DataKeys } from './keys/data-keys.js';
import { type CachedDek, DekCache, type DekCacheOptions } from './keys/dek-cache.js';
import type { KeyProvider } from './keys/key-provider.js';
import { NameKeyring, type TenantNames } from './keys/tenant-names.js';
import { type DataClass, Policy, type PolicyDecision } from './policy/policy.js';
import type { CacheStore } from './store/cache-store.js';
import { MemoryStore } from './store/memory/memory-store.js';

/** What is cached: a data class from the policy and a reference within it. `id` may be a patient id: it is never stored raw. */
export interface EntryRef {
  readonly class: string;
  readonly resource: string;
  readonly id: string;
}

/** Who asks, why, and within which scope. PHI classes require `principal` and `purpose`. */
export interface AccessContext {
  readonly tenant: string;
  readonly user?: string;
  readonly session?: string;
  readonly principal?: string;
  readonly purpose?: string;
}

export interface SetOptions {
  /** Time to live in ms; at most the class cap. Default: the class default. */
  readonly ttlMs?: number;
  /** Tags by kind (for example `{ patient: 'p-123' }`); kinds must be declared by the class. Stored hashed. */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface WriteReceipt {
  /** False when the write was dropped under the class's failure mode (store or key service down). */
  readonly stored: boolean;
  readonly rule: string;
  readonly ttlMs: number;
  /** The reference hash, as in the audit trail. */
  readonly key: string;
  /** Top-level fields removed by the class's allow list. */
  readonly strippedFields: number;
}

export interface PhiCacheOptions {
  readonly policy: Policy;
  readonly keys: KeyProvider;
  readonly audit: AuditSink;
  /** Default: an embedded MemoryStore. */
  readonly store?: CacheStore;
  /** Recorded as the actor's service in every audit event. */
  readonly service: string;
  readonly dekCache?: DekCacheOptions;
  /** How long new writes use one data key before moving to a new one, in ms. Default 1 hour. */
  readonly dekEpochMs?: number;
  /** Deadline of one key service call (generate, unwrap), in ms. Default 5,000; 1 to 120,000. */
  readonly keyServiceTimeoutMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
}

/** Typed events for operators: they carry hashes and codes, never values. */
export interface PhiCacheEvents {
  /** A stored value failed authentication or parsing; it was deleted and served as a miss. */
  tamper: [{ key: string; className: string; code: PhiCacheErrorCode }];
  /** The store failed; the read became a miss or the write was dropped. */
  'store-error': [
    { operation: 'get' | 'set' | 'delete' | 'purge'; className: string | null; cause: unknown },
  ];
  /** The key service failed and the class's failure mode turned the operation into a miss or a dropped write. */
  'key-service-error': [{ operation: 'get' | 'set'; className: string; cause: unknown }];
}

interface SealedPayload {
  v: unknown;
  createdAt: number;
  expiresAt: number;
  tags: string[];
}

const DEFAULT_EPOCH_MS = 3_600_000;
const ALLOW_PURGE = { effect: 'allow', rule: 'POL-PURGE-01' } as const;

/**
 * The one place where policy, keys, crypto, store and audit meet. Every operation is decided by the policy,
 * audited before it answers (fail-closed audit), and sees only HMAC names and sealed envelopes below it.
 */
export class PhiCache extends EventEmitter<PhiCacheEvents> {
  readonly #policy: Policy;
  readonly #store: CacheStore;
  readonly #audit: AuditSink;
  readonly #service: string;
  readonly #clock: () => number;
  readonly #names: NameKeyring;
  readonly #dekCache: DekCache;
  readonly #dataKeys: DataKeys;
  readonly #nonces = new NoncePool();
  readonly #inflight = new Map<string, Promise<unknown>>();
  #closed = false;

  private constructor(options: PhiCacheOptions, nameSecret: Buffer) {
    super();
    this.#policy = options.policy;
    this.#store = options.store ?? new MemoryStore();
    this.#audit = options.audit;
    this.#service = options.service;
    this.#clock = options.clock ?? Date.now;
    this.#names = new NameKeyring(nameSecret);
    this.#dekCache = new DekCache(options.dekCache);
    this.#dataKeys = new DataKeys({
      provider: checkedKeyProvider(options.keys, options.keyServiceTimeoutMs),
      store: this.#store,
      cache: this.#dekCache,
      epochMs: options.dekEpochMs ?? DEFAULT_EPOCH_MS,
      clock: this.#clock,
      onCreate: (dek) => this.#auditKeyCreated(dek),
    });
  }

  static async create(options: PhiCacheOptions): Promise<PhiCache> {
    if (typeof options !== 'object' || options === null) throw new TypeError('PhiCache.create needs options');
    if (typeof options.service !== 'string' || options.service.length === 0) {
      throw new TypeError('PhiCache needs `service`, the name recorded as the actor in audit events');
    }
    if (!(options.policy instanceof Policy)) throw new TypeError('PhiCache needs `policy`, a loaded Policy');
    if (typeof options.keys?.generateDataKey !== 'function')
      throw new TypeError('PhiCache needs `keys`, a KeyProvider');
    if (typeof options.audit?.write !== 'function')
      throw new TypeError('PhiCache needs `audit`, an AuditSink');
    if (options.store !== undefined && typeof options.store.get !== 'function') {
      throw new TypeError('`store` must be a CacheStore');
    }
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new TypeError('`clock` must be a function returning milliseconds');
    }
    const epochMs = options.dekEpochMs ?? DEFAULT_EPOCH_MS;
    if (!Number.isSafeInteger(epochMs) || epochMs < 1000) {
      throw new RangeError('dekEpochMs must be an integer of at least 1000 ms');
    }
    const nameSecret = await checkedKeyProvider(options.keys, options.keyServiceTimeoutMs).nameSecret();
    const cache = new PhiCache(options, nameSecret);
    await cache.#auditPolicyLoad();
    return cache;
  }

  /** The store below the cache (for ops and tests; it holds only hashes and ciphertext). */
  get store(): CacheStore {
    return this.#store;
  }

  /** The reference hash of an entry: what audit events record and `phicache audit hash` prints. */
  referenceHash(ref: EntryRef, tenant: string): string {
    checkRef(ref);
    return this.#names.forTenant(tenant).reference(ref.class, ref.resource, ref.id);
  }

  async set(
    ref: EntryRef,
    value: unknown,
    ctx: AccessContext,
    options: SetOptions = {},
  ): Promise<WriteReceipt> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    const tags = Object.entries(options.tags ?? {});
    if (tags.some(([, tagValue]) => typeof tagValue !== 'string')) {
      throw new TypeError('tag values must be strings');
    }
    const now = this.#clock();
    const names = this.#names.forTenant(ctx.tenant);
    const key = names.reference(ref.class, ref.resource, ref.id);
    const decision = this.#policy.decideWrite(
      {
        className: ref.class,
        ttlMs: options.ttlMs,
        scope: ctx,
        principal: ctx.principal,
        purpose: ctx.purpose,
        value,
        tagKinds: tags.map(([kind]) => kind),
      },
      now,
    );
    if (decision.effect === 'deny') return this.#refuse('set', ref, ctx, key, decision);

    const dataClass = decision.dataClass;
    const storeKey = this.#entryKey(names, dataClass, ref, ctx);
    const expiresAt = now + decision.ttlMs;
    const storeTags = [
      names.tenantTag,
      ...scopeTags(names, dataClass, ctx),
      ...tags.map(([kind, tagValue]) => names.tag(kind, tagValue)),
    ];
    const payload: SealedPayload = { v: decision.value, createdAt: now, expiresAt, tags: storeTags };
    const plaintext = serialize(payload);
    if (this.#dataKeys.keyServiceDown(now)) {
      // Writes wait for the key service in every mode: closed throws, miss and read-only drop the write.
      plaintext.fill(0);
      const down = new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'the key service is down');
      return this.#dropWrite(ref, ctx, key, decision, down, null);
    }
    let dek: CachedDek;
    let envelope: Buffer;
    try {
      ({ dek, envelope } = await this.#seal(
        ctx.tenant,
        names,
        decision,
        plaintext,
        expiresAt,
        storeKey,
        now,
      ));
    } catch (error) {
      plaintext.fill(0);
      return this.#dropWrite(ref, ctx, key, decision, error, null);
    }
    plaintext.fill(0);
    try {
      await this.#store.set(storeKey, envelope, { ttlMs: decision.ttlMs, tags: storeTags });
    } catch (error) {
      if (error instanceof PhiCacheError && error.code === 'ERR_VALUE_TOO_LARGE') {
        await this.#record('set', ref.class, ctx, key, dek, decision, { result: 'error', code: error.code });
        throw error;
      }
      return this.#dropWrite(ref, ctx, key, decision, error, dek);
    }
    try {
      await this.#record('set', ref.class, ctx, key, dek, decision, { result: 'ok' });
    } catch (error) {
      // An entry whose write could not be audited must not stay readable.
      await this.#store.delete(storeKey).catch(() => undefined);
      throw error;
    }
    return {
      stored: true,
      rule: decision.rule,
      ttlMs: decision.ttlMs,
      key,
      strippedFields: decision.strippedFields.length,
    };
  }

  async get<T = unknown>(ref: EntryRef, ctx: AccessContext): Promise<T | undefined> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    const { decision, names, key } = this.#decideRead(ref, ctx);
    if (decision.effect === 'deny') return this.#refuse('get', ref, ctx, key, decision);
    const storeKey = this.#entryKey(names, decision.dataClass, ref, ctx);
    return (await this.#read(ref, ctx, names, key, decision, storeKey)) as T | undefined;
  }

  /**
   * The cached value, or the factory's result cached and returned. Concurrent callers of one entry share one
   * factory call; each caller's access is still decided and audited under its own context.
   */
  async getOrSet<T>(
    ref: EntryRef,
    ctx: AccessContext,
    factory: () => T | Promise<T>,
    options: SetOptions = {},
  ): Promise<T> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    if (typeof factory !== 'function') throw new TypeError('getOrSet needs a factory function');
    const { decision, names, key } = this.#decideRead(ref, ctx);
    if (decision.effect === 'deny') return this.#refuse('get', ref, ctx, key, decision);
    const storeKey = this.#entryKey(names, decision.dataClass, ref, ctx);
    const running = this.#inflight.get(storeKey);
    if (running !== undefined) {
      let value: T;
      try {
        value = (await running) as T;
      } catch (error) {
        // Every caller's access is audited, also when the shared call failed.
        await this.#record('get', ref.class, ctx, key, null, decision, {
          result: 'error',
          code: codeOf(error),
        });
        throw error;
      }
      await this.#record('get', ref.class, ctx, key, null, decision, { result: 'hit', code: 'COALESCED' });
      return value;
    }
    const work = (async () => {
      const cached = await this.#read(ref, ctx, names, key, decision, storeKey);
      if (cached !== undefined) return cached as T;
      const value = await factory();
      await this.set(ref, value, ctx, options);
      return value;
    })();
    this.#inflight.set(storeKey, work);
    try {
      return await work;
    } finally {
      this.#inflight.delete(storeKey);
    }
  }

  async delete(ref: EntryRef, ctx: AccessContext): Promise<boolean> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    const { decision, names, key } = this.#decideRead(ref, ctx);
    if (decision.effect === 'deny') return this.#refuse('delete', ref, ctx, key, decision);
    const storeKey = this.#entryKey(names, decision.dataClass, ref, ctx);
    let deleted: boolean;
    try {
      deleted = await this.#store.delete(storeKey);
    } catch (error) {
      this.emit('store-error', { operation: 'delete', className: ref.class, cause: error });
      await this.#record('delete', ref.class, ctx, key, null, decision, {
        result: 'error',
        code: codeOf(error),
      });
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `the ${this.#store.name} store failed to delete`, {
        cause: error,
      });
    }
    await this.#record('delete', ref.class, ctx, key, null, decision, {
      result: 'ok',
      count: deleted ? 1 : 0,
    });
    return deleted;
  }

  /** Purges every entry of the tenant carrying the tag, in any class (a corrected lab result, say). */
  async purgeTag(ctx: AccessContext, kind: string, value: string): Promise<number> {
    this.#assertOpen();
    checkContext(ctx);
    if (typeof kind !== 'string' || typeof value !== 'string')
      throw new TypeError('purgeTag needs a kind and a value');
    const names = this.#names.forTenant(ctx.tenant);
    const tag = names.tag(kind, value);
    return this.#purge('purge.tag', ctx, tag, () => this.#store.deleteByTag(tag));
  }

  /** Purges every entry of one user's or one session's scope (logout, session end, consent withdrawn). */
  async purgeScope(
    ctx: AccessContext,
    scope: { readonly user: string } | { readonly session: string },
  ): Promise<number> {
    this.#assertOpen();
    checkContext(ctx);
    const names = this.#names.forTenant(ctx.tenant);
    const tag =
      'user' in scope && typeof scope.user === 'string'
        ? names.scope('user', scope.user)
        : 'session' in scope && typeof scope.session === 'string'
          ? names.scope('session', scope.session)
          : undefined;
    if (tag === undefined) throw new TypeError('purgeScope needs { user } or { session }');
    return this.#purge('purge.scope', ctx, tag, () => this.#store.deleteByTag(tag));
  }

  /**
   * Crypto-shreds a tenant: destroys its data keys (in the store and in memory), so every entry sealed under them
   * is unreadable wherever a copy survives, then deletes its entries.
   */
  async purgeTenant(ctx: AccessContext): Promise<number> {
    this.#assertOpen();
    checkContext(ctx);
    const names = this.#names.forTenant(ctx.tenant);
    return this.#purge('purge.tenant', ctx, names.tenantTag, async () => {
      await this.#dataKeys.shred(ctx.tenant, names);
      return this.#store.deleteByTag(names.tenantTag);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dekCache.clear();
    this.#names.close();
    await this.#store.close();
    await this.#audit.close();
  }

  /**
   * Seals with the current data key. The key is checked and used in one synchronous step: if the cache evicted
   * (and zeroed) it while this call awaited, another is fetched, so a value is never sealed under zeros.
   */
  async #seal(
    tenant: string,
    names: TenantNames,
    decision: PolicyDecision & { effect: 'allow' },
    plaintext: Buffer,
    expiresAt: number,
    storeKey: string,
    now: number,
  ): Promise<{ dek: CachedDek; envelope: Buffer }> {
    const dataClass = decision.dataClass;
    // An exception may raise the cap above the class's: the data key record must outlive the longest entry.
    const longestTtlMs = Math.max(dataClass.maxTtlMs, decision.ttlMs);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const dek = await this.#dataKeys.forSealing(tenant, names, dataClass.name, longestTtlMs, now);
      if (dek.evicted) continue;
      const envelope = sealEnvelope(
        dek.key,
        { expiresAt, epoch: dek.epoch, dekId: Buffer.from(dek.id, 'hex'), kid: dek.kid },
        { tenant, className: dataClass.name, storeKey },
        plaintext,
        this.#nonces.take(),
      );
      return { dek, envelope };
    }
    throw new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      'data keys were evicted before they could be used',
    );
  }

  /** After close the name secret and data keys are zeroed: refuse rather than derive names from zeros. */
  #assertOpen(): void {
    if (this.#closed) throw new TypeError('this PhiCache is closed');
  }

  #decideRead(ref: EntryRef, ctx: AccessContext) {
    const names = this.#names.forTenant(ctx.tenant);
    const key = names.reference(ref.class, ref.resource, ref.id);
    const decision = this.#policy.decideRead(
      { className: ref.class, scope: ctx, principal: ctx.principal, purpose: ctx.purpose },
      this.#clock(),
    );
    return { decision, names, key };
  }

  async #read(
    ref: EntryRef,
    ctx: AccessContext,
    names: TenantNames,
    key: string,
    decision: PolicyDecision & { effect: 'allow' },
    storeKey: string,
  ): Promise<unknown> {
    const dataClass = decision.dataClass;
    const miss = async (code?: PhiCacheErrorCode, dek: CachedDek | null = null) => {
      await this.#record(
        'get',
        ref.class,
        ctx,
        key,
        dek,
        decision,
        code ? { result: 'miss', code } : { result: 'miss' },
      );
      return undefined;
    };
    let raw: Buffer | undefined;
    try {
      raw = await this.#store.get(storeKey);
    } catch (error) {
      this.emit('store-error', { operation: 'get', className: ref.class, cause: error });
      return miss('ERR_STORE_UNAVAILABLE');
    }
    if (raw === undefined) return miss();

    const now = this.#clock();
    const binding = { tenant: ctx.tenant, className: dataClass.name, storeKey };
    let envelope: ReturnType<typeof parseEnvelope>;
    try {
      envelope = parseEnvelope(raw);
    } catch (error) {
      // Written by a newer phicache during a rolling upgrade: not tamper, just not readable here.
      if (error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_VERSION') return miss(error.code);
      return this.#tampered(ref, ctx, key, decision, storeKey, error, null);
    }
    if (envelope.header.expiresAt <= now) {
      await this.#store.delete(storeKey).catch(() => undefined);
      return miss('ERR_ENVELOPE_EXPIRED');
    }
    // While the key service is known to be down, only a read-only class goes on, with keys it already holds.
    if (this.#dataKeys.keyServiceDown(now) && dataClass.failureMode !== 'read-only') {
      const down = new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'the key service is down');
      return this.#keyServiceFailed('get', ref, ctx, key, decision, down, miss);
    }
    let dek: CachedDek;
    try {
      const id = envelope.header.dekId.toString('hex');
      const { epoch } = envelope.header;
      // The key is used right after this loop, in the same synchronous step as the check (see #seal).
      for (let attempt = 0; ; attempt += 1) {
        dek = await this.#dataKeys.forOpening(ctx.tenant, names, dataClass.name, epoch, id, now);
        if (!dek.evicted) break;
        if (attempt === 2)
          throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'data keys were evicted before use');
      }
    } catch (error) {
      if (error instanceof PhiCacheError && error.code === 'ERR_KEY_NOT_FOUND') {
        await this.#store.delete(storeKey).catch(() => undefined);
        return miss('ERR_KEY_NOT_FOUND');
      }
      if (error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_AUTH') {
        return this.#tampered(ref, ctx, key, decision, storeKey, error, null);
      }
      if (isStoreFailure(error)) {
        this.emit('store-error', { operation: 'get', className: ref.class, cause: error });
        return miss('ERR_STORE_UNAVAILABLE');
      }
      return this.#keyServiceFailed('get', ref, ctx, key, decision, error, miss);
    }
    let payload: SealedPayload;
    try {
      const plaintext = openEnvelope(dek.key, envelope, binding);
      payload = JSON.parse(plaintext.toString('utf8')) as SealedPayload;
      plaintext.fill(0);
    } catch (error) {
      return this.#tampered(ref, ctx, key, decision, storeKey, error, dek);
    }
    // Promise PHI-TTL-01: the sealed expiry is authoritative even if the store's TTL was removed or extended.
    if (!(payload.expiresAt > now)) {
      await this.#store.delete(storeKey).catch(() => undefined);
      return miss('ERR_ENVELOPE_EXPIRED', dek);
    }
    await this.#record('get', ref.class, ctx, key, dek, decision, { result: 'hit' });
    return payload.v;
  }

  async #tampered(
    ref: EntryRef,
    ctx: AccessContext,
    key: string,
    decision: PolicyDecision,
    storeKey: string,
    error: unknown,
    dek: CachedDek | null,
  ): Promise<undefined> {
    // A plaintext that opened but is not our JSON is damage too, not a store outage.
    const code = error instanceof PhiCacheError ? error.code : 'ERR_ENVELOPE_MALFORMED';
    await this.#store.delete(storeKey).catch(() => undefined);
    this.emit('tamper', { key, className: ref.class, code });
    await this.#record('get', ref.class, ctx, key, dek, decision, { result: 'error', code });
    return undefined;
  }

  async #keyServiceFailed(
    operation: 'get' | 'set',
    ref: EntryRef,
    ctx: AccessContext,
    key: string,
    decision: PolicyDecision & { effect: 'allow' },
    error: unknown,
    degrade: (code: PhiCacheErrorCode) => Promise<undefined>,
  ): Promise<undefined> {
    const code = codeOf(error);
    if (decision.dataClass.failureMode === 'closed') {
      await this.#record(operation, ref.class, ctx, key, null, decision, { result: 'error', code });
      throw error;
    }
    this.emit('key-service-error', { operation, className: ref.class, cause: error });
    return degrade(code);
  }

  async #dropWrite(
    ref: EntryRef,
    ctx: AccessContext,
    key: string,
    decision: PolicyDecision & { effect: 'allow' },
    error: unknown,
    dek: CachedDek | null,
  ): Promise<WriteReceipt> {
    // Fail-closed audit holds in every failure mode: an audit failure on the way (a data key's creation that
    // could not be recorded) is never turned into a dropped write.
    if (error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE') throw error;
    const receipt: WriteReceipt = {
      stored: false,
      rule: decision.rule,
      ttlMs: decision.ttlMs,
      key,
      strippedFields: decision.strippedFields.length,
    };
    const dropped = async (code: PhiCacheErrorCode) => {
      await this.#record('set', ref.class, ctx, key, dek, decision, { result: 'dropped', code });
      return undefined;
    };
    // Data-key errors come typed from the key path; anything else came from the store below it.
    if (dek === null && !isStoreFailure(error)) {
      await this.#keyServiceFailed('set', ref, ctx, key, decision, error, dropped);
      return receipt;
    }
    this.emit('store-error', { operation: 'set', className: ref.class, cause: error });
    await dropped('ERR_STORE_UNAVAILABLE');
    return receipt;
  }

  async #refuse(
    action: AuditAction,
    ref: EntryRef,
    ctx: AccessContext,
    key: string,
    decision: PolicyDecision & { effect: 'deny' },
  ): Promise<never> {
    await this.#record(action, ref.class, ctx, key, null, decision, {
      result: 'denied',
      code: decision.code,
    });
    throw new PolicyDeniedError(decision.code, decision.rule, decision.reason);
  }

  /** Runs a purge and audits it with its target: the hashed tag, so an auditor can match it to the entries. */
  async #purge(
    action: AuditAction,
    ctx: AccessContext,
    target: string,
    run: () => Promise<number>,
  ): Promise<number> {
    const detail = { target };
    let count: number;
    try {
      count = await run();
    } catch (error) {
      this.emit('store-error', { operation: 'purge', className: null, cause: error });
      await this.#record(
        action,
        null,
        ctx,
        null,
        null,
        ALLOW_PURGE,
        { result: 'error', code: codeOf(error) },
        detail,
      );
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `the ${this.#store.name} store failed to purge`, {
        cause: error,
      });
    }
    await this.#record(action, null, ctx, null, null, ALLOW_PURGE, { result: 'ok', count }, detail);
    return count;
  }

  #entryKey(names: TenantNames, dataClass: DataClass, ref: EntryRef, ctx: AccessContext): string {
    const user = dataClass.scope.includes('user') ? (ctx.user ?? '') : '';
    const session = dataClass.scope.includes('session') ? (ctx.session ?? '') : '';
    return names.entry(dataClass.name, ref.resource, ref.id, user, session);
  }

  /** Which policy this instance enforces is evidence too: its digest goes to the admin stream at start. */
  async #auditPolicyLoad(): Promise<void> {
    const ctx = { tenant: '*', principal: this.#service, purpose: 'policy-load' };
    await this.#record(
      'policy.load',
      null,
      ctx,
      null,
      null,
      null,
      { result: 'ok' },
      {
        classes: this.#policy.classes.size,
        exceptions: this.#policy.exceptions.length,
        digest: policyDigest(this.#policy),
      },
    );
  }

  async #auditKeyCreated(dek: CachedDek): Promise<void> {
    const ctx = { tenant: dek.tenant, principal: this.#service, purpose: 'key-management' };
    await this.#record('key.create', dek.className, ctx, null, dek, null, { result: 'ok' });
  }

  async #record(
    action: AuditAction,
    className: string | null,
    ctx: AccessContext,
    key: string | null,
    dek: CachedDek | null,
    decision: { readonly effect: 'allow' | 'deny'; readonly rule: string } | null,
    outcome: AuditOutcome,
    detail?: AuditEvent['detail'],
  ): Promise<void> {
    const event: AuditEvent = {
      v: 1,
      stream: streamOf(action),
      ts: new Date(this.#clock()).toISOString(),
      actor: { service: this.#service, principal: ctx.principal ?? null },
      purpose: ctx.purpose ?? null,
      tenant: ctx.tenant,
      // An undeclared class name is caller input and may hold anything; the rule id POL-CLASS-01 says enough.
      class: className !== null && this.#policy.dataClass(className) !== undefined ? className : null,
      action,
      key,
      kid: dek?.kid ?? null,
      dek: dek?.id ?? null,
      decision: decision === null ? null : { effect: decision.effect, rule: decision.rule },
      outcome,
      ...(detail === undefined ? {} : { detail }),
    };
    try {
      await this.#audit.write(event);
    } catch (cause) {
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the audit sink failed to record ${action}`, {
        cause,
      });
    }
  }
}

function policyDigest(policy: Policy): string {
  const document = canonicalJson({
    classes: [...policy.classes.values()],
    exceptions: [...policy.exceptions],
  });
  return `sha256:${createHash('sha256').update(document).digest('hex')}`;
}

function scopeTags(names: TenantNames, dataClass: DataClass, ctx: AccessContext): string[] {
  const tags: string[] = [];
  if (dataClass.scope.includes('user') && ctx.user !== undefined) tags.push(names.scope('user', ctx.user));
  if (dataClass.scope.includes('session') && ctx.session !== undefined)
    tags.push(names.scope('session', ctx.session));
  return tags;
}

function serialize(payload: SealedPayload): Buffer {
  let json: string | undefined;
  try {
    json = JSON.stringify(payload);
  } catch {
    // No cause: JSON.stringify's message names the caller's fields (a cycle's path), which may be PHI.
    throw new PhiCacheError('ERR_VALUE_NOT_SERIALIZABLE', 'the value cannot be serialized as JSON');
  }
  if (json === undefined || payload.v === undefined) {
    throw new PhiCacheError('ERR_VALUE_NOT_SERIALIZABLE', 'undefined cannot be cached');
  }
  return Buffer.from(json, 'utf8');
}

/** The store failed under the key path (loading or writing a data key record): a store outage, not a key one. */
function isStoreFailure(error: unknown): boolean {
  return !(error instanceof PhiCacheError) || error.code === 'ERR_STORE_UNAVAILABLE';
}

function codeOf(error: unknown): PhiCacheErrorCode {
  return error instanceof PhiCacheError ? error.code : 'ERR_STORE_UNAVAILABLE';
}

function checkRef(ref: EntryRef): void {
  if (
    typeof ref !== 'object' ||
    ref === null ||
    typeof ref.class !== 'string' ||
    typeof ref.resource !== 'string' ||
    typeof ref.id !== 'string' ||
    ref.id.length === 0
  ) {
    throw new TypeError(
      'an entry reference is { class, resource, id } with string fields and a non-empty id',
    );
  }
}

function checkContext(ctx: AccessContext): void {
  if (typeof ctx !== 'object' || ctx === null || typeof ctx.tenant !== 'string' || ctx.tenant.length === 0) {
    throw new TypeError('an access context needs a non-empty string `tenant`');
  }
  for (const field of ['user', 'session', 'principal', 'purpose'] as const) {
    if (ctx[field] !== undefined && typeof ctx[field] !== 'string') {
      throw new TypeError(`access context field ${field} must be a string when given`);
    }
  }
}
