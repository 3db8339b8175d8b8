import { EventEmitter } from 'node:events';
import {
  type AccessContext,
  checkContext,
  checkRef,
  checkTenant,
  type EntryRef,
  withoutPurpose,
} from './access.js';
import type { AuditAction, AuditOutcome } from './audit/audit-event.js';
import { CacheAuditor } from './audit/cache-auditor.js';
import { type PhiCacheOptions, type ResolvedCacheOptions, resolveCacheOptions } from './cache-options.js';
import { openEnvelope, PreparedBinding, parseEnvelope, sealEnvelope } from './crypto/envelope.js';
import { hmacName } from './crypto/key-name.js';
import { NoncePool } from './crypto/nonce-pool.js';
import { decodePayload, PayloadEncoder, type SealedPayload } from './crypto/payload-codec.js';
import { PhiCacheError, type PhiCacheErrorCode, PolicyDeniedError } from './errors.js';
import { checkedKeyProvider } from './keys/checked-provider.js';
import { DataKeys, type FoundDekRecord } from './keys/data-keys.js';
import { type CachedDek, DekCache } from './keys/dek-cache.js';
import { EntryNameMemo, type EntryNames } from './keys/entry-names.js';
import type { KeyProvider } from './keys/key-provider.js';
import { KeyRotation, type ReencryptOutcome } from './keys/key-rotation.js';
import { KeyStateBoard } from './keys/key-state-board.js';
import { withLiveKey } from './keys/live-key.js';
import { NameKeyring, type TenantNames } from './keys/tenant-names.js';
import { longestCapMs } from './policy/digest.js';
import { type Failure, failureResponse } from './policy/failure-mode.js';
import type { Policy, PolicyDecision } from './policy/policy.js';
import { PurgeLedger } from './purge/purge-ledger.js';
import { Purges } from './purge/purges.js';
import { SingleFlight } from './runtime/single-flight.js';
import type { CacheStore, StoredEntry } from './store/cache-store.js';
import { MemoryStore } from './store/memory/memory-store.js';

export type { AccessContext, EntryRef } from './access.js';
export type { PhiCacheOptions } from './cache-options.js';

export interface SetOptions {
  /** Time to live in ms; at most the class cap. Default: the class default. */
  readonly ttlMs?: number;
  /** Tags by kind (for example `{ patient: 'p-123' }`); kinds must be declared by the class. Stored hashed. */
  readonly tags?: Readonly<Record<string, string>>;
}

export interface WriteReceipt {
  /** False when the write was dropped: the class's failure mode (store or key service down), or a purge it lost to. */
  readonly stored: boolean;
  readonly rule: string;
  readonly ttlMs: number;
  /** The reference hash, as in the audit trail. */
  readonly key: string;
  /** Fields removed by the class's allow list. */
  readonly strippedFields: number;
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
  /** An entry read under an older data key was sealed again under the current one (lazy re-encryption). */
  reencrypted: [{ className: string }];
  /** The fleet's key states record was found altered or unreadable; this instance keeps what it knew. */
  'key-states-damaged': [{ cause: unknown }];
}

type Allowed = PolicyDecision & { effect: 'allow' };

/** One operation on one entry, as decided: what every step below needs to act and to audit. */
interface EntryOp {
  readonly ref: EntryRef;
  readonly ctx: AccessContext;
  readonly names: TenantNames;
  /** The reference hash recorded in the audit trail. */
  readonly key: string;
  readonly decision: Allowed;
  readonly storeKey: string;
  readonly entry: EntryNames;
}

/** Where a getOrSet fill started: its data is as old as this, and purges after it must win. */
interface FillStart {
  readonly createdAt: number;
  readonly sequence: number;
}

/** A fill's result, shared by every caller that joined it. */
type FillResult = { ok: true; value: unknown } | { ok: false; error: unknown };

const ALLOW_PURGE = { effect: 'allow', rule: 'POL-PURGE-01' } as const;
/** Entries whose names are kept derived together (see EntryNameMemo), about half a KiB each: above a 10,000-entry hot set. */
const ENTRY_NAMES_HELD = 16_384;
const NO_CALLER_TAGS: readonly [string, string][] = Object.freeze([]);
const NO_TAG_KINDS: readonly string[] = Object.freeze([]);
/** Extra memory of a purge past the longest cap, for clock skew between instances. */
const PURGE_GRACE_MS = 60_000;
/** Lazy re-encryptions in flight at once; reads past this leave their entry for a later read or the sweep. */
const RESEALS_IN_FLIGHT = 64;

/**
 * The one place where policy, keys, crypto, store and audit meet. Every operation is decided by the policy,
 * audited before it answers (fail-closed audit), and sees only HMAC names and sealed envelopes below it.
 */
