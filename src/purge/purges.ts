import type { DataKeys } from '../keys/data-keys.js';
import type { TenantNames } from '../keys/tenant-names.js';
import type { CacheStore } from '../store/cache-store.js';
import type { PurgeLedger } from './purge-ledger.js';

/**
 * The purges behind PhiCache's purge and delete methods. Each is recorded in the ledger before the store is
 * touched, so a fill or a read racing it already sees it, and so it holds here even when the store fails.
 */
export class Purges {
  readonly #store: CacheStore;
  readonly #ledger: PurgeLedger;
  readonly #dataKeys: DataKeys;
  readonly #clock: () => number;

  constructor(store: CacheStore, ledger: PurgeLedger, dataKeys: DataKeys, clock: () => number) {
    this.#store = store;
    this.#ledger = ledger;
    this.#dataKeys = dataKeys;
    this.#clock = clock;
  }

  /** Every entry carrying the tag (a tag, a user or session scope). */
  async tag(names: TenantNames, tag: string): Promise<number> {
    await this.#ledger.record(names, tag, this.#clock());
    return this.#store.deleteByTag(tag);
  }

  /** One entry. */
  async entry(names: TenantNames, storeKey: string): Promise<boolean> {
    await this.#ledger.record(names, storeKey, this.#clock());
    return this.#store.delete(storeKey);
  }

  /**
   * Crypto-shreds a tenant: its data keys are destroyed in the store and here (other instances drop theirs when
   * they read the tenant's purge marker), then its entries are deleted.
   */
  async tenant(tenant: string, names: TenantNames): Promise<number> {
    await this.#ledger.record(names, names.tenantTag, this.#clock());
    await this.#dataKeys.shred(tenant, names);
    return this.#store.deleteByTag(names.tenantTag);
  }
}
