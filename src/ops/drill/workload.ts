import type { AccessContext, EntryRef, PhiCache } from '../../cache.js';
import { PhiCacheError } from '../../errors.js';
import { drillValue, type ExpectedEntry, judgeHit, type WrongValueReason } from './drill-value.js';
import type { LatencyRecorder } from './latency-recorder.js';

/**
 * The phases of a drill; traffic is counted under the phase in which each operation started. `warmup` runs the same
 * traffic unmeasured first, so that compiling and filling caches do not inflate the latency `before` the rotation
 * (which would flatter the comparison); its errors and wrong values still count.
 */
export type DrillPhase = 'warmup' | 'before' | 'during' | 'after';
export const DRILL_PHASES: readonly Exclude<DrillPhase, 'warmup'>[] = ['before', 'during', 'after'];

export interface PhaseCounts {
  ops: number;
  /** get and getOrSet. */
  reads: number;
  hits: number;
  writes: number;
  deletes: number;
  purges: number;
  errors: number;
  wrongValues: number;
  /** Error codes (PhiCacheError codes, event names, or an error's class name) with their counts; never messages. */
  errorCodes: Record<string, number>;
  wrongReasons: Partial<Record<WrongValueReason, number>>;
  /** Entries the cache re-encrypted on read (its 'reencrypted' event). */
  lazyReencrypted: number;
}

export interface WorkloadOptions {
  readonly cache: PhiCache;
  readonly concurrency: number;
  /** Makes every id, tenant and tag of this drill its own, so a shared store's earlier contents never mix in. */
  readonly runId: string;
  readonly recorder: LatencyRecorder;
  /** `performance.now()` at the drill's origin: latencies are recorded against it. */
  readonly origin: number;
  /** Tenants the callers spread over (each has its own data keys, so a rewrap has several records). Default 4. */
  readonly tenants?: number;
  /** Entries each caller reads and writes again and again. Default 64. */
  readonly hotEntriesPerCaller?: number;
}

// The mix below aims at what a clinical portal's cache sees: mostly read-through, a few overwrites and deletes,
// rare purges, and a tail of first reads that miss.
const COLD_READ = 0.08;
const GET_OR_SET = 0.64;
const GET = 0.2;
const SET = 0.14;
const DELETE = 0.015;
// the rest (0.5%): purge one patient's tag (about six entries of the caller)
const PATIENTS_PER_CALLER = 8;
/** Every eighth entry lives 1.5 s, so expiry happens under the callers' eyes; the rest 2 minutes. */
const SHORT_TTL_MS = 1500;
const LONG_TTL_MS = 120_000;
/** First reads fill entries that are never read again: short-lived, so they expire rather than pile up. */
const COLD_TTL_MS = 5000;

const EVENT_ERRORS = ['tamper', 'store-error', 'key-service-error', 'key-states-damaged'] as const;

/**
 * N concurrent callers on the public cache API. Each caller owns its entries and tags, and runs one operation at a
 * time, so it knows exactly which version of each entry a hit must return: any other answer is a wrong value.
 * Misses are never wrong (expiry, purges and deletes make them), only counted in the hit rate.
 */
export class DrillWorkload {
  readonly #options: WorkloadOptions;
  readonly #counts = new Map<DrillPhase, PhaseCounts>(
    (['warmup', ...DRILL_PHASES] as const).map((p) => [p, emptyCounts()]),
  );
  readonly #listeners: [string, () => void][] = [];
  #phase: DrillPhase = 'warmup';
  #stopping = false;
  #running: Promise<void>[] = [];
  #callers: Caller[] = [];

  constructor(options: WorkloadOptions) {
    this.#options = options;
    this.#callers = Array.from({ length: options.concurrency }, (_, index) => new Caller(index, options));
  }

  set phase(phase: DrillPhase) {
    this.#phase = phase;
  }

  counts(phase: DrillPhase): PhaseCounts {
    return this.#counts.get(phase)!;
  }

  /** Writes every caller's hot entries once, unmeasured, so the first phase starts from a warm cache. */
  async prefill(): Promise<void> {
    await Promise.all(this.#callers.map((caller) => caller.prefill(this.#count('warmup'))));
  }

  start(): void {
    const { cache } = this.#options;
    for (const event of EVENT_ERRORS) {
      const listener = () => this.#error(event);
      cache.on(event, listener);
      this.#listeners.push([event, listener]);
    }
    const reencrypted = () => {
      this.#count(this.#phase).lazyReencrypted += 1;
    };
    cache.on('reencrypted', reencrypted);
    this.#listeners.push(['reencrypted', reencrypted]);
    this.#running = this.#callers.map(async (caller) => {
      while (!this.#stopping) await caller.step(this.#count(this.#phase));
    });
  }

  /** Lets every caller finish the operation it is in, then stops listening. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#running);
    for (const [event, listener] of this.#listeners) this.#options.cache.off(event as 'tamper', listener);
    this.#listeners.length = 0;
  }

  #count(phase: DrillPhase): PhaseCounts {
    return this.#counts.get(phase)!;
  }

  #error(code: string): void {
    const counts = this.#count(this.#phase);
    counts.errors += 1;
    counts.errorCodes[code] = (counts.errorCodes[code] ?? 0) + 1;
  }
}

/** One caller: its own user, tenant, entries and patient tags; one operation at a time. */
class Caller {
  readonly #options: WorkloadOptions;
  readonly #ctx: AccessContext;
  readonly #prefix: string;
  readonly #hot: number;
  readonly #random: () => number;
  /** Per hot entry: the last version written (never goes down), whether it should be there, until when. */
  readonly #version: Int32Array;
  readonly #present: Uint8Array;
  /** 1 when an operation on the entry failed: its state is unknown until the next successful write. */
  readonly #unknown: Uint8Array;
  readonly #liveUntil: Float64Array;
  #cold = 0;

