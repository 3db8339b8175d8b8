/**
 * One failover drill: a PhiCache over a RedisStore on a private Sentinel group or Cluster, a steady workload, a
 * master killed with SIGKILL mid-flight, and the workload kept running until every entry is written and read back
 * again. The client is never touched after the kill: whatever recovery happens, it does by itself.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { kill, type PrivateRedis, type RedisNode, waitFor } from '../harness/redis.js';
import { BINDINGS, type BindingName, connectionOptions } from '../store/redis/bindings.js';
import { openCache, operationBounds, Workload, type WorkloadReport } from './workload.js';

/** The acceptance bound: with a master killed, every entry is served again within this. */
export const RECOVERY_BOUND_MS = 20_000;
/** The deadline of each Redis command (RedisStore's default, spelled out because the bounds derive from it). */
export const COMMAND_TIMEOUT_MS = 500;

export interface Victim {
  readonly node: RedisNode;
  /** Asks the servers (not the client) whether the deployment has failed over. */
  failedOver(): Promise<boolean>;
}

export interface DrillResult extends WorkloadReport {
  readonly bounds: { readonly get: number; readonly set: number };
  /** ms from the kill until the servers had failed over. */
  readonly failoverMs: number | undefined;
  /** How often the store's circuit breaker opened, and for how long in all (until it closed again). */
  readonly breaker: { readonly opened: number; readonly openMs: number };
}

export async function failoverDrill(
  binding: BindingName,
  redis: PrivateRedis,
  chooseVictim: () => Promise<Victim>,
): Promise<DrillResult> {
  const store = new RedisStore(await BINDINGS[binding](connectionOptions(redis)), {
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  });
  const breaker = { opened: 0, openMs: 0 };
  store.on('breaker-open', () => {
    breaker.opened += 1;
  });
  store.on('breaker-close', ({ openMs }) => {
    breaker.openMs += openMs;
  });
  const { cache, close } = await openCache(store);
  const bounds = operationBounds(store);
  const workload = new Workload(cache, bounds);
  let report: WorkloadReport | undefined;
  try {
    // Warm: data key made and cached, scripts loaded, every entry on the servers.
    const started = performance.now();
    await waitFor(async () => workload.allServedSince(started), 10_000, 'the workload to warm up');
    const victim = await chooseVictim();

    const killedAt = workload.mark();
    kill(victim.node);
    let failoverMs: number | undefined;
    const watching = waitFor(victim.failedOver, RECOVERY_BOUND_MS, 'the servers to fail over').then(
      () => {
        failoverMs = Math.round(performance.now() - killedAt);
      },
      () => undefined,
    );
    await waitFor(
      async () => workload.allServedSince(killedAt),
      RECOVERY_BOUND_MS,
      'every entry to be written and read back after the kill',
    ).catch(async (error) => {
      report = await workload.stop();
      throw new Error(`${(error as Error).message}; workload so far: ${JSON.stringify(summary(report))}`);
    });
    // A little steady state after recovery: the client must stay recovered, not flap.
    await sleep(1_000);
    report = await workload.stop();
    await watching;

    // And afterwards, one by one: every entry takes a write and reads it back.
    for (const entry of workload.entries) {
      const version = ++entry.attempted;
      const receipt = await cache.set(entry.ref, { entry: entry.name, version }, entry.ctx, {
        tags: { patient: entry.name },
      });
      assert.equal(receipt.stored, true, `${entry.name} is stored after recovery`);
      assert.deepEqual(await cache.get(entry.ref, entry.ctx), { entry: entry.name, version });
    }
    return { ...report, bounds, failoverMs, breaker };
  } finally {
    if (report === undefined) await workload.stop();
    await close();
  }
}

/** The numbers worth printing (the lists only by length). */
export function summary(report: WorkloadReport & Partial<DrillResult>): Record<string, unknown> {
  return {
    operations: report.operations,
    hits: report.hits,
    staleHits: report.staleHits,
    misses: report.misses,
    droppedWrites: report.droppedWrites,
    wrongValues: report.wrongValues.length,
    errors: report.errors.length,
    worstMs: report.worstMs,
    boundsMs: report.bounds,
    overBound: report.overBound.length,
    failoverMs: report.failoverMs,
    recoveryMs: report.recoveryMs,
    breaker: report.breaker,
  };
}

/** The drill's acceptance: no wrong value, no call past its bound, no throw, and recovery within the bound. */
export function assertAccepted(result: DrillResult): void {
  assert.deepEqual(result.wrongValues, [], 'no read returned anything but a version of the entry read');
  assert.deepEqual(result.overBound, [], 'no call ran past its deadline bound');
  assert.deepEqual(
    result.errors,
    [],
    'a store outage degrades to misses and dropped writes, it does not throw',
  );
  assert.ok(result.recoveryMs !== undefined && result.recoveryMs <= RECOVERY_BOUND_MS, 'recovered in time');
  assert.ok(result.hits > 0 && result.operations > 0, 'the workload ran');
}
