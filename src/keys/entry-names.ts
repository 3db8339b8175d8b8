import { PreparedBinding } from '../crypto/envelope.js';
import type { DataClass } from '../policy/policy.js';
import { Lru } from '../runtime/lru.js';
import type { TenantNames } from './tenant-names.js';

/** The scope parts of a context that a class may require. */
export interface ScopeParts {
  readonly user?: string;
  readonly session?: string;
}

/** The store key of an entry: the class's scope parts are part of the name, so two users never share an entry. */
export function entryKey(
  names: TenantNames,
  dataClass: DataClass,
  resource: string,
  id: string,
  scope: ScopeParts,
): string {
  const user = dataClass.scope.includes('user') ? (scope.user ?? '') : '';
  const session = dataClass.scope.includes('session') ? (scope.session ?? '') : '';
  return names.entry(dataClass.name, resource, id, user, session);
}

/** The scope tags an entry carries, so that a logout or session end reaches it. */
export function scopeTags(names: TenantNames, dataClass: DataClass, scope: ScopeParts): string[] {
  const tags: string[] = [];
  if (dataClass.scope.includes('user') && scope.user !== undefined)
    tags.push(names.scope('user', scope.user));
  if (dataClass.scope.includes('session') && scope.session !== undefined)
    tags.push(names.scope('session', scope.session));
  return tags;
}

/** Every name one operation on an entry needs, derived together. */
export interface EntryNames {
  /** The reference hash recorded in the audit trail. */
  readonly reference: string;
  readonly storeKey: string;
  /** The tags every write of the entry carries whatever its caller tags: the tenant's tag, then its scope tags. */
  readonly baseTags: readonly string[];
  /** The purges a read of the entry surely has to check: its base tags, then the entry itself. */
  readonly purgeNames: readonly string[];
  /** The envelope's associated data for (tenant, class, store key), encoded once. */
  readonly binding: PreparedBinding;
}

/** One remembered entry: the parts it was named from, and its names. */
interface Named {
  readonly tenant: string;
  readonly className: string;
  readonly resource: string;
  readonly user: string | undefined;
  readonly session: string | undefined;
  readonly names: EntryNames;
}

/** Entries remembered under one id (the same id in other tenants, classes, resources or scopes). */
const SAME_ID_HELD = 8;

/**
 * The names of hot entries, remembered whole. Each name is an HMAC memoized by TenantNames already, but an operation
 * asked for three or four of them, and each memo lookup builds and hashes a string of its own; one lookup here
 * replaces them, and the envelope binding is encoded once per entry rather than per seal and open. Bounded like
 * every memo (CLOCK). Looked up by the entry's id alone, the part that tells entries apart, and then by comparing
 * the other parts: building and hashing one string of every part cost more than the rest of the lookup.
 */
export class EntryNameMemo {
  readonly #memo: Lru<string, Named[]>;

  constructor(maxEntries: number) {
    this.#memo = new Lru(maxEntries);
  }

  of(
    names: TenantNames,
    tenant: string,
    dataClass: DataClass,
    resource: string,
    id: string,
    scope: ScopeParts,
  ): EntryNames {
    const user = dataClass.scope.includes('user') ? scope.user : undefined;
    const session = dataClass.scope.includes('session') ? scope.session : undefined;
    const className = dataClass.name;
    const held = this.#memo.get(id);
    if (held !== undefined) {
      for (const named of held) {
        if (
          named.tenant === tenant &&
          named.className === className &&
          named.resource === resource &&
          named.user === user &&
          named.session === session
        )
          return named.names;
      }
    }
    const storeKey = entryKey(names, dataClass, resource, id, scope);
    const baseTags = Object.freeze([names.tenantTag, ...scopeTags(names, dataClass, scope)]);
    const made: EntryNames = Object.freeze({
      reference: names.reference(className, resource, id),
      storeKey,
      baseTags,
      purgeNames: Object.freeze([...baseTags, storeKey]),
      binding: PreparedBinding.of({ tenant, className, storeKey }),
    });
    const named: Named = { tenant, className, resource, user, session, names: made };
    if (held === undefined) this.#memo.set(id, [named]);
    else {
      if (held.length >= SAME_ID_HELD) held.shift();
      held.push(named);
    }
    return made;
  }

  clear(): void {
    this.#memo.clear();
  }
}
