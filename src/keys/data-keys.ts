import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import { SingleFlight } from '../runtime/single-flight.js';
import type { CacheStore } from '../store/cache-store.js';
import type { CachedDek, DekCache } from './dek-cache.js';
import type { EncryptionContext, KeyProvider } from './key-provider.js';
import { activeKid, type KeyStates, versionOf } from './key-states.js';
import type { TenantNames } from './tenant-names.js';

export interface DataKeysOptions {
  readonly provider: KeyProvider;
  readonly store: CacheStore;
  readonly cache: DekCache;
  /** Length of a DEK epoch in ms: new writes move to a new data key when it ends. */
  readonly epochMs: number;
  /** Milliseconds since the epoch, the cache's clock. */
  readonly clock: () => number;
  /** Called when a new data key is made, before it is stored or used, so that its creation is audited. */
  readonly onCreate: (dek: CachedDek) => Promise<void>;
  /** Called when the epoch's current key record does not unwrap (it was altered), before a new key replaces it. */
  readonly onDamaged: (dek: CachedDek) => Promise<void>;
  /** The fleet's key states as this instance knows them: which KEK version wraps, which generation seals. */
  readonly states: () => KeyStates;
  /** Seals the owner (tenant, class) of each record, so that rotation can find a record's context by scanning. */
  readonly ownerKey: Buffer;
  /**
   * A tag every data key record of the fleet carries (besides its tenant's): rotation lists the records through
   * it, at a cost that follows the number of data keys rather than of entries.
   */
  readonly recordsTag: string;
}

/** How long the key service counts as down after a failed call, before a call may try it again. */
const KEY_SERVICE_COOLDOWN_MS = 5000;

/** Extra life of a DEK record past its last possible entry, for clock skew between instances. */
const RECORD_GRACE_MS = 60_000;

/**
 * A wrapped data key as stored. Version 2 adds what rotation needs to rewrap a record it finds by scanning: the
 * key's id, its generation, and its owner (tenant and class) sealed under the fleet's owner key, so the store
 * learns no tenant name. Version 1 records (written before rotation existed) are still read, but rotation cannot
 * find or rewrap them: they name no owner. They leave by expiry, at most an epoch plus the class cap after an upgrade.
 */
interface DekRecord {
  v: 1 | 2;
  kid: string;
  epoch: number;
  wrapped: string;
  gen?: number;
  id?: string;
  owner?: string;
}

/** A record found by a scan, with its owner opened. */
export interface FoundDekRecord {
  readonly storeKey: string;
  readonly raw: Buffer;
  readonly kid: string;
  readonly tenant: string;
  readonly className: string;
  readonly epoch: number;
  readonly gen: number;
  readonly id: string;
}

/** What `rewrap` did to one record. */
export type RewrapOutcome = 'rewrapped' | 'current' | 'gone';

/**
 * Finds or makes the data key (DEK) for a tenant, class and epoch. DEKs are shared by every instance: the wrapped
 * record sits in the store next to the data, with a TTL that outlives every entry it can have sealed, and a
 * pointer record (written only if absent) tells all instances which DEK is current for the epoch.
 */
export class DataKeys {
  readonly #options: DataKeysOptions;
  readonly #pending = new SingleFlight<CachedDek>();
  /**
   * Per tenant, how often it was shredded as far as this instance knows. A key loaded or made while the count
   * moved is discarded, so a load in flight during a shred cannot bring the shredded key back.
   */
  readonly #shreds = new Map<string, number>();
  /** Per tenant, the latest shred time this instance has acted on. */
  readonly #shredSeen = new Map<string, number>();
  #downUntil = 0;

  constructor(options: DataKeysOptions) {
    this.#options = options;
  }

