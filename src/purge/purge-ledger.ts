import { timingSafeEqual } from 'node:crypto';
import type { TenantNames } from '../keys/tenant-names.js';
import { Lru } from '../runtime/lru.js';
import type { CacheStore } from '../store/cache-store.js';

export interface PurgeLedgerOptions {
  readonly store: CacheStore;
  /** Whether other instances share the store: then every purge is also published there as a marker. */
  readonly shared: boolean;
  /** Milliseconds since the epoch, the cache's clock. */
  readonly clock: () => number;
  /** How long a purge is remembered, in ms: at least the longest class cap, so no entry older than it still lives. */
  readonly retainMs: number;
  /** How long what was read of a marker is trusted before it is read again, in ms: the fleet-wide bound. */
  readonly refreshMs: number;
  /** Names remembered at once; the least recently used is forgotten first. */
  readonly maxNames: number;
}

interface Known {
  /** The latest purge of the name that this instance made or read, in ms; -Infinity for none. */
  purgedAt: number;
  /** When the store's marker was last read (or this instance purged the name). */
  checkedAt: number;
  /** The local purge sequence number of this instance's latest purge of the name; 0 for none. */
  sequence: number;
}

/**
 * What makes a purge final (promise PHI-PURGE-01). A purge of a tag, a scope, a tenant or one entry (a delete) is
 * remembered for at least the longest class cap, here and, when the store is shared, as an authenticated marker in
 * the store that every instance reads at most `refreshMs` after it last looked. An entry whose sealed creation time
 * is older than a purge of any name it carries is refused wherever it comes from: a fill that started before the
 * purge, or a ciphertext written back into the store by someone who saved it. The marker's MAC is keyed by the
 * tenant's name key, so nobody without it can forge or back-date one; deleting a marker only costs the instances
 * that have not read it yet, and never this one.
 */
export class PurgeLedger {
  readonly #options: PurgeLedgerOptions;
  readonly #known: Lru<string, Known>;
  #sequence = 0;
  #sweptAt = Number.NEGATIVE_INFINITY;

  constructor(options: PurgeLedgerOptions) {
    this.#options = options;
    this.#known = new Lru(options.maxNames);
  }

  /** Names remembered right now. */
  get size(): number {
    return this.#known.size;
  }

  /** This instance's purge count: a fill notes it when it starts and asks `purgedSince` before it writes. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Records a purge of `target` at `at`, locally first (it holds even if the store fails), then in the store. */
  async record(names: TenantNames, target: string, at: number): Promise<void> {
    this.#sequence += 1;
    const known = this.#touch(target);
    known.purgedAt = Math.max(known.purgedAt, at);
    known.checkedAt = at;
    known.sequence = this.#sequence;
    if (!this.#options.shared) return;
    const marker = Buffer.from(
      JSON.stringify({ at: known.purgedAt, mac: names.markerMac(target, known.purgedAt) }),
    );
    await this.#options.store.set(names.purgeMarker(target), marker, {
      ttlMs: this.#options.retainMs,
    });
  }

  /** Whether this instance purged any of `targets` after its purge count was `sequence`. */
  purgedSince(targets: readonly string[], sequence: number): boolean {
    if (sequence === this.#sequence) return false;
    for (const target of targets) {
      const known = this.#known.get(target);
      if (known !== undefined && known.sequence > sequence) return true;
    }
    return false;
  }

  /**
   * The latest purge of any of `targets` when no store marker of theirs is due to be read again (always, on a
   * store nobody shares), -Infinity for none; undefined when one is due, and then only `latest` answers.
   * Synchronous, so the common case costs no promise.
   */
  latestKnown(targets: readonly string[]): number | undefined {
    const shared = this.#options.shared;
    // An unshared store that never saw a purge here (the common embedded case) has nothing to look up.
    if (!shared && this.#known.size === 0) return Number.NEGATIVE_INFINITY;
    const now = shared ? this.#options.clock() : 0;
    let latest = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < targets.length; i++) {
      const known = this.#known.get(targets[i]!);
      if (known === undefined) {
        if (shared) return undefined;
        continue;
      }
      if (shared && now - known.checkedAt >= this.#options.refreshMs) return undefined;
      if (known.purgedAt > latest) latest = known.purgedAt;
    }
    return latest;
  }

  /** The latest purge of any of `targets` known now, reading the store's markers that are due; -Infinity for none. */
  async latest(names: TenantNames, targets: readonly string[]): Promise<number> {
    const now = this.#options.clock();
    let latest = Number.NEGATIVE_INFINITY;
    const due: string[] = [];
    for (const target of targets) {
      const known = this.#known.get(target);
      if (known !== undefined) latest = Math.max(latest, known.purgedAt);
      if (this.#options.shared && (known === undefined || now - known.checkedAt >= this.#options.refreshMs)) {
        due.push(target);
      }
    }
    if (due.length === 0) return latest;
    // Markers are separate keys, possibly on separate Cluster nodes: they are read together, not one by one.
    const markers = await Promise.all(
      due.map((target) => this.#options.store.get(names.purgeMarker(target))),
    );
    for (const [i, target] of due.entries()) {
      const known = this.#touch(target);
      const at = markerTime(names, target, markers[i]);
      known.purgedAt = Math.max(known.purgedAt, at);
      known.checkedAt = now;
      latest = Math.max(latest, known.purgedAt);
    }
    this.#forgetExpired(now);
    return latest;
  }

  /** The latest purge of `target` this instance knows of, without reading the store. */
  known(target: string): number {
    return this.#known.get(target)?.purgedAt ?? Number.NEGATIVE_INFINITY;
  }

  clear(): void {
    this.#known.clear();
  }

  #touch(target: string): Known {
    let known = this.#known.get(target);
    if (known === undefined) {
      known = { purgedAt: Number.NEGATIVE_INFINITY, checkedAt: Number.NEGATIVE_INFINITY, sequence: 0 };
      this.#known.set(target, known);
    }
    return known;
  }

  /**
   * Forgets names whose purge no live entry can predate any more (and absent markers, which are only a cache), at
   * most once per refresh period: the LRU bound alone would keep them until pushed out.
   */
  #forgetExpired(now: number): void {
    if (now - this.#sweptAt < this.#options.refreshMs) return;
    this.#sweptAt = now;
    for (const [target, known] of [...this.#known.entries()]) {
      if (
        known.purgedAt + this.#options.retainMs <= now &&
        now - known.checkedAt >= this.#options.refreshMs
      ) {
        this.#known.delete(target);
      }
    }
  }
}

/** The purge time a marker vouches for; a missing, damaged or forged marker vouches for nothing. */
function markerTime(names: TenantNames, target: string, raw: Buffer | undefined): number {
  if (raw === undefined) return Number.NEGATIVE_INFINITY;
  try {
    const { at, mac } = JSON.parse(raw.toString('utf8')) as { at?: unknown; mac?: unknown };
    if (!Number.isSafeInteger(at) || typeof mac !== 'string') return Number.NEGATIVE_INFINITY;
    const expected = Buffer.from(names.markerMac(target, at as number));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      return Number.NEGATIVE_INFINITY;
    return at as number;
  } catch {
    return Number.NEGATIVE_INFINITY;
  }
}
