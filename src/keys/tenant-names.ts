import { deriveTenantNameKey, hmacName } from '../crypto/key-name.js';

/**
 * Every name phicache writes to a store, derived with the tenant's name key. A caller's string never reaches a
 * store raw, so it can neither leak there nor steer a Redis hash slot with braces. Besides the HMAC, a name says
 * only what kind of record it is and, for entries and data keys, the data class (a policy name such as
 * `encrypted-phi`, never caller data), so that `phicache ttl-audit` can hold each key to its class's cap.
 */
export class TenantNames {
  readonly #key: Buffer;
  /** Names already computed: an HMAC costs ~3 µs and hot entries are named on every read. Bounded, in-process. */
  readonly #memo = new Map<string, string>();

  constructor(nameKey: Buffer) {
    this.#key = nameKey;
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

  /** Carried by every entry of the tenant. */
  get tenantTag(): string {
    return this.#memoized('tenant', () => `phc:s:${hmacName(this.#key, ['tenant'])}`);
  }

  /** Carried by every wrapped data key record of the tenant: deleting by it crypto-shreds the tenant. */
  get keysTag(): string {
    return this.#memoized('keys', () => `phc:s:${hmacName(this.#key, ['tenant-keys'])}`);
  }

  dekRecord(className: string, dekId: string): string {
    return `phc:k:${className}:${hmacName(this.#key, ['dek', className, dekId])}`;
  }

  dekPointer(className: string, epoch: number): string {
    return `phc:p:${className}:${hmacName(this.#key, ['dek-current', className, epoch])}`;
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
    const known = this.#memo.get(at);
    if (known !== undefined) return known;
    const name = make();
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
    this.#memo.set(at, name);
    return name;
  }
}

const MEMO_LIMIT = 8192;

/** A memo slot: length-prefixed parts, so no two different part lists share one. */
function slot(kind: string, ...parts: string[]): string {
  let out = kind;
  for (const part of parts) out += `${part.length}:${part}`;
  return out;
}

/** Name keys per tenant, derived once from the name secret and kept (bounded) because HKDF costs ~10 µs. */
export class NameKeyring {
  readonly #secret: Buffer;
  readonly #tenants = new Map<string, TenantNames>();
  readonly #max: number;

  constructor(nameSecret: Buffer, maxTenants = 10_000) {
    this.#secret = nameSecret;
    this.#max = maxTenants;
  }

  forTenant(tenant: string): TenantNames {
    let names = this.#tenants.get(tenant);
    if (names === undefined) {
      names = new TenantNames(deriveTenantNameKey(this.#secret, tenant));
      if (this.#tenants.size >= this.#max) this.#tenants.delete(this.#tenants.keys().next().value as string);
      this.#tenants.set(tenant, names);
    }
    return names;
  }

  close(): void {
    this.#tenants.clear();
    this.#secret.fill(0);
  }
}
