/**
 * Which sessions of a store are live, so that `all()` and `length()` can answer. Members are reference hashes of
 * session ids (HMACs), never the ids; each carries the time its entry expires, and a member past it is dropped.
 * The key names one store's tenant and is itself an HMAC name.
 */
export interface SessionIndex {
  /** Adds the member, or moves its expiry to `expiresAt` (ms since the epoch). */
  add(key: string, member: string, expiresAt: number, now: number): Promise<void>;
  remove(key: string, member: string, now: number): Promise<void>;
  /** The members whose expiry is after `now`; expired ones are dropped on the way. */
  members(key: string, now: number): Promise<string[]>;
  /** Forgets every member of the key. */
  clear(key: string): Promise<void>;
}

/** The index of the embedded store: one process holds every session, so a map is the whole truth. */
export class MemorySessionIndex implements SessionIndex {
  readonly #keys = new Map<string, Map<string, number>>();

  async add(key: string, member: string, expiresAt: number, now: number): Promise<void> {
    const members = this.#live(key, now);
    members.set(member, expiresAt);
    this.#keys.set(key, members);
  }

  async remove(key: string, member: string, now: number): Promise<void> {
    const members = this.#live(key, now);
    members.delete(member);
    if (members.size === 0) this.#keys.delete(key);
  }

  async members(key: string, now: number): Promise<string[]> {
    return [...this.#live(key, now).keys()];
  }

  async clear(key: string): Promise<void> {
    this.#keys.delete(key);
  }

  /** The key's members with the expired ones dropped, so the map never grows past the live sessions for long. */
  #live(key: string, now: number): Map<string, number> {
    const members = this.#keys.get(key) ?? new Map<string, number>();
    for (const [member, expiresAt] of members) if (expiresAt <= now) members.delete(member);
    return members;
  }
}