  epochAt(now: number): number {
    return Math.floor(now / this.#options.epochMs);
  }

  /**
   * The DEK held in memory to seal one new entry with, counted against its message budget, or undefined when it
   * must be loaded or made (then call `forSealing`). Synchronous, so the caller can check and use it in one step.
   */
  heldForSealing(tenant: string, className: string, now: number): CachedDek | undefined {
    return this.#options.cache.takeForSealing(tenant, className, this.epochAt(now), now);
  }

  /**
   * The fleet's key states changed: a new generation (a rekey or a promoted KEK version) means every held sealing
   * key seals nothing more, and a retired KEK version means every key it wrapped is zeroed here.
   */
  observeStates(states: KeyStates, previous: KeyStates): void {
    if (states.generation !== previous.generation) this.#options.cache.dropSealing();
    for (const version of states.keks) {
      if (version.state === 'retired' && versionOf(previous, version.kid)?.state !== 'retired') {
        this.#options.cache.evictKid(version.kid);
      }
    }
  }

  /** The DEK held in memory that sealed an entry, or undefined when it must be loaded (then call `forOpening`). */
  heldForOpening(tenant: string, className: string, id: string, now: number): CachedDek | undefined {
    return this.#options.cache.get(tenant, className, id, now);
  }

  /** The DEK to seal one new entry with, counted against its message budget. */
  async forSealing(tenant: string, names: TenantNames, className: string, maxTtlMs: number, now: number) {
    const epoch = this.epochAt(now);
    const gen = this.#options.states().generation;
    const cached = this.#options.cache.takeForSealing(tenant, className, epoch, now);
    if (cached !== undefined && cached.gen === gen) return cached;
    const slot = JSON.stringify(['seal', tenant, className, epoch, gen]);
    await this.#coalesce(slot, () => this.#loadOrCreate(tenant, names, className, epoch, gen, maxTtlMs, now));
    const dek = this.#options.cache.takeForSealing(tenant, className, epoch, now);
    // The budget was spent by concurrent writers between load and take: start a fresh key for the epoch.
    if (dek !== undefined && dek.gen === gen) return dek;
    const fresh = await this.#create(tenant, names, className, epoch, gen, maxTtlMs, now, true);
    fresh.sealed += 1;
    return fresh;
  }

  /** The DEK that sealed an entry, from memory or from its wrapped record. */
  async forOpening(
    tenant: string,
    names: TenantNames,
    className: string,
    epoch: number,
    id: string,
    now: number,
  ) {
    const cached = this.#options.cache.get(tenant, className, id, now);
    if (cached !== undefined) return cached;
    const slot = JSON.stringify(['open', tenant, className, id]);
    return this.#coalesce(slot, () => this.#load(tenant, names, className, epoch, id, now, undefined));
  }

  /** Deletes every wrapped DEK record of the tenant and zeroes the unwrapped copies held here. */
  async shred(tenant: string, names: TenantNames): Promise<number> {
    this.#forgetTenant(tenant);
    try {
      return await this.#options.store.deleteByTag(names.keysTag);
    } finally {
      this.#forgetTenant(tenant);
    }
  }

  /**
   * The tenant was shredded at `at` (as read from its purge marker, possibly by another instance): the first time
   * this instance sees it, every key of the tenant held here is zeroed and loads in flight are discarded.
   */
  observeShred(tenant: string, at: number): void {
    if (at === Number.NEGATIVE_INFINITY) return;
    if ((this.#shredSeen.get(tenant) ?? Number.NEGATIVE_INFINITY) >= at) return;
    this.#shredSeen.set(tenant, at);
    this.#forgetTenant(tenant);
  }

  #forgetTenant(tenant: string): void {
    this.#shreds.set(tenant, (this.#shreds.get(tenant) ?? 0) + 1);
    this.#options.cache.evictTenant(tenant);
  }

  /** Throws when the tenant was shredded since `shreds` was read: the key just loaded or made must not be used. */
  #assertNotShredded(tenant: string, shreds: number, key: Buffer): void {
    if ((this.#shreds.get(tenant) ?? 0) === shreds) return;
    key.fill(0);
    throw new PhiCacheError('ERR_KEY_NOT_FOUND', 'the tenant was shredded while its data key was loading');
  }

  async #loadOrCreate(
    tenant: string,
    names: TenantNames,
    className: string,
    epoch: number,
    gen: number,
    maxTtlMs: number,
    now: number,
  ) {
    const pointer = await this.#options.store.get(names.dekPointer(className, epoch, gen));
    const spent =
      pointer !== undefined && this.#options.cache.isSpent(tenant, className, pointer.toString('hex'));
    if (pointer !== undefined && pointer.length === 16 && !spent) {
      const id = pointer.toString('hex');
      try {
        return await this.#load(tenant, names, className, epoch, id, now, gen);
      } catch (error) {
        // A pointer whose record is gone (shredded, evicted) must not block writes: make a new key. Nor must a
        // record that was altered: that is tamper, recorded as such, and the epoch moves on to a new key.
        if (error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_AUTH') {
          await this.#options.onDamaged(damagedKey(tenant, className, epoch, id, now));
        } else if (!(error instanceof PhiCacheError && error.code === 'ERR_KEY_NOT_FOUND')) {
          throw error;
        }
      }
    }
    return this.#create(tenant, names, className, epoch, gen, maxTtlMs, now, pointer !== undefined);
  }

  async #load(
    tenant: string,
    names: TenantNames,
    className: string,
    epoch: number,
    id: string,
    now: number,
    /** The generation it is loaded to seal in; undefined when it is loaded to open an entry. */
    sealingGen: number | undefined,
  ) {
    const shreds = this.#shreds.get(tenant) ?? 0;
    const raw = await this.#options.store.get(names.dekRecord(className, id));
    const record = raw === undefined ? undefined : parseRecord(raw);
    const gen = record?.gen ?? 0;
    if (record === undefined || record.epoch !== epoch || (sealingGen !== undefined && gen !== sealingGen)) {
      throw new PhiCacheError('ERR_KEY_NOT_FOUND', `data key ${id} is not in the store`);
    }
    this.#assertUsable(record.kid);
    const key = await this.#keyService(() =>
      this.#options.provider.unwrapDataKey(
        { kid: record.kid, wrapped: Buffer.from(record.wrapped, 'base64') },
        contextOf(tenant, className, epoch, id),
      ),
    );
    this.#assertNotShredded(tenant, shreds, key);
    const dek: CachedDek = {
      tenant,
      className,
      epoch,
      gen,
      id,
      kid: record.kid,
      key,
      loadedAt: now,
      sealed: 0,
      evicted: false,
    };
    this.#options.cache.put(dek, sealingGen !== undefined && this.#isCurrent(dek));
    return dek;
  }

  /** A KEK version the fleet retired unwraps nothing here, whatever the key service would still do. */
  #assertUsable(kid: string): void {
    if (versionOf(this.#options.states(), kid)?.state === 'retired') {
      throw new PhiCacheError('ERR_KEY_DISABLED', `KEK version ${kid} is retired`);
    }
  }

  /** Whether a key may seal: made in the current generation under the active KEK version. */
  isCurrent(dek: CachedDek): boolean {
    return this.#isCurrent(dek);
  }

  #isCurrent(dek: CachedDek): boolean {
    const states = this.#options.states();
    return dek.gen === states.generation && (states.seq === 0 || dek.kid === activeKid(states));
  }

  async #create(
    tenant: string,
    names: TenantNames,
    className: string,
    epoch: number,
    gen: number,
    maxTtlMs: number,
    now: number,
    replace: boolean,
  ): Promise<CachedDek> {
    const id = randomBytes(16).toString('hex');
    const shreds = this.#shreds.get(tenant) ?? 0;
    // A fleet that never rotated through phicache wraps under whatever the service calls current (it may rotate on
    // its own schedule); once phicache's key states exist, they name the version.
    const states = this.#options.states();
    const wrap = states.seq === 0 ? {} : { kid: activeKid(states) };
    const generated = await this.#keyService(() =>
      this.#options.provider.generateDataKey(contextOf(tenant, className, epoch, id), wrap),
    );
    const dek: CachedDek = {
      tenant,
      className,
      epoch,
      gen,
      id,
      kid: generated.kid,
      key: generated.plaintext,
      loadedAt: now,
      sealed: 0,
      evicted: false,
    };
    const { store } = this.#options;
    try {
      // Audited before it is stored or used: a key whose creation could not be recorded never seals anything.
      await this.#options.onCreate(dek);
      const epochEnd = (epoch + 1) * this.#options.epochMs;
      const ttlMs = Math.max(1, epochEnd - now) + maxTtlMs + RECORD_GRACE_MS;
      const tags = [names.keysTag, this.#options.recordsTag];
      // Key records leave only by expiry or a shred: a store must not evict them before the entries they seal.
      const keyRecord = true;
      const record: DekRecord = {
        v: 2,
        kid: generated.kid,
        epoch,
        wrapped: generated.wrapped.toString('base64'),
        gen,
        id,
        owner: sealOwner(this.#options.ownerKey, id, tenant, className),
      };
      await store.set(names.dekRecord(className, id), Buffer.from(JSON.stringify(record)), {
        ttlMs,
        tags,
        keyRecord,
      });
      const pointerKey = names.dekPointer(className, epoch, gen);
      const pointer = Buffer.from(id, 'hex');
      if (replace) await store.set(pointerKey, pointer, { ttlMs, tags, keyRecord });
      else if (!(await store.add(pointerKey, pointer, { ttlMs, tags, keyRecord }))) {
        // Another instance made the epoch's key first: use theirs, so that all instances share one DEK.
        generated.plaintext.fill(0);
        return this.#loadOrCreate(tenant, names, className, epoch, gen, maxTtlMs, now);
      }
      if ((this.#shreds.get(tenant) ?? 0) !== shreds) {
        // Shredded while this key was being made: its record must not outlive the shred either.
        await store.delete(names.dekRecord(className, id)).catch(() => undefined);
        this.#assertNotShredded(tenant, shreds, generated.plaintext);
      }
    } catch (error) {
      generated.plaintext.fill(0);
      throw error;
    }
    this.#options.cache.put(dek, this.#isCurrent(dek));
    return dek;
  }

  /** Every data key record in the store that rotation can act on (version 2), with its owner opened. */
  async *records(): AsyncGenerator<FoundDekRecord> {
    const { store, ownerKey, recordsTag } = this.#options;
    const keys =
      store.keysByTag !== undefined
        ? store.keysByTag(recordsTag)
        : store.scan !== undefined
          ? store.scan('phc:k:')
          : undefined;
    if (keys === undefined) throw new TypeError(`the ${store.name} store cannot list data key records`);
    for await (const storeKey of keys) {
      if (!storeKey.startsWith('phc:k:')) continue;
      const raw = await store.get(storeKey);
      const record = raw === undefined ? undefined : parseRecord(raw);
      if (raw === undefined || record?.v !== 2) continue;
      const owner = openOwner(ownerKey, record);
      if (owner === undefined) continue;
      yield {
        storeKey,
        raw,
        kid: record.kid,
        tenant: owner.tenant,
        className: owner.className,
        epoch: record.epoch,
        gen: record.gen ?? 0,
        id: record.id!,
      };
    }
  }

  /**
   * Rewraps one record under `kid` (server-side where the service can) and writes it back only if the record did
   * not change meanwhile: no entry is touched, and the cost is one key service call per data key.
   */
  async rewrap(found: FoundDekRecord, kid: string): Promise<RewrapOutcome> {
    if (found.kid === kid) return 'current';
    const record = parseRecord(found.raw)!;
    const rewrapped = await this.#keyService(() =>
      this.#options.provider.rewrapDataKey(
        { kid: record.kid, wrapped: Buffer.from(record.wrapped, 'base64') },
        contextOf(found.tenant, found.className, found.epoch, found.id),
        { kid },
      ),
    );
    const next: DekRecord = { ...record, kid: rewrapped.kid, wrapped: rewrapped.wrapped.toString('base64') };
    const { store } = this.#options;
    if (store.replaceIfSame === undefined)
      throw new TypeError(`the ${store.name} store cannot replace a record`);
    const replaced = await store.replaceIfSame(found.storeKey, found.raw, Buffer.from(JSON.stringify(next)));
    return replaced ? 'rewrapped' : 'gone';
  }

  /**
   * True while the key service is known to be down: from a failed call until KEY_SERVICE_COOLDOWN_MS later, when
   * the next call that needs it tries again. The data class's failure mode decides what happens meanwhile.
   */
  keyServiceDown(now: number): boolean {
    return now < this.#downUntil;
  }

  async #keyService<T>(call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      this.#downUntil = 0;
      return result;
    } catch (error) {
      if (error instanceof PhiCacheError && error.code === 'ERR_KEY_SERVICE_UNAVAILABLE') {
        this.#downUntil = this.#options.clock() + KEY_SERVICE_COOLDOWN_MS;
      }
      throw error;
    }
  }

  #coalesce(slot: string, load: () => Promise<CachedDek>): Promise<CachedDek> {
    return this.#pending.run(slot, load);
  }
}

