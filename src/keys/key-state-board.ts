import { createHmac, timingSafeEqual } from 'node:crypto';
import type { CacheStore } from '../store/cache-store.js';
import { initialKeyStates, isKeyStates, type KeyStates, refused } from './key-states.js';

export interface KeyStateBoardOptions {
  readonly store: CacheStore;
  /** Where the record lives: a name derived from the fleet's name secret, the same on every instance. */
  readonly storeKey: string;
  /** Authenticates the record: someone with write access to the store cannot promote, demote or retire a key. */
  readonly macKey: Buffer;
  /** The version a fleet that never rotated seals under (the provider's current one). */
  readonly initialKid: () => string;
  readonly clock: () => number;
  /** How often an instance reads the record again: the bound within which it sees a change. */
  readonly refreshMs: number;
  /** Called when a read finds the record altered or unreadable; the instance keeps what it knew. */
  readonly onDamaged?: (error: Error) => void;
}

/** The record outlives any rotation schedule; every change writes it again with this TTL. */
export const KEY_STATES_TTL_MS = 400 * 24 * 3600_000;

const FORMAT = 'phicache-key-states/v1';
const CHANGE_ATTEMPTS = 8;

/**
 * The fleet's key states, in one authenticated record in the shared store (in the process, for the embedded
 * store). Every instance reads it again every `refreshMs` (in the background, from the cache's own calls), so a
 * change reaches the whole fleet within `refreshMs` plus one store round trip. Changes are compare-and-swap: two
 * operators rotating at once do not lose either change. An instance never goes back to an older record (a
 * restored snapshot, a replayed write), and a record that fails its MAC is reported and ignored.
 */
export class KeyStateBoard {
  readonly #options: KeyStateBoardOptions;
  #states: KeyStates | undefined;
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<KeyStates> | undefined;
  readonly #listeners = new Set<(states: KeyStates, previous: KeyStates) => void>();

  constructor(options: KeyStateBoardOptions) {
    this.#options = options;
  }

  /** What this instance knows now, without waiting: the hot path's view. */
  get held(): KeyStates {
    this.#states ??= initialKeyStates(this.#options.initialKid());
    return this.#states;
  }

  /** Called with the new and the previous states whenever this instance learns of a change. */
  onChange(listener: (states: KeyStates, previous: KeyStates) => void): void {
    this.#listeners.add(listener);
  }

  /** Whether the last read is older than `refreshMs`. */
  due(now: number): boolean {
    return now - this.#readAt >= this.#options.refreshMs;
  }

  /** Starts a background read when one is due; costs a comparison otherwise. */
  refreshSoon(now: number): void {
    if (!this.due(now) || this.#reading !== undefined) return;
    this.refresh().catch(() => undefined);
  }

  /** Reads the record now (one read at a time; callers meanwhile share it). */
  refresh(): Promise<KeyStates> {
    this.#reading ??= this.#read().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /**
   * Applies `change` to the latest record and writes it, only if nobody changed it meanwhile (else reads again and
   * retries). Resolves to the states written.
   */
  async change(change: (states: KeyStates) => KeyStates): Promise<KeyStates> {
    const { store, storeKey } = this.#options;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt += 1) {
      const raw = await store.get(storeKey);
      const current = this.#learn(raw === undefined ? undefined : this.#decode(raw));
      const next = change(current);
      const encoded = this.#encode(next);
      if (raw !== undefined && store.replaceIfSame === undefined) {
        throw new TypeError(`the ${store.name} store cannot replace a record: key states need replaceIfSame`);
      }
      const written =
        raw === undefined
          ? await store.add(storeKey, encoded, { ttlMs: KEY_STATES_TTL_MS, keyRecord: true })
          : await store.replaceIfSame!(storeKey, raw, encoded, KEY_STATES_TTL_MS);
      if (written) return this.#learn(next);
    }
    throw refused('the key states kept changing under this change; try again');
  }

  async #read(): Promise<KeyStates> {
    const { store, storeKey } = this.#options;
    const raw = await store.get(storeKey);
    this.#readAt = this.#options.clock();
    const held = this.held;
    if (raw === undefined && held.seq > 0) {
      // The record is gone (a flushed or failed-over store, an eviction): an instance that knows the states puts
      // them back, so that an instance starting now does not fall back to the service's default version.
      await store.add(storeKey, this.#encode(held), { ttlMs: KEY_STATES_TTL_MS, keyRecord: true });
      return held;
    }
    return this.#learn(raw === undefined ? undefined : this.#decode(raw));
  }

  /** Takes a record if it is newer than what this instance holds; returns what it holds afterwards. */
  #learn(states: KeyStates | undefined): KeyStates {
    const previous = this.held;
    if (states === undefined || states.seq <= previous.seq) return previous;
    this.#states = states;
    for (const listener of this.#listeners) listener(states, previous);
    return states;
  }

  #encode(states: KeyStates): Buffer {
    const body = JSON.stringify(states);
    return Buffer.from(JSON.stringify({ format: FORMAT, body, mac: this.#mac(body) }));
  }

  #decode(raw: Buffer): KeyStates | undefined {
    try {
      const record = JSON.parse(raw.toString('utf8')) as { format?: unknown; body?: unknown; mac?: unknown };
      if (record.format !== FORMAT || typeof record.body !== 'string' || typeof record.mac !== 'string') {
        throw new Error('the key states record does not have the expected shape');
      }
      const expected = Buffer.from(this.#mac(record.body), 'base64url');
      const given = Buffer.from(record.mac, 'base64url');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new Error('the key states record fails its MAC');
      }
      const states: unknown = JSON.parse(record.body);
      if (!isKeyStates(states)) throw new Error('the key states record holds no valid states');
      return states;
    } catch (error) {
      this.#options.onDamaged?.(error as Error);
      return undefined;
    }
  }

  #mac(body: string): string {
    return createHmac('sha256', this.#options.macKey)
      .update(FORMAT)
      .update('\n')
      .update(body)
      .digest('base64url');
  }
}
