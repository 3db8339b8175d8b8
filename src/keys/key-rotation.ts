import type { CacheAuditor } from '../audit/cache-auditor.js';
import { parseEnvelope } from '../crypto/envelope.js';
import { PhiCacheError } from '../errors.js';
import type { Policy } from '../policy/policy.js';
import type { CacheStore } from '../store/cache-store.js';
import type { DataKeys, FoundDekRecord } from './data-keys.js';
import type { KekDescription, KeyProvider } from './key-provider.js';
import type { KeyStateBoard } from './key-state-board.js';
import {
  activeKid,
  type KekVersionState,
  type KeyStates,
  promote,
  publish,
  refused,
  rekey,
  retire,
  versionOf,
} from './key-states.js';

/** What re-encrypting one entry found. */
export type ReencryptOutcome = 'reencrypted' | 'current' | 'gone' | 'unreadable';

export interface KeyRotationParts {
  readonly provider: KeyProvider;
  readonly board: KeyStateBoard;
  readonly dataKeys: DataKeys;
  readonly store: CacheStore;
  readonly audit: CacheAuditor;
  readonly policy: Policy;
  readonly clock: () => number;
  /** `keyStateRefreshMs`: the bound within which every instance sees a change. */
  readonly refreshMs: number;
  /** Re-encrypts one stored entry under the current data key, if it is not already there. */
  readonly reencrypt: (storeKey: string, owner: FoundDekRecord, now: number) => Promise<ReencryptOutcome>;
}

/** Who asks for a change: recorded in its audit record. */
export interface RotationCaller {
  readonly principal: string;
}

export interface KeyListing {
  readonly states: KeyStates;
  /** As the key service reports the KEK, when it answered. */
  readonly service?: KekDescription;
  /** Per KEK version, the data key records wrapped under it (listed through the store's index of them). */
  readonly dekRecords: Readonly<Record<string, number>>;
  /**
   * Data key records by state: `active` (made in the current generation: they seal new writes), `decrypt-only`
   * (an older generation: they only open what they sealed, and leave by expiry). Retired data keys are gone.
   */
  readonly dataKeys: { readonly active: number; readonly 'decrypt-only': number };
  /** The instant every instance is known to have seen the states (their last change plus the refresh bound). */
  readonly settledAt: number;
  /** The KEK version the keyset's name secret is wrapped under, for a keyset (see `Keyset.withNameSecretUnder`). */
  readonly nameSecretKid?: string;
}

export interface RewrapReport {
  readonly kid: string;
  readonly found: number;
  readonly rewrapped: number;
  readonly current: number;
  readonly gone: number;
  readonly failed: number;
  readonly ms: number;
}

export interface ReencryptOptions extends RotationCaller {
  /** Entries per second at most. Default unlimited. */
  readonly ratePerSecond?: number;
  /** Classes (partitions) already done in an earlier run: skipped. */
  readonly done?: readonly string[];
  /** Classes whose cap is at most this many ms rely on expiry instead of a sweep. Default 0 (sweep every class). */
  readonly expiryUnderMs?: number;
  /** Called after each class with its counts, so a caller can record progress and resume. */
  readonly onPartition?: (partition: ReencryptPartition) => void | Promise<void>;
  readonly onProgress?: (scanned: number) => void;
  readonly signal?: AbortSignal;
}

export interface ReencryptPartition {
  readonly className: string;
  /** `not-cached`: the policy lets nothing of the class be cached (no cap, no exception), so there is nothing to move. */
  readonly method: 'sweep' | 'expiry' | 'skipped' | 'not-cached';
  readonly scanned: number;
  readonly reencrypted: number;
  readonly current: number;
  readonly gone: number;
  readonly unreadable: number;
  /** For `expiry`: when the last entry sealed under an older key has expired (the class cap after the promotion). */
  readonly allExpireBy?: number;
}

export interface ReencryptReport {
  readonly generation: number;
  readonly partitions: readonly ReencryptPartition[];
  readonly ms: number;
}

