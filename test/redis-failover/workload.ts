/**
 * A steady PhiCache workload for failover drills. Each worker owns a few entries and loops: write the next version
 * of one entry, read it back, pause. Every value names its entry and version, so a read can be checked exactly: a
 * miss is allowed, a hit must hold a version of that very entry that was written at some point (the latest, or an
 * older one a failover brought back), and anything else is a wrong value. Each call is timed against the bound
 * the store's deadlines promise, and the workload notes when every entry was written and read back again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import type { AuditSink } from '../../src/audit/audit-sink.js';
import { type AccessContext, type EntryRef, PhiCache } from '../../src/cache.js';
import { isPhiCacheError } from '../../src/errors.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { RedisStore } from '../../src/store/redis/redis-store.js';

/** Counts audit events instead of keeping them: a drill writes tens of thousands. */
class CountingAuditSink implements AuditSink {
  count = 0;
  async write(_event: AuditEvent): Promise<void> {
    this.count += 1;
  }
  async close(): Promise<void> {}
}

/**
 * A PhiCache over `store` with the shipped policy and a throwaway local keyring. The DEK epoch is a week instead
 * of an hour so that no drill straddles an epoch change: a new epoch's first write makes extra store calls (load
 * or create the data key), which would blur the per-operation bound this drill asserts.
 */
export async function openCache(store: RedisStore): Promise<{ cache: PhiCache; close(): Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'phicache-failover-'));
  const cache = await PhiCache.create({
    service: 'failover-drill',
    policy: await loadDefaultPolicy(),
    keys: await LocalKeyring.open({ home, env: {} }),
    audit: new CountingAuditSink(),
    store,
    dekEpochMs: 7 * 24 * 3_600_000,
  });
  return {
    cache,
    close: async () => {
      await cache.close();
      await rm(home, { recursive: true, force: true });
    },
  };
}

/**
 * The longest a PhiCache call may take when every Redis command it makes runs into its deadline: a get makes at
 * most 2 commands in a row (GET, then DEL of an expired or tampered entry), a set with tags at most 3 (EVALSHA of
 * the tag index script, EVAL when the server lost its script cache in the failover, then SET). Each command ends
 * by `commandTimeoutMs` plus one sweep interval; `slackMs` covers event-loop delay on a loaded CI machine.
 */
export function operationBounds(store: RedisStore, slackMs = 300): { get: number; set: number } {
  const perCommand = store.options.commandTimeoutMs + store.options.sweepIntervalMs;
  return { get: 2 * perCommand + slackMs, set: 3 * perCommand + slackMs };
}

interface Entry {
  readonly name: string;
  readonly ref: EntryRef;
  readonly ctx: AccessContext;
  /** The highest version any write of this entry carried, stored or not: a dropped write may still have landed. */
  attempted: number;
  /** The version of the last write reported stored. */
  stored: number;
  /** When the last write that was stored and then read back as written began. */
  servedAt: number;
  /** The first time after `mark()` that a write begun after the mark was read back as written. */
  recoveredAt: number | undefined;
}

export interface WorkloadReport {
  readonly operations: number;
  readonly hits: number;
  /**
   * Hits of a version older than the last write reported stored: an acknowledged write lost in the failover
   * (allowed: replication is asynchronous). A hit of an older version after a dropped write is not counted here.
   */
  readonly staleHits: number;
  readonly misses: number;
  readonly droppedWrites: number;
  /** Values that were not a version of the entry read: must be empty. */
  readonly wrongValues: readonly string[];
  /** Calls that threw: the failure table says a store outage degrades to misses and dropped writes. */
  readonly errors: readonly string[];
  readonly worstMs: { readonly get: number; readonly set: number };
  /** Calls over their bound: must be empty. */
  readonly overBound: readonly string[];
  /** ms from `mark()` until every entry had been written and read back again, if it happened. */
  readonly recoveryMs: number | undefined;
}

/** What the workload calls: PhiCache, or a stand-in that shows the checks can fail. */
export type DrillCache = Pick<PhiCache, 'set' | 'get'>;

export interface WorkloadOptions {
  readonly workers?: number;
  readonly entriesPerWorker?: number;
  /** Pause between iterations, so a worker whose calls fail at once (breaker open) still yields to timers and I/O. */
  readonly pauseMs?: number;
}

export class Workload {
  readonly #cache: DrillCache;
  readonly #bounds: { get: number; set: number };
  readonly #entries: Entry[][] = [];
  readonly #running: Promise<void>[] = [];
  #stopped = false;
  #markedAt: number | undefined;
  #operations = 0;
  #hits = 0;
  #staleHits = 0;
  #misses = 0;
  #dropped = 0;
  readonly #wrong: string[] = [];
  readonly #errors: string[] = [];
  readonly #worst = { get: 0, set: 0 };
  readonly #overBound: string[] = [];