export class PhiCache extends EventEmitter<PhiCacheEvents> {
  readonly #policy: Policy;
  readonly #store: CacheStore;
  readonly #audit: CacheAuditor;
  readonly #clock: () => number;
  readonly #names: NameKeyring;
  readonly #entries = new EntryNameMemo(ENTRY_NAMES_HELD);
  readonly #dekCache: DekCache;
  readonly #dataKeys: DataKeys;
  readonly #keys: KeyProvider;
  readonly #ledger: PurgeLedger;
  readonly #purges: Purges;
  readonly #nonces = new NoncePool();
  readonly #payloads = new PayloadEncoder();
  readonly #fills = new SingleFlight<FillResult>();
  readonly #factoryTimeoutMs: number;
  readonly #board: KeyStateBoard;
  readonly #rotation: KeyRotation;
  readonly #resealing = new Set<string>();
  #closed = false;

  private constructor(options: ResolvedCacheOptions, nameSecret: Buffer) {
    super();
    this.#policy = options.policy;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#audit = new CacheAuditor(options.audit, options.service, this.#clock, this.#policy);
    this.#names = new NameKeyring(nameSecret);
    this.#dekCache = new DekCache(options.dekCache);
    this.#factoryTimeoutMs = options.factoryTimeoutMs;
    this.#keys = checkedKeyProvider(options.keys, options.keyServiceTimeoutMs);
    const statesKey = this.#names.fleetKey('key-states');
    this.#board = new KeyStateBoard({
      store: this.#store,
      storeKey: `phc:v:${hmacName(statesKey, ['key-states'])}`,
      macKey: statesKey,
      initialKid: () => this.#keys.currentKid(),
      clock: this.#clock,
      refreshMs: options.keyStateRefreshMs,
      onDamaged: (cause) => this.emit('key-states-damaged', { cause }),
    });
    this.#dataKeys = new DataKeys({
      provider: this.#keys,
      store: this.#store,
      cache: this.#dekCache,
      epochMs: options.dekEpochMs,
      clock: this.#clock,
      onCreate: (dek) => this.#audit.dataKey('key.create', dek),
      onDamaged: (dek) => this.#audit.dataKey('key.damaged', dek),
      states: () => this.#board.held,
      ownerKey: this.#names.fleetKey('dek-owner'),
      recordsTag: `phc:s:${hmacName(this.#names.fleetKey('dek-records'), ['dek-records'])}`,
    });
    this.#board.onChange((states, previous) => this.#dataKeys.observeStates(states, previous));
    this.#rotation = new KeyRotation({
      provider: this.#keys,
      board: this.#board,
      dataKeys: this.#dataKeys,
      store: this.#store,
      audit: this.#audit,
      policy: this.#policy,
      clock: this.#clock,
      refreshMs: options.keyStateRefreshMs,
      reencrypt: (storeKey, owner, now) => this.#reencryptStored(storeKey, owner, now),
    });
    this.#ledger = new PurgeLedger({
      store: this.#store,
      // An embedded store is this process's own: nobody else can write an entry back into it or purge it.
      shared: !(this.#store instanceof MemoryStore),
      clock: this.#clock,
      retainMs: longestCapMs(this.#policy) + PURGE_GRACE_MS,
      refreshMs: options.purgeRefreshMs,
      maxNames: 100_000,
    });
    this.#purges = new Purges(this.#store, this.#ledger, this.#dataKeys, this.#clock);
  }

  static async create(options: PhiCacheOptions): Promise<PhiCache> {
    const resolved = resolveCacheOptions(options);
    const nameSecret = await checkedKeyProvider(resolved.keys, resolved.keyServiceTimeoutMs).nameSecret();
    const cache = new PhiCache(resolved, nameSecret);
    await cache.#audit.policyLoaded();
    // Start from the fleet's key states; a store that does not answer yet leaves the provider's current version,
    // and the next operation reads them again.
    await cache.#board.refresh().catch(() => undefined);
    return cache;
  }

  /** Key rotation: publish, promote, rekey, rewrap, re-encrypt, retire (DESIGN.md §4, `phicache keys`). */
  get rotation(): KeyRotation {
    this.#assertOpen();
    return this.#rotation;
  }

  /** The store below the cache (for ops and tests; it holds only hashes and ciphertext). */
  get store(): CacheStore {
    return this.#store;
  }

  /** The reference hash of an entry: what audit events record and `phicache audit hash` prints. */
  referenceHash(ref: EntryRef, tenant: string): string {
    this.#assertOpen();
    checkRef(ref);
    checkTenant(tenant);
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
    return (await this.#write(ref, value, ctx, options, undefined)).receipt;
  }

  async get<T = unknown>(ref: EntryRef, ctx: AccessContext): Promise<T | undefined> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    const op = this.#decideRead(ref, ctx, 'get');
    if (op instanceof Promise) return op;
    return (await this.#read(op)) as T | undefined;
  }

  /**
   * The cached value, or the factory's result cached and returned; either way the value as the policy let it be
   * stored (fields it strips are stripped from what is returned too). Concurrent callers of one entry share one
   * factory call; each caller's access is still decided and audited under its own context. A fill that started
   * before a purge or delete of the entry is not cached after it (PHI-PURGE-01).
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
    const op = this.#decideRead(ref, ctx, 'get');
    if (op instanceof Promise) return op;
    const coalesced = this.#fills.has(op.storeKey);
    let abandoned = false;
    const flight = this.#fills.run(op.storeKey, () => this.#fill(op, factory, options, () => abandoned), {
      ms: this.#factoryTimeoutMs,
      expired: () => {
        abandoned = true;
        return new PhiCacheError(
          'ERR_FACTORY_TIMEOUT',
          `the getOrSet factory did not settle within ${this.#factoryTimeoutMs} ms`,
        );
      },
    });
    let result: FillResult;
    try {
      result = await flight;
    } catch (error) {
      // The fill's own steps audited what they did; what is left to record is this caller's failed access.
      if (coalesced || isFactoryTimeout(error)) {
        await this.#record('get', op, null, { result: 'error', code: codeOf(error) });
      }
      throw error;
    }
    if (!result.ok) {
      if (coalesced) await this.#record('get', op, null, { result: 'error', code: 'ERR_FACTORY_FAILED' });
      throw result.error;
    }
    if (coalesced) await this.#record('get', op, null, { result: 'hit', code: 'COALESCED' });
    return result.value as T;
  }

  async delete(ref: EntryRef, ctx: AccessContext): Promise<boolean> {
    this.#assertOpen();
    checkRef(ref);
    checkContext(ctx);
    const op = this.#decideRead(ref, ctx, 'delete');
    if (op instanceof Promise) return op;
    let deleted: boolean;
    try {
      deleted = await this.#purges.entry(op.names, op.storeKey);
    } catch (error) {
      this.emit('store-error', { operation: 'delete', className: ref.class, cause: error });
      await this.#record('delete', op, null, { result: 'error', code: codeOf(error) });
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `the ${this.#store.name} store failed to delete`, {
        cause: error,
      });
    }
    await this.#record('delete', op, null, { result: 'ok', count: deleted ? 1 : 0 });
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
    return this.#purge('purge.tag', ctx, tag, () => this.#purges.tag(names, tag));
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
    return this.#purge('purge.scope', ctx, tag, () => this.#purges.tag(names, tag));
  }

  /**
   * Crypto-shreds a tenant: destroys its data keys (in the store and in memory; other instances drop theirs within
   * `purgeRefreshMs`), so every entry sealed under them is unreadable wherever a copy survives, then deletes its
   * entries.
   */
  async purgeTenant(ctx: AccessContext): Promise<number> {
    this.#assertOpen();
    checkContext(ctx);
    const names = this.#names.forTenant(ctx.tenant);
    return this.#purge('purge.tenant', ctx, names.tenantTag, () => this.#purges.tenant(ctx.tenant, names));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#dekCache.clear();
    this.#entries.clear();
    this.#names.close();
    this.#ledger.clear();
    await this.#keys.close?.();
    await this.#store.close();
    await this.#audit.close();
  }

  /** After close the name secret and data keys are zeroed: refuse rather than derive names from zeros. */
  #assertOpen(): void {
    if (this.#closed) throw new TypeError('this PhiCache is closed');
  }

  /**
   * The policy's read decision for an entry, with the entry's names; a refusal is audited and thrown, by the
   * promise returned instead. Synchronous when allowed: a hit should not wait a turn for a decision already made.
   */
  #decideRead(ref: EntryRef, ctx: AccessContext, action: 'get' | 'delete'): EntryOp | Promise<never> {
    const names = this.#names.forTenant(ctx.tenant);
    const decision = this.#policy.decideRead(
      { className: ref.class, scope: ctx, principal: ctx.principal, purpose: ctx.purpose },
      this.#clock(),
    );
    if (decision.effect === 'deny') {
      return this.#refuse(action, ref, ctx, names.reference(ref.class, ref.resource, ref.id), decision);
    }
    const entry = this.#entries.of(names, ctx.tenant, decision.dataClass, ref.resource, ref.id, ctx);
    return { ref, ctx, names, key: entry.reference, decision, storeKey: entry.storeKey, entry };
  }

  /** The leader of a getOrSet: read, else call the factory and write what the policy lets through. */
  async #fill(
    op: EntryOp,
    factory: () => unknown,
    options: SetOptions,
    abandoned: () => boolean,
  ): Promise<FillResult> {
    const start: FillStart = { createdAt: this.#clock(), sequence: this.#ledger.sequence };
    const cached = await this.#read(op);
    if (cached !== undefined) return { ok: true, value: cached };
    let value: unknown;
    try {
      value = await factory();
    } catch (error) {
      return { ok: false, error };
    }
    // Past its deadline nobody waits for this value, and a later fill may already have cached a newer one.
    if (abandoned()) return { ok: true, value: undefined };
    const written = await this.#write(op.ref, value, op.ctx, options, start);
    // What the policy let through, as a later hit would return it; not the factory's raw value.
    return { ok: true, value: written.stored.value };
  }

  async #write(
    ref: EntryRef,
    value: unknown,
    ctx: AccessContext,
    options: SetOptions,
    fill: FillStart | undefined,
  ): Promise<{ receipt: WriteReceipt; stored: { readonly value: unknown } }> {
    const tags = options.tags === undefined ? NO_CALLER_TAGS : Object.entries(options.tags);
    if (tags.some(([, tagValue]) => typeof tagValue !== 'string')) {
      throw new TypeError('tag values must be strings');
    }
    const now = this.#clock();
    // A write chooses the data key, so it waits for a due read of the key states (one store read per refreshMs):
    // no write of this instance seals under a version more than refreshMs after the fleet moved on from it.
    if (this.#board.due(now)) await this.#board.refresh().catch(() => undefined);
    const names = this.#names.forTenant(ctx.tenant);
    const decision = this.#policy.decideWrite(
      {
        className: ref.class,
        ttlMs: options.ttlMs,
        scope: ctx,
        principal: ctx.principal,
        purpose: ctx.purpose,
        value,
        tagKinds: tags.length === 0 ? NO_TAG_KINDS : tags.map(([kind]) => kind),
      },
      now,
    );
    if (decision.effect === 'deny') {
      return this.#refuse('set', ref, ctx, names.reference(ref.class, ref.resource, ref.id), decision);
    }
    const dataClass = decision.dataClass;
    const entry = this.#entries.of(names, ctx.tenant, dataClass, ref.resource, ref.id, ctx);
    const key = entry.reference;
    const op: EntryOp = { ref, ctx, names, key, decision, storeKey: entry.storeKey, entry };
    const storeTags =
      tags.length === 0
        ? entry.baseTags
        : [...entry.baseTags, ...tags.map(([kind, tagValue]) => names.tag(kind, tagValue))];
    const receipt = (stored: boolean): WriteReceipt => ({
      stored,
      rule: decision.rule,
      ttlMs: decision.ttlMs,
      key,
      strippedFields: decision.strippedFields.length,
    });
    const json = decision.json;
    const createdAt = fill?.createdAt ?? now;

    // PHI-PURGE-01: a fill loses to every purge of its names since it started, here or (as far as this instance
    // has read) elsewhere; a plain write only needs to know whether its tenant was shredded meanwhile.
    const purgeTargets = fill === undefined ? [names.tenantTag] : [...storeTags, op.storeKey];
    let purgedAt = this.#ledger.latestKnown(purgeTargets);
    if (purgedAt === undefined) {
      try {
        purgedAt = await this.#ledger.latest(names, purgeTargets);
      } catch (error) {
        return { receipt: await this.#failWrite(op, 'store', error, null, receipt), stored: decision };
      }
    }
    this.#dataKeys.observeShred(ctx.tenant, this.#ledger.known(names.tenantTag));
    if (
      fill !== undefined &&
      (this.#ledger.purgedSince([...storeTags, op.storeKey], fill.sequence) || purgedAt > createdAt)
    ) {
      await this.#record('set', op, null, { result: 'dropped', code: 'ERR_ENTRY_PURGED' });
      return { receipt: receipt(false), stored: decision };
    }
    if (this.#dataKeys.keyServiceDown(now)) {
      const down = new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'the key service is down');
      return {
        receipt: await this.#failWrite(op, 'key-service-down', down, null, receipt),
        stored: decision,
      };
    }
    const expiresAt = now + decision.ttlMs;
    // An exception may raise the cap above the class's: the data key record must outlive the longest entry.
    const longestTtlMs = Math.max(dataClass.maxTtlMs, decision.ttlMs);
    // The plaintext exists only within this synchronous step: encoded, sealed and zeroed (see PayloadEncoder).
    const seal = (dek: CachedDek) =>
      this.#payloads.with(json, createdAt, expiresAt, storeTags, (plaintext) =>
        sealEnvelope(
          dek.key,
          { expiresAt, epoch: dek.epoch, dekId: Buffer.from(dek.id, 'hex'), kid: dek.kid },
          entry.binding,
          plaintext,
          this.#nonces.take(),
        ),
      );
    let sealed: { dek: CachedDek; result: Buffer };
    try {
      // A key held in memory is checked and used in this one synchronous step; otherwise withLiveKey loads it.
      const held = this.#dataKeys.heldForSealing(ctx.tenant, dataClass.name, now);
      sealed =
        held !== undefined && !held.evicted
          ? { dek: held, result: seal(held) }
          : await withLiveKey(
              () => this.#dataKeys.forSealing(ctx.tenant, names, dataClass.name, longestTtlMs, now),
              seal,
            );
    } catch (error) {
      if (error instanceof PhiCacheError && error.code === 'ERR_KEY_NOT_FOUND') {
        // The tenant was shredded while its data key was being made or loaded: this write lost to the purge.
        await this.#record('set', op, null, { result: 'dropped', code: 'ERR_ENTRY_PURGED' });
        return { receipt: receipt(false), stored: decision };
      }
      return {
        receipt: await this.#failWrite(op, failureOf(error), error, null, receipt),
        stored: decision,
      };
    }
    const { dek, result: envelope } = sealed;
    try {
      await this.#store.set(op.storeKey, envelope, { ttlMs: decision.ttlMs, tags: storeTags });
    } catch (error) {
      if (error instanceof PhiCacheError && error.code === 'ERR_VALUE_TOO_LARGE') {
        await this.#record('set', op, dek, { result: 'error', code: error.code });
        throw error;
      }
      return { receipt: await this.#failWrite(op, 'store', error, dek, receipt), stored: decision };
    }
    try {
      await this.#record('set', op, dek, { result: 'ok' });
    } catch (error) {
      // An entry whose write could not be audited must not stay readable.
      await this.#store.delete(op.storeKey).catch(() => undefined);
      throw error;
    }
    return { receipt: receipt(true), stored: decision };
  }

  /** Reads, opens and checks one entry; every outcome is audited. Resolves to the value, or undefined for a miss. */
  async #read(op: EntryOp): Promise<unknown> {
    const { names, decision, storeKey, ctx, entry } = op;
    const dataClass = decision.dataClass;
    const miss = (code?: PhiCacheErrorCode, dek: CachedDek | null = null) => this.#miss(op, code, dek);
    // The purges this entry surely carries are looked up together with the entry itself (when a store marker is
    // due; otherwise what this instance knows answers at once).
    const knownNames = entry.purgeNames;
    let stored: StoredEntry | undefined;
    let purgedAt: number | undefined;
    try {
      purgedAt = this.#ledger.latestKnown(knownNames);
      if (purgedAt === undefined) {
        [stored, purgedAt] = await Promise.all([
          this.#storedEntry(storeKey),
          this.#ledger.latest(names, knownNames),
        ]);
      } else {
        stored = await this.#storedEntry(storeKey);
      }
    } catch (error) {
      this.emit('store-error', { operation: 'get', className: op.ref.class, cause: error });
      return miss('ERR_STORE_UNAVAILABLE');
    }
    this.#dataKeys.observeShred(ctx.tenant, this.#ledger.known(names.tenantTag));
    if (stored === undefined) return miss();
    const raw = stored.value;

    const now = this.#clock();
    this.#board.refreshSoon(now);
    let envelope: ReturnType<typeof parseEnvelope>;
    try {
      envelope = parseEnvelope(raw);
    } catch (error) {
      // Written by a newer phicache during a rolling upgrade: not tamper, just not readable here.
      if (error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_VERSION') return miss(error.code);
      return this.#tampered(op, raw, error, null);
    }
    if (envelope.header.expiresAt <= now) {
      await this.#discard(storeKey, raw);
      return miss('ERR_ENVELOPE_EXPIRED');
    }
    if (this.#dataKeys.keyServiceDown(now)) {
      const down = new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'the key service is down');
      const response = failureResponse(dataClass.failureMode, 'key-service-down', 'read');
      if (response !== 'use-held-keys') return this.#failRead(op, response, down, miss);
    }
    const id = envelope.header.dekId.toString('hex');
    const open = (dek: CachedDek): { plaintext: Buffer } | { error: unknown } => {
      try {
        return { plaintext: openEnvelope(dek.key, envelope, entry.binding) };
      } catch (error) {
        return { error };
      }
    };
    let opened: { dek: CachedDek; result: { plaintext: Buffer } | { error: unknown } };
    try {
      // A key held in memory is checked and used in this one synchronous step; otherwise withLiveKey loads it.
      const held = this.#dataKeys.heldForOpening(ctx.tenant, dataClass.name, id, now);
      opened =
        held !== undefined && !held.evicted
          ? { dek: held, result: open(held) }
          : await withLiveKey(
              () =>
                this.#dataKeys.forOpening(ctx.tenant, names, dataClass.name, envelope.header.epoch, id, now),
              open,
            );
    } catch (error) {
      if (
        error instanceof PhiCacheError &&
        (error.code === 'ERR_KEY_NOT_FOUND' || error.code === 'ERR_KEY_DISABLED')
      ) {
        // Its data key record is gone (expired, shredded, evicted by Redis), or the KEK version that wrapped it was
        // disabled or destroyed: the entry can never open again.
        await this.#discard(storeKey, raw);
        return miss(error.code);
      }
      // A data key record that does not unwrap was altered: the entry is as damaged as its key.
      if (error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_AUTH')
        return this.#tampered(op, raw, error, null);
      const failure = failureOf(error);
      if (failure === 'store')
        this.emit('store-error', { operation: 'get', className: op.ref.class, cause: error });
      return this.#failRead(op, failureResponse(dataClass.failureMode, failure, 'read'), error, miss);
    }
    const { dek, result } = opened;
    if ('error' in result) return this.#tampered(op, raw, result.error, dek);
    let payload: SealedPayload;
    try {
      payload = decodePayload(result.plaintext);
    } catch (error) {
      return this.#tampered(op, raw, error, dek);
    } finally {
      result.plaintext.fill(0);
    }
    // The store's own record of the entry's tags must be the sealed one, or a purge could be steered past it.
    if (!stored.carries(payload.tags)) {
      const mismatch = new PhiCacheError(
        'ERR_ENVELOPE_AUTH',
        "the store's tags for the entry differ from its sealed tags",
      );
      return this.#tampered(op, raw, mismatch, dek);
    }
    // Promise PHI-TTL-01: the sealed expiry is authoritative even if the store's TTL was removed or extended, and
    // so is the cap in force now: an entry written under an exception or a cap that no longer holds is refused.
    if (!(payload.expiresAt > now)) {
      await this.#discard(storeKey, raw);
      return miss('ERR_ENVELOPE_EXPIRED', dek);
    }
    if (payload.createdAt + decision.ttlMs <= now) {
      await this.#discard(storeKey, raw);
      return miss('ERR_POLICY_TTL_EXCEEDED', dek);
    }
    // PHI-PURGE-01: an entry older than a purge of any name it carries is refused, wherever it came from.
    // Most entries carry only the names already checked: no array is made for them.
    const otherTags = payload.tags.some((tag) => !knownNames.includes(tag))
      ? payload.tags.filter((tag) => !knownNames.includes(tag))
      : undefined;
    if (otherTags !== undefined) {
      try {
        purgedAt = Math.max(purgedAt, await this.#ledger.latest(names, otherTags));
      } catch (error) {
        this.emit('store-error', { operation: 'get', className: op.ref.class, cause: error });
        return miss('ERR_STORE_UNAVAILABLE', dek);
      }
    }
    if (payload.createdAt < purgedAt) {
      await this.#discard(storeKey, raw);
      return miss('ERR_ENTRY_PURGED', dek);
    }
    // Sealed under an older data key (a rekey or a promoted KEK version since): moved to the current one in the
    // background, so that the old key is needed by fewer entries with every read.
    if (!this.#dataKeys.isCurrent(dek))
      this.#reencryptSoon(storeKey, raw, payload, ctx.tenant, dataClass.name, entry.binding);
    await this.#record('get', op, dek, { result: 'hit' });
    return payload.v;
  }

  #reencryptSoon(
    storeKey: string,
    raw: Buffer,
    payload: SealedPayload,
    tenant: string,
    className: string,
    binding: PreparedBinding,
  ): void {
    if (this.#resealing.has(storeKey) || this.#resealing.size >= RESEALS_IN_FLIGHT) return;
    this.#resealing.add(storeKey);
    this.#reseal(storeKey, raw, payload, tenant, className, binding)
      .then((outcome) => {
        if (outcome === 'reencrypted') this.emit('reencrypted', { className });
      })
      .catch(() => undefined)
      .finally(() => this.#resealing.delete(storeKey));
  }

  /**
   * Seals an entry's payload again under the current data key, with the same expiry, creation time and tags, and
   * swaps it in only if the store still holds the bytes that were read: a newer write, a delete or a purge in
   * between wins. Not an access (nothing reaches a caller), so it has no audit record of its own: reads re-encrypt
   * one by one (the `reencrypted` event counts them), and the sweep's admin record counts what it moved.
   */
  async #reseal(
    storeKey: string,
    raw: Buffer,
    payload: SealedPayload,
    tenant: string,
    className: string,
    binding: PreparedBinding,
  ): Promise<ReencryptOutcome> {
    const dataClass = this.#policy.dataClass(className);
    if (dataClass === undefined || this.#store.replaceIfSame === undefined) return 'unreadable';
    const now = this.#clock();
    if (payload.expiresAt <= now) return 'gone';
    const names = this.#names.forTenant(tenant);
    const json = JSON.stringify(payload.v);
    const seal = (dek: CachedDek) =>
      this.#payloads.with(json, payload.createdAt, payload.expiresAt, payload.tags, (plaintext) =>
        sealEnvelope(
          dek.key,
          { expiresAt: payload.expiresAt, epoch: dek.epoch, dekId: Buffer.from(dek.id, 'hex'), kid: dek.kid },
          binding,
          plaintext,
          this.#nonces.take(),
        ),
      );
    const longestTtlMs = Math.max(dataClass.maxTtlMs, payload.expiresAt - now);
    const { result } = await withLiveKey(
      () => this.#dataKeys.forSealing(tenant, names, className, longestTtlMs, now),
      seal,
    );
    return (await this.#store.replaceIfSame(storeKey, raw, result)) ? 'reencrypted' : 'gone';
  }

  /** The sweep's step for one stored entry: opened with its data key (found by a scan) and resealed if older. */
  async #reencryptStored(storeKey: string, owner: FoundDekRecord, now: number): Promise<ReencryptOutcome> {
    const { tenant, className } = owner;
    if (!storeKey.startsWith(`phc:e:${className}:`)) return 'unreadable';
    const stored = await this.#storedEntry(storeKey);
    if (stored === undefined) return 'gone';
    const raw = stored.value;
    let envelope: ReturnType<typeof parseEnvelope>;
    try {
      envelope = parseEnvelope(raw);
    } catch {
      return 'unreadable';
    }
    const names = this.#names.forTenant(tenant);
    const id = envelope.header.dekId.toString('hex');
    const binding = PreparedBinding.of({ tenant, className, storeKey });
    let opened: { dek: CachedDek; result: Buffer | undefined };
    try {
      opened = await withLiveKey(
        () => this.#dataKeys.forOpening(tenant, names, className, envelope.header.epoch, id, now),
        (dek) => {
          try {
            return openEnvelope(dek.key, envelope, binding);
          } catch {
            return undefined;
          }
        },
      );
    } catch (error) {
      if (
        error instanceof PhiCacheError &&
        (error.code === 'ERR_KEY_NOT_FOUND' || error.code === 'ERR_KEY_DISABLED')
      )
        return 'unreadable';
      throw error;
    }
    const { dek, result: plaintext } = opened;
    if (plaintext === undefined) return 'unreadable';
    let payload: SealedPayload;
    try {
      payload = decodePayload(plaintext);
    } catch {
      return 'unreadable';
    } finally {
      plaintext.fill(0);
    }
    if (!stored.carries(payload.tags)) return 'unreadable';
    if (this.#dataKeys.isCurrent(dek)) return 'current';
    return this.#reseal(storeKey, raw, payload, tenant, className, binding);
  }

  async #storedEntry(storeKey: string): Promise<StoredEntry | undefined> {
    if (this.#store.getEntry !== undefined) return this.#store.getEntry(storeKey);
    const value = await this.#store.get(storeKey);
    return value === undefined ? undefined : { value, carries: carriesWhatItSeals };
  }

  async #miss(op: EntryOp, code: PhiCacheErrorCode | undefined, dek: CachedDek | null): Promise<undefined> {
    await this.#record('get', op, dek, code ? { result: 'miss', code } : { result: 'miss' });
    return undefined;
  }

  /**
   * Deletes an entry found expired, purged or damaged, unless it was overwritten since it was read: a newer
   * entry written in between is not this one's to delete.
   */
  async #discard(storeKey: string, seen: Buffer): Promise<void> {
    try {
      if (this.#store.deleteIfSame !== undefined) {
        await this.#store.deleteIfSame(storeKey, seen);
        return;
      }
      // A store without the atomic step: compare, then delete (a newer write may still land in between).
      const current = await this.#store.get(storeKey);
      if (current?.equals(seen)) await this.#store.delete(storeKey);
    } catch {
      // Best effort: the entry is refused on every read anyway.
    }
  }

  async #tampered(op: EntryOp, raw: Buffer, error: unknown, dek: CachedDek | null): Promise<undefined> {
    // A plaintext that opened but is not our JSON is damage too, not a store outage.
    const code = error instanceof PhiCacheError ? error.code : 'ERR_ENVELOPE_MALFORMED';
    await this.#discard(op.storeKey, raw);
    this.emit('tamper', { key: op.key, className: op.ref.class, code });
    await this.#record('get', op, dek, { result: 'error', code });
    return undefined;
  }

  /** A read that met a failure: the class's failure mode decided `response`. */
  async #failRead(
    op: EntryOp,
    response: ReturnType<typeof failureResponse>,
    error: unknown,
    miss: (code: PhiCacheErrorCode) => Promise<undefined>,
  ): Promise<undefined> {
    const code = codeOf(error);
    if (response === 'throw') {
      await this.#record('get', op, null, { result: 'error', code });
      throw error;
    }
    if (!isStoreFailure(error)) {
      this.emit('key-service-error', { operation: 'get', className: op.ref.class, cause: error });
    }
    return miss(code);
  }

  /** A write that met a failure: thrown, or dropped and audited as such, as the class's failure mode says. */
  async #failWrite(
    op: EntryOp,
    failure: Failure,
    error: unknown,
    dek: CachedDek | null,
    receipt: (stored: boolean) => WriteReceipt,
  ): Promise<WriteReceipt> {
    // Fail-closed audit holds in every failure mode: an audit failure on the way (a data key's creation that
    // could not be recorded) is never turned into a dropped write.
    if (error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE') throw error;
    const code = failure === 'store' ? 'ERR_STORE_UNAVAILABLE' : codeOf(error);
    if (failureResponse(op.decision.dataClass.failureMode, failure, 'write') === 'throw') {
      await this.#record('set', op, dek, { result: 'error', code });
      throw error;
    }
    if (failure === 'store')
      this.emit('store-error', { operation: 'set', className: op.ref.class, cause: error });
    else this.emit('key-service-error', { operation: 'set', className: op.ref.class, cause: error });
    await this.#record('set', op, dek, { result: 'dropped', code });
    return receipt(false);
  }

  async #refuse(
    action: AuditAction,
    ref: EntryRef,
    ctx: AccessContext,
    key: string,
    decision: PolicyDecision & { effect: 'deny' },
  ): Promise<never> {
    await this.#audit.record({
      action,
      className: ref.class,
      // A purpose the policy does not declare is caller input and may hold anything; the rule id says enough.
      ctx: decision.rule === 'POL-PURPOSE-01' ? withoutPurpose(ctx) : ctx,
      key,
      dek: null,
      decision,
      outcome: { result: 'denied', code: decision.code },
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
    const facts = {
      action,
      className: null,
      ctx,
      key: null,
      dek: null,
      decision: ALLOW_PURGE,
      detail: { target },
    };
    let count: number;
    try {
      count = await run();
    } catch (error) {
      this.emit('store-error', { operation: 'purge', className: null, cause: error });
      await this.#audit.record({ ...facts, outcome: { result: 'error', code: codeOf(error) } });
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `the ${this.#store.name} store failed to purge`, {
        cause: error,
      });
    }
    await this.#audit.record({ ...facts, outcome: { result: 'ok', count } });
    return count;
  }

  #record(action: AuditAction, op: EntryOp, dek: CachedDek | null, outcome: AuditOutcome): Promise<void> {
    return this.#audit.record({
      action,
      className: op.ref.class,
      ctx: op.ctx,
      key: op.key,
      dek,
      decision: op.decision,
      outcome,
    });
  }
}

/** A store without tag bookkeeping of its own reaches an entry by its sealed tags: there is nothing to disagree. */
function carriesWhatItSeals(): boolean {
  return true;
}

/** Data-key errors come typed from the key path; anything else came from the store below it. */
function failureOf(error: unknown): Failure {
  return isStoreFailure(error) ? 'store' : 'key-service';
}

/** The store failed under the key path (loading or writing a data key record): a store outage, not a key one. */
function isStoreFailure(error: unknown): boolean {
  return !(error instanceof PhiCacheError) || error.code === 'ERR_STORE_UNAVAILABLE';
}

function isFactoryTimeout(error: unknown): boolean {
  return error instanceof PhiCacheError && error.code === 'ERR_FACTORY_TIMEOUT';
}

function codeOf(error: unknown): PhiCacheErrorCode {
  return error instanceof PhiCacheError ? error.code : 'ERR_STORE_UNAVAILABLE';
}