  constructor(index: number, options: WorkloadOptions) {
    this.#options = options;
    const tenants = options.tenants ?? 4;
    this.#ctx = {
      tenant: `drill-${options.runId}-t${index % tenants}`,
      user: `drill-user-${index}`,
      principal: `drill:caller-${index}`,
      purpose: 'treatment',
    };
    this.#prefix = `${options.runId}-w${index}`;
    this.#hot = options.hotEntriesPerCaller ?? 64;
    this.#random = seededRandom(`${options.runId}:${index}`);
    this.#version = new Int32Array(this.#hot);
    this.#present = new Uint8Array(this.#hot);
    this.#unknown = new Uint8Array(this.#hot);
    this.#liveUntil = new Float64Array(this.#hot);
  }

  async prefill(counts: PhaseCounts): Promise<void> {
    for (let k = 0; k < this.#hot; k++) {
      try {
        await this.#set(k);
      } catch (error) {
        // A drill that cannot even fill its cache has found an error before it began: counted under `warmup`.
        countError(counts, error);
        this.#unknown[k] = 1;
      }
    }
  }

  async step(counts: PhaseCounts): Promise<void> {
    const { recorder, origin } = this.#options;
    const r = this.#random();
    const k = Math.floor(this.#random() * this.#hot);
    const started = performance.now();
    const startedWall = Date.now();
    try {
      if (r < COLD_READ) {
        await this.#coldRead(counts, startedWall);
      } else {
        const s = (r - COLD_READ) / (1 - COLD_READ);
        if (s < GET_OR_SET) await this.#getOrSet(k, counts, startedWall);
        else if (s < GET_OR_SET + GET) await this.#get(k, counts, startedWall);
        else if (s < GET_OR_SET + GET + SET) {
          counts.writes += 1;
          await this.#set(k);
        } else if (s < GET_OR_SET + GET + SET + DELETE) {
          counts.deletes += 1;
          await this.#delete(k);
        } else {
          counts.purges += 1;
          await this.#purge(Math.floor(this.#random() * PATIENTS_PER_CALLER));
        }
      }
    } catch (error) {
      countError(counts, error);
      this.#unknown[k] = 1;
    }
    counts.ops += 1;
    recorder.record(started - origin, performance.now() - started);
  }

  #isPhi(k: number): boolean {
    return k % 5 !== 4;
  }

  #ref(k: number): EntryRef {
    return this.#isPhi(k)
      ? { class: 'encrypted-phi', resource: 'Observation', id: `${this.#prefix}-k${k}` }
      : { class: 'feature-flag', resource: 'Flag', id: `${this.#prefix}-k${k}` };
  }

  #ttl(k: number): number {
    return k % 8 === 0 ? SHORT_TTL_MS : LONG_TTL_MS;
  }

  #setOptions(k: number): { ttlMs: number; tags?: Record<string, string> } {
    if (!this.#isPhi(k)) return { ttlMs: this.#ttl(k) };
    return {
      ttlMs: this.#ttl(k),
      tags: { patient: `${this.#prefix}-p${k % PATIENTS_PER_CALLER}`, encounter: `${this.#prefix}-e${k}` },
    };
  }

  #expected(k: number): ExpectedEntry {
    return this.#present[k] === 1 ? { version: this.#version[k]!, liveUntil: this.#liveUntil[k]! } : NONE;
  }

  #wrote(k: number, version: number): void {
    this.#version[k] = version;
    this.#present[k] = 1;
    this.#unknown[k] = 0;
    this.#liveUntil[k] = Date.now() + this.#ttl(k);
  }

  #judge(k: number, id: string, value: unknown, counts: PhaseCounts, startedWall: number): void {
    const wrong = judgeHit(id, value, this.#expected(k), startedWall);
    if (wrong !== undefined && this.#unknown[k] !== 1) countWrong(counts, wrong);
  }

  async #set(k: number): Promise<void> {
    const ref = this.#ref(k);
    const version = this.#version[k]! + 1;
    // Counted before the write: should it fail half-way, an older version must still never come back.
    this.#version[k] = version;
    const receipt = await this.#options.cache.set(
      ref,
      drillValue(ref.id, version),
      this.#ctx,
      this.#setOptions(k),
    );
    if (!receipt.stored) {
      throw new PhiCacheError('ERR_INTERNAL', 'a drill write was dropped', {
        hint: 'Look for store-error or key-service-error events; the drill counts the write as an error.',
      });
    }
    this.#wrote(k, version);
  }

  async #get(k: number, counts: PhaseCounts, startedWall: number): Promise<void> {
    const ref = this.#ref(k);
    counts.reads += 1;
    const value = await this.#options.cache.get(ref, this.#ctx);
    if (value === undefined) return;
    counts.hits += 1;
    this.#judge(k, ref.id, value, counts, startedWall);
  }

  async #getOrSet(k: number, counts: PhaseCounts, startedWall: number): Promise<void> {
    const ref = this.#ref(k);
    counts.reads += 1;
    const next = this.#version[k]! + 1;
    let filled = false;
    const value = await this.#options.cache.getOrSet(
      ref,
      this.#ctx,
      () => {
        filled = true;
        this.#version[k] = next;
        return drillValue(ref.id, next);
      },
      this.#setOptions(k),
    );
    if (filled) {
      // What a fill returns is the value as stored: it must be the one just made.
      const wrong = judgeHit(ref.id, value, { version: next, liveUntil: Number.POSITIVE_INFINITY }, 0);
      if (wrong !== undefined) countWrong(counts, wrong);
      this.#wrote(k, next);
      return;
    }
    counts.hits += 1;
    this.#judge(k, ref.id, value, counts, startedWall);
  }

  async #coldRead(counts: PhaseCounts, startedWall: number): Promise<void> {
    const id = `${this.#prefix}-c${this.#cold++}`;
    const ref: EntryRef = { class: 'encrypted-phi', resource: 'Observation', id };
    counts.reads += 1;
    let filled = false;
    const value = await this.#options.cache.getOrSet(
      ref,
      this.#ctx,
      () => {
        filled = true;
        return drillValue(id, 1);
      },
      { ttlMs: COLD_TTL_MS },
    );
    if (filled) {
      const wrong = judgeHit(id, value, { version: 1, liveUntil: Number.POSITIVE_INFINITY }, 0);
      if (wrong !== undefined) countWrong(counts, wrong);
      return;
    }
    // Nobody ever wrote this id before: any hit is another run's or another entry's value.
    counts.hits += 1;
    countWrong(counts, judgeHit(id, value, NONE, startedWall) ?? 'present-when-absent');
  }

  async #delete(k: number): Promise<void> {
    await this.#options.cache.delete(this.#ref(k), this.#ctx);
    this.#present[k] = 0;
    this.#unknown[k] = 0;
  }

  async #purge(patient: number): Promise<void> {
    const members: number[] = [];
    for (let k = 0; k < this.#hot; k++) {
      if (this.#isPhi(k) && k % PATIENTS_PER_CALLER === patient) members.push(k);
    }
    try {
      await this.#options.cache.purgeTag(this.#ctx, 'patient', `${this.#prefix}-p${patient}`);
    } catch (error) {
      for (const k of members) this.#unknown[k] = 1;
      throw error;
    }
    for (const k of members) {
      this.#present[k] = 0;
      this.#unknown[k] = 0;
    }
  }
}

const NONE: ExpectedEntry = { version: 0, liveUntil: 0 };

function emptyCounts(): PhaseCounts {
  return {
    ops: 0,
    reads: 0,
    hits: 0,
    writes: 0,
    deletes: 0,
    purges: 0,
    errors: 0,
    wrongValues: 0,
    errorCodes: {},
    wrongReasons: {},
    lazyReencrypted: 0,
  };
}

function countError(counts: PhaseCounts, error: unknown): void {
  const code =
    error instanceof PhiCacheError ? error.code : error instanceof Error ? error.name : 'non-error-thrown';
  counts.errors += 1;
  counts.errorCodes[code] = (counts.errorCodes[code] ?? 0) + 1;
}

function countWrong(counts: PhaseCounts, reason: WrongValueReason): void {
  counts.wrongValues += 1;
  counts.wrongReasons[reason] = (counts.wrongReasons[reason] ?? 0) + 1;
}

/** mulberry32 seeded from a string: each caller's mix is reproducible for one run id. */
function seededRandom(seed: string): () => number {
  let a = 0;
  for (let i = 0; i < seed.length; i++) a = (Math.imul(a, 31) + seed.charCodeAt(i)) | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
