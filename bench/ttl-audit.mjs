// ttl-audit over 200,000 keys: the audit as it is (the PTTLs of a SCAN page in one script call, the next page
// fetched meanwhile) against the audit as it was (one PTTL round trip per key, awaited in turn; measured once, as it
// is the slow one), on one redis-server this script starts on a free port (no persistence) and stops at the end.
// Same keys, same server, same run. Prints markdown on stdout.
//
// Run `npx tsc -p .` in the repository first: this script imports the built library from ../build.
// Knobs (environment): BENCH_KEYS (default 200000), BENCH_REDIS_SERVER (default `redis-server` on the PATH),
// BENCH_SKIP_BASELINE=1 to time only the current audit.

import { cpus, loadavg } from 'node:os';
import { createClient } from 'redis';
import { ttlAudit } from '../build/src/ops/ttl-audit.js';
import { loadDefaultPolicy } from '../build/src/policy/default.js';
import { nodeRedisCommands } from '../build/src/store/redis/node-redis.js';
import { freePort, startRedis, stopRedis } from './redis-server.mjs';

const KEYS = Number(process.env.BENCH_KEYS ?? 200_000);

async function startServer() {
  const port = await freePort();
  const server = await startRedis(port);
  const url = `redis://127.0.0.1:${port}`;
  const client = createClient({ url });
  await client.connect();
  return { url, server, client };
}

/** The audit before its deadlines and pipelining: SCAN pages, then one awaited PTTL per key. */
async function perKeyAudit(commands) {
  let scanned = 0;
  let noTtl = 0;
  for (const node of commands.masters()) {
    let cursor = '0';
    do {
      const page = await node.scan(cursor, '*', 1000);
      cursor = page.cursor;
      for (const key of page.keys) {
        scanned += 1;
        if ((await node.pttl(key)) === -1) noTtl += 1;
      }
    } while (cursor !== '0');
  }
  return { scanned, noTtl };
}

async function time(body) {
  const start = performance.now();
  const result = await body();
  return { ms: performance.now() - start, result };
}

const { url, server, client } = await startServer();
try {
  // Like a shared production Redis: most keys with a TTL, some without.
  for (let start = 0; start < KEYS; start += 10_000) {
    const batch = [];
    for (let i = start; i < Math.min(KEYS, start + 10_000); i++) {
      batch.push(
        i % 100 === 0 ? client.set(`legacy:${i}`, 'x') : client.set(`app:${i}`, 'x', { PX: 3_600_000 }),
      );
    }
    await Promise.all(batch);
  }
  const policy = await loadDefaultPolicy();
  const commands = await nodeRedisCommands({ url });
  try {
    // One unmeasured run warms the JIT; then the median of three.
    await ttlAudit(commands, { policy });
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await time(() => ttlAudit(commands, { policy })));
    runs.sort((a, b) => a.ms - b.ms);
    const now = runs[1];
    if (now.result.scanned !== KEYS) throw new Error(`scanned ${now.result.scanned} of ${KEYS}`);
    const rows = [
      ['ttl-audit (SCAN and PTTL in one script call per page, median of 3)', now.ms, now.result.scanned],
    ];
    if (process.env.BENCH_SKIP_BASELINE !== '1') {
      const before = await time(() => perKeyAudit(commands));
      if (before.result.scanned !== KEYS)
        throw new Error(`baseline scanned ${before.result.scanned} of ${KEYS}`);
      rows.push(['one PTTL round trip per key (the audit before)', before.ms, before.result.scanned]);
      rows.push(['speed-up', before.ms / now.ms, undefined]);
    }
    console.log(
      `ttl-audit, ${KEYS} keys, one local redis-server; ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}\n`,
    );
    console.log('| audit | time | keys/s |');
    console.log('|---|---:|---:|');
    for (const [name, value, scanned] of rows) {
      if (scanned === undefined) console.log(`| ${name} | ${value.toFixed(1)}x | |`);
      else
        console.log(`| ${name} | ${(value / 1000).toFixed(2)} s | ${Math.round(scanned / (value / 1000))} |`);
    }
  } finally {
    await commands.close();
  }
} finally {
  await client.close();
  await stopRedis(server);
}