export interface RetireReport {
  readonly kid: string;
  readonly forced: boolean;
  /** Data key records still wrapped under the version when it was retired (forced only). */
  readonly dekRecords: number;
  /** Store names of the entries a forced retire made unreadable (at most `MAX_NAMED`). */
  readonly unreadable: readonly string[];
  readonly unreadableCount: number;
}

const MAX_NAMED = 1000;
const REWRAP_CONCURRENCY = 16;
/** Entries a sweep re-encrypts at once: a few round trips in flight, far from what the traffic itself keeps. */
const SWEEP_CONCURRENCY = 8;

/**
 * Rotation of the cache KEK and its data keys (DESIGN.md §4): publish, promote, rekey, rewrap, re-encrypt and a
 * safe retire. Every change goes through the fleet's key states and is an admin audit record; the store and key
 * service calls are the ones the cache itself makes, so traffic never pauses.
 */
export class KeyRotation {
  readonly #parts: KeyRotationParts;

  constructor(parts: KeyRotationParts) {
    this.#parts = parts;
  }

  /** How long after a change every instance has surely seen it: twice the refresh interval, plus a second of skew. */
  get boundMs(): number {
    return 2 * this.#parts.refreshMs + 1000;
  }

  async states(): Promise<KeyStates> {
    return this.#parts.board.refresh();
  }

  async list(): Promise<KeyListing> {
    const states = await this.states();
    const dekRecords: Record<string, number> = {};
    const dataKeys = { active: 0, 'decrypt-only': 0 };
    for await (const record of this.#parts.dataKeys.records()) {
      dekRecords[record.kid] = (dekRecords[record.kid] ?? 0) + 1;
      dataKeys[record.gen === states.generation ? 'active' : 'decrypt-only'] += 1;
    }
    let service: KekDescription | undefined;
    try {
      service = await this.#parts.provider.describeKek();
    } catch {
      // The listing is still useful without the service's own view; `service` is simply absent.
    }
    const nameSecretKid = this.#parts.provider.nameSecretKid?.();
    return {
      states,
      ...(service === undefined ? {} : { service }),
      dekRecords,
      dataKeys,
      settledAt: states.changedAt + this.boundMs,
      ...(nameSecretKid === undefined ? {} : { nameSecretKid }),
    };
  }