/** Bound into every wrap, so a wrapped DEK moved to another tenant, class or epoch does not unwrap. */
function contextOf(tenant: string, className: string, epoch: number, id: string): EncryptionContext {
  return {
    'phicache:tenant': tenant,
    'phicache:class': className,
    'phicache:epoch': String(epoch),
    'phicache:dek': id,
  };
}

/** The key an altered record claimed to hold, for the audit record: ids only, no key material. */
function damagedKey(tenant: string, className: string, epoch: number, id: string, now: number): CachedDek {
  return {
    tenant,
    className,
    epoch,
    gen: 0,
    id,
    kid: 'unknown',
    key: Buffer.alloc(0),
    loadedAt: now,
    sealed: 0,
    evicted: true,
  };
}

const OWNER_AAD = 'phicache/dek-owner/v1';

/** AES-256-GCM of [tenant, class] under the fleet's owner key, bound to the key id: base64 of nonce|ciphertext|tag. */
function sealOwner(key: Buffer, id: string, tenant: string, className: string): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(`${OWNER_AAD}|${id}`));
  const body = Buffer.concat([cipher.update(JSON.stringify([tenant, className])), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
}

function openOwner(key: Buffer, record: DekRecord): { tenant: string; className: string } | undefined {
  try {
    const sealed = Buffer.from(record.owner!, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
    decipher.setAAD(Buffer.from(`${OWNER_AAD}|${record.id}`));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const text = Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    const [tenant, className] = JSON.parse(text.toString('utf8')) as unknown[];
    if (typeof tenant === 'string' && typeof className === 'string') return { tenant, className };
  } catch {
    // Another keyset's record, or an altered one: rotation leaves it alone, and it expires by itself.
  }
  return undefined;
}

function parseRecord(raw: Buffer): DekRecord | undefined {
  try {
    const record = JSON.parse(raw.toString('utf8')) as Partial<DekRecord>;
    const common =
      typeof record.kid === 'string' &&
      typeof record.wrapped === 'string' &&
      Number.isSafeInteger(record.epoch);
    if (common && record.v === 1) return record as DekRecord;
    if (
      common &&
      record.v === 2 &&
      Number.isSafeInteger(record.gen) &&
      typeof record.id === 'string' &&
      /^[0-9a-f]{32}$/.test(record.id) &&
      typeof record.owner === 'string'
    ) {
      return record as DekRecord;
    }
  } catch {
    // A damaged record is as good as a missing one: the entries it sealed become misses.
  }
  return undefined;
}
