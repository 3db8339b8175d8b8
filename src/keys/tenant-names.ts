import { hkdfSync } from 'node:crypto';
import { canonicalEncode } from '../crypto/canonical.js';
import { deriveTenantNameKey, hmacName } from '../crypto/key-name.js';
import { integerOption } from '../options.js';
import { Lru } from '../runtime/lru.js';

const FLEET_KEY_SALT = 'phicache/fleet-key/v1';

/** The name memo one NameKeyring shares among all its tenants, and how many names it had to compute. */
interface SharedNames {
  readonly memo: Lru<string, string>;
  computed: number;
}

/**
 * Every name phicache writes to a store, derived with the tenant's name key. A caller's string never reaches a
 * store raw, so it can neither leak there nor steer a Redis hash slot with braces. Besides the HMAC, a name says
 * only what kind of record it is and, for entries and data keys, the data class (a policy name such as
 * `encrypted-phi`, never caller data), so that `phicache ttl-audit` can hold each key to its class's cap.
 */
export class TenantNames {
  readonly #key: Buffer;
  /** Starts every memo slot of this tenant, so that tenants sharing the memo never share a slot. */
  readonly #prefix: string;
  /** Names already computed: an HMAC costs ~3 µs and hot entries are named on every read. */
  readonly #shared: SharedNames;
  #tenantTag: string | undefined;
  #keysTag: string | undefined;

  constructor(nameKey: Buffer, tenant: string, shared: SharedNames) {
    this.#key = nameKey;
    this.#prefix = `${tenant.length}:${tenant}`;
    this.#shared = shared;
  }

  /** The store key of an entry: its class, reference and the scope parts the class requires. */
  entry(className: string, resource: string, id: string, user: string, session: string): string {
    return this.#memoized(slot('e', className, resource, id, user, session), () => {
      return `phc:e:${className}:${hmacName(this.#key, ['entry', className, resource, id, user, session])}`;
    });
  }

  /** The reference hash auditors search for; it does not depend on scope, so one patient's records line up. */
  reference(className: string, resource: string, id: string): string {
    return this.#memoized(slot('r', className, resource, id), () => {
      return `hmac-sha256:${hmacName(this.#key, ['reference', className, resource, id])}`;
    });
  }

  tag(kind: string, value: string): string {
    return this.#memoized(slot('t', kind, value), () => `phc:t:${hmacName(this.#key, ['tag', kind, value])}`);
  }

  scope(part: 'user' | 'session', value: string): string {
    return this.#memoized(
      slot('s', part, value),
      () => `phc:s:${hmacName(this.#key, ['scope', part, value])}`,
    );
  }

  /** Carried by every entry of the tenant. Kept on the tenant's own object: it is named on every operation. */
  get tenantTag(): string {
    this.#tenantTag ??= `phc:s:${hmacName(this.#key, ['tenant'])}`;
    return this.#tenantTag;
  }

  /** Carried by every wrapped data key record of the tenant: deleting by it crypto-shreds the tenant. */
  get keysTag(): string {
    this.#keysTag ??= `phc:s:${hmacName(this.#key, ['tenant-keys'])}`;
    return this.#keysTag;
  }

  dekRecord(className: string, dekId: string): string {
    return `phc:k:${className}:${hmacName(this.#key, ['dek', className, dekId])}`;
  }

  /** The current data key of an epoch and generation (generation 0 keeps the name it had before rotation existed). */
  dekPointer(className: string, epoch: number, generation = 0): string {
    const parts =
      generation === 0 ? ['dek-current', className, epoch] : ['dek-current', className, epoch, generation];
    return `phc:p:${className}:${hmacName(this.#key, parts)}`;
  }

  /** Where a purge of `target` (a tag, scope, tenant or entry name) is remembered in a shared store. */
  purgeMarker(target: string): string {
    return `phc:m:${hmacName(this.#key, ['purge-marker', target])}`;
  }

  /** The MAC of a purge marker: only a holder of the name key can write one that instances believe. */
  markerMac(target: string, at: number): string {
    return hmacName(this.#key, ['purge-marker-mac', target, at]);
  }

  #memoized(at: string, make: () => string): string {
    const memoKey = this.#prefix + at;
    const known = this.#shared.memo.get(memoKey);
    if (known !== undefined) return known;
    const name = make();
    this.#shared.computed += 1;
    this.#shared.memo.set(memoKey, name);
    return name;
  }
}

/** A memo slot: length-prefixed parts, so no two different part lists share one. */
function slot(kind: string, ...parts: string[]): string {
  let out = kind;
  for (const part of parts) out += `${part.length}:${part}`;
  return out;
}

export interface NameKeyringOptions {
  /** Tenants whose name key is kept derived (HKDF costs ~10 µs), least recently used dropped first. Default 10,000. */
  readonly maxTenants?: number;
  /**
   * Names kept computed, for all tenants together, least recently used dropped first. Default 65,536 (a few MiB).
   * A working set larger than this pays an HMAC per name again, so size it to the hot entries of all tenants.
   */
  readonly maxNames?: number;
}

export interface NameKeyringStats {
  readonly tenants: number;
  readonly names: number;
  /** Names computed (HMACs) since the keyring was made: memo misses. */
  readonly computed: number;
}

/**
 * Name keys per tenant, derived from the name secret, and one memo of names shared by every tenant. Both are
 * bounded LRUs: per-tenant memos multiplied with the tenants (2 M reads over 1,000 tenants grew the heap by 1.9 GB), and a
 * memo cleared whole when full missed on every name of a working set just above its size.
 */
export class NameKeyring {
  readonly #secret: Buffer;
  readonly #tenants: Lru<string, TenantNames>;
  readonly #shared: SharedNames;
  #closed = false;

  constructor(nameSecret: Buffer, options: NameKeyringOptions = {}) {
    this.#secret = nameSecret;
    const maxTenants = integerOption('name keyring', 'maxTenants', options.maxTenants ?? 10_000, 1);
    const maxNames = integerOption('name keyring', 'maxNames', options.maxNames ?? 65_536, 1);
    this.#tenants = new Lru(maxTenants);
    this.#shared = { memo: new Lru(maxNames), computed: 0 };
  }

  forTenant(tenant: string): TenantNames {
    // After close the secret is zeros: names derived from it would be HMACs under a known key.
    if (this.#closed) throw new TypeError('this name keyring is closed');
    let names = this.#tenants.get(tenant);
    if (names === undefined) {
      names = new TenantNames(deriveTenantNameKey(this.#secret, tenant), tenant, this.#shared);
      this.#tenants.set(tenant, names);
    }
    return names;
  }

  /**
   * A key for the fleet as a whole rather than one tenant (the key states' MAC, the sealed owner of a data key
   * record): HKDF of the name secret under its own salt, so it is no tenant's name key whatever the tenant's name.
   */
  fleetKey(purpose: string): Buffer {
    if (this.#closed) throw new TypeError('this name keyring is closed');
    return Buffer.from(hkdfSync('sha256', this.#secret, FLEET_KEY_SALT, canonicalEncode([purpose]), 32));
  }

  stats(): NameKeyringStats {
    return { tenants: this.#tenants.size, names: this.#shared.memo.size, computed: this.#shared.computed };
  }

  /**
   * Zeroes the secret and drops every name key and name. A tenant's name key is not zeroed: an operation still in
   * flight may hold it, and a zeroed key would name its entries with HMACs under a known key.
   */
  close(): void {
    this.#closed = true;
    this.#tenants.clear();
    this.#shared.memo.clear();
    this.#secret.fill(0);
  }
}