  /** Makes a new KEK version in the key service and publishes it as pending; it seals nothing yet. */
  async publish(caller: RotationCaller): Promise<KekVersionState> {
    const { provider, board, clock } = this.#parts;
    if (provider.createVersion === undefined) {
      throw refused(`the ${provider.name} KEK cannot make a version that waits to be promoted`);
    }
    // Refused before the service makes a version nobody would use.
    const before = await board.refresh();
    if (before.keks.some((k) => k.state === 'pending')) {
      throw refused('another KEK version is pending: promote it first, or retire it');
    }
    const kid = await provider.createVersion();
    const states = await this.#change('key.publish', kid, caller, (s) =>
      publish(s, kid, clock(), this.boundMs),
    );
    return versionOf(states, kid)!;
  }

  /** Promotes the pending version (or `kid`): new writes move to new data keys under it at once. */
  async promote(caller: RotationCaller, kid?: string): Promise<KeyStates> {
    const { board, clock } = this.#parts;
    const target = kid ?? (await board.refresh()).keks.find((k) => k.state === 'pending')?.kid;
    if (target === undefined)
      throw refused('no KEK version is pending: publish one first (phicache keys rotate)');
    return this.#change('key.promote', target, caller, (s) => promote(s, target, clock()));
  }

  /**
   * Publishes a new version, waits until every instance has seen it, and promotes it. `wait` sleeps for the bound
   * (a test passes its own, driving an injected clock).
   */
  async rotate(
    caller: RotationCaller,
    wait: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ): Promise<{ from: string; to: string; states: KeyStates }> {
    const from = activeKid(await this.states());
    const published = await this.publish(caller);
    await wait(Math.max(0, published.promotableAt - this.#parts.clock()));
    const states = await this.promote(caller, published.kid);
    return { from, to: published.kid, states };
  }

  /** New data keys for new writes, under the active KEK version. */
  async rekey(caller: RotationCaller): Promise<KeyStates> {
    const kid = activeKid(await this.states());
    return this.#change('key.rekey', kid, caller, (s) => rekey(s, this.#parts.clock()));
  }

  /**
   * Rewraps every data key record under the active KEK version: one key service call per data key, no
   * entry touched. A record changed meanwhile (expired, shredded) is left alone and counted as gone.
   */
  async rewrap(caller: RotationCaller, onProgress?: (done: number) => void): Promise<RewrapReport> {
    const { dataKeys } = this.#parts;
    const started = performance.now();
    const kid = activeKid(await this.states());
    const counts = { found: 0, rewrapped: 0, current: 0, gone: 0, failed: 0 };
    let firstError: unknown;
    const inFlight = new Set<Promise<void>>();
    for await (const record of dataKeys.records()) {
      counts.found += 1;
      const one = dataKeys.rewrap(record, kid).then(
        (outcome) => {
          if (outcome === 'rewrapped') counts.rewrapped += 1;
          else if (outcome === 'current') counts.current += 1;
          else counts.gone += 1;
          onProgress?.(counts.rewrapped + counts.current + counts.gone + counts.failed);
        },
        (error: unknown) => {
          counts.failed += 1;
          firstError ??= error;
        },
      );
      inFlight.add(one);
      one.finally(() => inFlight.delete(one));
      if (inFlight.size >= REWRAP_CONCURRENCY) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const report = { kid, ...counts, ms: Math.round(performance.now() - started) };
    await this.#parts.audit.keyState(
      'key.rewrap',
      kid,
      caller.principal,
      counts.failed === 0
        ? { result: 'ok', count: counts.rewrapped }
        : { result: 'error', code: codeOf(firstError) },
      {
        found: counts.found,
        rewrapped: counts.rewrapped,
        current: counts.current,
        gone: counts.gone,
        failed: counts.failed,
      },
    );
    if (counts.failed > 0) {
      throw new PhiCacheError(
        'ERR_KEY_STATE',
        `${counts.failed} of ${counts.found} data key records did not rewrap`,
        {
          cause: firstError,
          hint: 'Check the key service, then run `phicache keys rewrap` again: records already rewrapped are skipped.',
        },
      );
    }
    return report;
  }

  /**
   * Moves entries sealed under an older generation to the current data keys, one class (partition) at a time,
   * resumable (`done`), with a rate limit. Reads re-encrypt lazily too; this sweep moves what nobody reads.
   */
  async reencrypt(options: ReencryptOptions): Promise<ReencryptReport> {
    const { store, dataKeys, policy, clock } = this.#parts;
    if (store.scan === undefined) throw new TypeError(`the ${store.name} store cannot be scanned`);
    const started = performance.now();
    const states = await this.states();
    const owners = new Map<string, FoundDekRecord>();
    const listOwners = async () => {
      for await (const record of dataKeys.records()) owners.set(record.id, record);
    };
    await listOwners();
    // A data key made after the list (by traffic, or by this sweep's own re-sealing) is looked up by listing again,
    // at most once a second: its entries are current, not unreadable.
    let listedAt = performance.now();
    const ownerOfEntry = async (raw: Buffer): Promise<FoundDekRecord | undefined> => {
      const id = dekIdOf(raw);
      if (id === undefined) return undefined;
      if (!owners.has(id) && performance.now() - listedAt >= 1000) {
        listedAt = performance.now();
        await listOwners();
      }
      return owners.get(id);
    };
    const partitions: ReencryptPartition[] = [];
    const interval = options.ratePerSecond === undefined ? 0 : 1000 / options.ratePerSecond;
    let next = performance.now();
    let scanned = 0;
    for (const dataClass of [...policy.classes.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      const className = dataClass.name;
      const base = { className, scanned: 0, reencrypted: 0, current: 0, gone: 0, unreadable: 0 };
      if (options.done?.includes(className)) {
        partitions.push({ ...base, method: 'skipped' });
        continue;
      }
      const cached =
        dataClass.cacheable || policy.exceptions.some((e) => e.className === className && e.allowCacheable);
      if (!cached) {
        const partition = { ...base, method: 'not-cached' as const };
        partitions.push(partition);
        await options.onPartition?.(partition);
        continue;
      }
      if (dataClass.maxTtlMs <= (options.expiryUnderMs ?? 0)) {
        const promoted = Math.max(...states.keks.map((k) => k.activeAt ?? 0), states.changedAt);
        const partition = { ...base, method: 'expiry' as const, allExpireBy: promoted + dataClass.maxTtlMs };
        partitions.push(partition);
        await options.onPartition?.(partition);
        continue;
      }
      const partition = { ...base, method: 'sweep' as const };
      const one = async (storeKey: string) => {
        const raw = await store.get(storeKey);
        const owner = raw === undefined ? undefined : await ownerOfEntry(raw);
        const outcome: ReencryptOutcome =
          raw === undefined
            ? 'gone'
            : owner === undefined
              ? 'unreadable'
              : await this.#parts.reencrypt(storeKey, owner, clock());
        partition[outcome] += 1;
        options.onProgress?.(scanned);
      };
      const inFlight = new Set<Promise<void>>();
      for await (const storeKey of store.scan(`phc:e:${className}:`)) {
        options.signal?.throwIfAborted();
        partition.scanned += 1;
        scanned += 1;
        if (interval > 0) {
          next = Math.max(next + interval, performance.now());
          const sleep = next - performance.now();
          if (sleep > 1) await new Promise((resolve) => setTimeout(resolve, sleep));
        }
        const step = one(storeKey);
        inFlight.add(step);
        step.finally(() => inFlight.delete(step)).catch(() => undefined);
        if (inFlight.size >= SWEEP_CONCURRENCY) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      partitions.push(partition);
      await options.onPartition?.(partition);
    }
    const report = { generation: states.generation, partitions, ms: Math.round(performance.now() - started) };
    const total = (field: 'scanned' | 'reencrypted' | 'unreadable') =>
      partitions.reduce((sum, p) => sum + p[field], 0);
    await this.#parts.audit.keyState(
      'key.reencrypt',
      activeKid(states),
      options.principal,
      { result: 'ok', count: total('reencrypted') },
      {
        generation: states.generation,
        scanned: total('scanned'),
        reencrypted: total('reencrypted'),
        unreadable: total('unreadable'),
        swept: partitions
          .filter((p) => p.method === 'sweep')
          .map((p) => p.className)
          .join(','),
        expiry: partitions
          .filter((p) => p.method === 'expiry')
          .map((p) => p.className)
          .join(','),
      },
    );
    return report;
  }

  /**
   * Retires a KEK version once nothing live needs it: no data key record is wrapped under it (a scan), and every
   * instance has seen it stop sealing. Refused otherwise, with the reason and the earliest safe time; `force`
   * retires anyway and names, in its audit record, the entries it made unreadable.
   */
  async retire(caller: RotationCaller & { readonly force?: boolean }, kid: string): Promise<RetireReport> {
    const { dataKeys, store, clock, board } = this.#parts;
    const states = await board.refresh();
    // The state rules first, as the change itself applies them (an unknown, active or retired version), before a scan.
    retire(states, kid, clock(), false);
    const version = versionOf(states, kid)!;
    const dependents: FoundDekRecord[] = [];
    let lastExpiry = 0;
    for await (const record of dataKeys.records()) {
      if (record.kid !== kid) continue;
      dependents.push(record);
      lastExpiry = Math.max(lastExpiry, clock() + ((await store.ttl(record.storeKey)) ?? 0));
    }
    const seenBy = (version.decryptOnlyAt ?? version.publishedAt) + this.boundMs;
    const force = caller.force === true;
    // Not even forced: every instance unwraps the name secret when it starts, so retiring (and then disabling) the
    // version that wraps it would keep the whole service from starting, not just make some entries unreadable.
    if (this.#parts.provider.nameSecretKid?.() === kid) {
      const error = refused(
        `the keyset in use wraps its name secret under ${kid}: write a rewrapped keyset (phicache keys rewrap --keyset-out <file>), deploy it to every instance, then retire ${kid} with that keyset`,
      );
      await this.#parts.audit.keyState(
        'key.retire',
        kid,
        caller.principal,
        { result: 'denied', code: error.code },
        {
          nameSecret: 1,
        },
      );
      throw error;
    }
    if (!force && (dependents.length > 0 || clock() < seenBy)) {
      const reason =
        dependents.length > 0
          ? `${dependents.length} data key record(s) are still wrapped under ${kid}; run \`phicache keys rewrap\`, or wait until they expire`
          : `instances may still be sealing under ${kid}`;
      const error = refused(`KEK version ${kid} is still needed: ${reason}`, Math.max(lastExpiry, seenBy));
      await this.#parts.audit.keyState(
        'key.retire',
        kid,
        caller.principal,
        { result: 'denied', code: error.code },
        {
          dekRecords: dependents.length,
        },
      );
      throw error;
    }
    const unreadable = force ? await this.#entriesUnder(new Set(dependents.map((d) => d.id))) : [];
    await this.#change(
      'key.retire',
      kid,
      caller,
      (s) => retire(s, kid, clock(), force && dependents.length > 0),
      {
        forced: force ? 1 : 0,
        dekRecords: dependents.length,
        unreadable: unreadable.length,
        ...(unreadable.length > 0 ? { entries: unreadable.slice(0, MAX_NAMED).join(',') } : {}),
      },
    );
    return {
      kid,
      forced: force,
      dekRecords: dependents.length,
      unreadable: unreadable.slice(0, MAX_NAMED),
      unreadableCount: unreadable.length,
    };
  }

  /** The store names of live entries sealed by any of these data keys. */
  async #entriesUnder(deks: ReadonlySet<string>): Promise<string[]> {
    const { store } = this.#parts;
    const found: string[] = [];
    if (deks.size === 0 || store.scan === undefined) return found;
    for await (const storeKey of store.scan('phc:e:')) {
      const raw = await store.get(storeKey);
      if (raw === undefined) continue;
      try {
        if (deks.has(parseEnvelope(raw).header.dekId.toString('hex'))) found.push(storeKey);
      } catch {
        // Not an envelope: not this key's to name.
      }
    }
    return found;
  }

  /** One audited change of the fleet's key states; the record is written before the change is reported done. */
  async #change(
    action: 'key.publish' | 'key.promote' | 'key.rekey' | 'key.retire',
    kid: string,
    caller: RotationCaller,
    change: (states: KeyStates) => KeyStates,
    detail: Readonly<Record<string, string | number>> = {},
  ): Promise<KeyStates> {
    let states: KeyStates;
    try {
      states = await this.#parts.board.change(change);
    } catch (error) {
      await this.#parts.audit.keyState(
        action,
        kid,
        caller.principal,
        { result: 'denied', code: codeOf(error) },
        detail,
      );
      throw error;
    }
    await this.#parts.audit.keyState(
      action,
      kid,
      caller.principal,
      { result: 'ok' },
      {
        ...detail,
        seq: states.seq,
        generation: states.generation,
        state: versionOf(states, kid)?.state ?? 'unknown',
      },
    );
    return states;
  }
}

function dekIdOf(raw: Buffer): string | undefined {
  try {
    return parseEnvelope(raw).header.dekId.toString('hex');
  } catch {
    return undefined;
  }
}

function codeOf(error: unknown): string {
  return error instanceof PhiCacheError ? error.code : 'ERR_INTERNAL';
}