  constructor(cache: DrillCache, bounds: { get: number; set: number }, options: WorkloadOptions = {}) {
    this.#cache = cache;
    this.#bounds = bounds;
    const workers = options.workers ?? 16;
    const perWorker = options.entriesPerWorker ?? 4;
    for (let w = 0; w < workers; w++) {
      const ctx: AccessContext = {
        tenant: 'failover-drill',
        user: `worker-${w}`,
        principal: `worker-${w}`,
        purpose: 'treatment',
      };
      this.#entries.push(
        Array.from({ length: perWorker }, (_, i) => {
          const name = `w${w}-e${i}`;
          return {
            name,
            ref: { class: 'encrypted-phi', resource: 'drill', id: name },
            ctx,
            attempted: 0,
            stored: 0,
            servedAt: 0,
            recoveredAt: undefined,
          };
        }),
      );
    }
    const pauseMs = options.pauseMs ?? 2;
    for (const entries of this.#entries) this.#running.push(this.#worker(entries, pauseMs));
  }

  get entries(): readonly Entry[] {
    return this.#entries.flat();
  }

  /** Marks the moment of the fault: recovery is measured from here. */
  mark(): number {
    this.#markedAt = performance.now();
    for (const entry of this.entries) entry.recoveredAt = undefined;
    return this.#markedAt;
  }

  /** True once every entry was written and read back, both after `since` (performance.now() time). */
  allServedSince(since: number): boolean {
    return this.entries.every((entry) => entry.servedAt >= since);
  }

  async stop(): Promise<WorkloadReport> {
    this.#stopped = true;
    await Promise.all(this.#running);
    const marked = this.#markedAt;
    const recovered = this.entries.map((entry) => entry.recoveredAt);
    const recoveryMs =
      marked === undefined || recovered.some((at) => at === undefined)
        ? undefined
        : Math.max(...(recovered as number[])) - marked;
    return {
      operations: this.#operations,
      hits: this.#hits,
      staleHits: this.#staleHits,
      misses: this.#misses,
      droppedWrites: this.#dropped,
      wrongValues: this.#wrong,
      errors: this.#errors,
      worstMs: { get: Math.round(this.#worst.get), set: Math.round(this.#worst.set) },
      overBound: this.#overBound,
      recoveryMs: recoveryMs === undefined ? undefined : Math.round(recoveryMs),
    };
  }

  async #worker(entries: readonly Entry[], pauseMs: number): Promise<void> {
    for (let i = 0; !this.#stopped; i++) {
      const entry = entries[i % entries.length]!;
      const version = ++entry.attempted;
      const setStart = performance.now();
      const stored = await this.#timed('set', entry, () =>
        this.#cache
          .set(entry.ref, { entry: entry.name, version }, entry.ctx, { tags: { patient: entry.name } })
          .then((receipt) => receipt.stored),
      );
      if (stored === false) this.#dropped += 1;
      if (stored === true) entry.stored = version;
      const value = await this.#timed('get', entry, () => this.#cache.get(entry.ref, entry.ctx));
      const read = this.#check(entry, value);
      if (stored === true && read === version) {
        entry.servedAt = setStart;
        if (this.#markedAt !== undefined && setStart >= this.#markedAt && entry.recoveredAt === undefined) {
          entry.recoveredAt = performance.now();
        }
      }
      await sleep(pauseMs);
    }
  }

  /** The version read, undefined on a miss (or a thrown call); a wrong value is recorded and counts as none. */
  #check(entry: Entry, value: unknown): number | undefined {
    if (value === undefined || value === THREW) {
      if (value === undefined) this.#misses += 1;
      return undefined;
    }
    const { entry: name, version } = (value ?? {}) as { entry?: unknown; version?: unknown };
    const isVersion = typeof version === 'number' && Number.isSafeInteger(version) && version >= 1;
    if (name !== entry.name || !isVersion || version > entry.attempted) {
      // The values are drill data, no PHI: quoting them makes a failure readable.
      this.#wrong.push(`${entry.name} read ${JSON.stringify(value)} (written up to ${entry.attempted})`);
      return undefined;
    }
    this.#hits += 1;
    if (version < entry.stored) this.#staleHits += 1;
    return version;
  }

  async #timed<T>(kind: 'get' | 'set', entry: Entry, call: () => Promise<T>): Promise<T | typeof THREW> {
    const start = performance.now();
    let result: T | typeof THREW;
    try {
      result = await call();
    } catch (error) {
      const code = isPhiCacheError(error) ? error.code : (error as Error)?.name;
      this.#errors.push(`${kind} ${entry.name}: ${code}: ${(error as Error)?.message}`);
      result = THREW;
    }
    const ms = performance.now() - start;
    this.#operations += 1;
    this.#worst[kind] = Math.max(this.#worst[kind], ms);
    if (ms > this.#bounds[kind]) {
      this.#overBound.push(
        `${kind} ${entry.name} took ${Math.round(ms)} ms (bound ${this.#bounds[kind]} ms)`,
      );
    }
    return result;
  }
}

const THREW: unique symbol = Symbol('threw');
