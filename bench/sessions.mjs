// Sessions and rate limits over Redis: phicache's session store against connect-redis, and phicache's rate limiter
// against rate-limiter-flexible, in one process, one run and one redis-server that this script starts on a free port
// (no persistence) and stops at the end. Prints markdown on stdout.
//
// Sessions: the same express-session data (ids, roles and the cookie) through each store's own express-session
// contract (set, get, touch), node-redis as the client of both. phicache runs as users run it: the default policy's
// `session-token` class (HMAC names, AES-256-GCM envelope, policy decision, PHI check) and a real AuditTrail over a
// FileSink. Rate limits: one request counted per call on distinct identities (fixed window, 60 s), node-redis as
// the client of both; phicache hashes each identity into its key with HMAC-SHA256.
//
// Load is BENCH_CALLERS concurrent callers (default 64), each awaiting its calls one after the other, for
// BENCH_OPS calls per measurement (default 20,000), two rounds, peers alternating; the best round is reported.
// phicache's command deadlines are raised to 2 s here (defaults: 500 ms store, 200 ms counters): on a machine shared
// with other work, 64 callers can keep a reply waiting past the defaults, which would turn into misses and
// store-unavailable results, and the run counts those as failures rather than as throughput.

import { mkdtemp } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore as ConnectRedisStore } from 'connect-redis';
import session from 'express-session';
import {
  AuditTrail,
  expressSessionStore,
  FileSink,
  LocalKeyring,
  loadDefaultPolicy,
  nodeRedisCommands,
  openAuditKeys,
  PhiCache,
  RateLimiter,
  RedisCounters,
  RedisStore,
} from 'phicache';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { freePort, positiveInt, startRedis, stopRedis } from './redis-server.mjs';

const OPS = positiveInt('BENCH_OPS', 20_000);
const CALLERS = positiveInt('BENCH_CALLERS', 64);
const ROUNDS = 2;
const SESSIONS = 1_000;

const port = await freePort();
const url = `redis://127.0.0.1:${port}`;
const server = await startRedis(port);

const home = await mkdtemp(join(tmpdir(), 'phicache-bench-sessions-'));
const cache = await PhiCache.create({
  service: 'bench-sessions',
  policy: await loadDefaultPolicy(),
  keys: await LocalKeyring.open({ home, env: {} }),
  store: new RedisStore(await nodeRedisCommands({ url }), { commandTimeoutMs: 2_000 }),
  audit: new AuditTrail({
    keys: await openAuditKeys({
      home,
      provider: await LocalKeyring.open({ home, domain: 'audit', env: {} }),
    }),
    sinks: [new FileSink({ dir: join(home, 'audit') })],
  }),
});
const phicacheSessions = expressSessionStore(session.Store, { cache, tenant: 'bench-sessions' });
// Breakdown only, never a figure of phicache's: the same store with an audit sink that drops every event, to show
// what the durable audit trail costs per session operation.
const unauditedCache = await PhiCache.create({
  service: 'bench-sessions',
  policy: await loadDefaultPolicy(),
  keys: await LocalKeyring.open({ home, env: {} }),
  store: new RedisStore(await nodeRedisCommands({ url }), { commandTimeoutMs: 2_000 }),
  audit: { write: async () => {}, close: async () => {} },
});
const unauditedSessions = expressSessionStore(session.Store, {
  cache: unauditedCache,
  tenant: 'bench-unaudited',
});
const client = createClient({ url });
await client.connect();
const connectRedis = new ConnectRedisStore({ client, prefix: 'sess:', ttl: 1800 });

const secret = Buffer.alloc(32, 1);
const phicacheLimiter = new RateLimiter({
  store: new RedisCounters(await nodeRedisCommands({ url }), { commandTimeoutMs: 2_000 }),
  name: 'bench',
  limit: 1_000_000,
  windowMs: 60_000,
  whenStoreDown: 'closed',
  secret,
});
const flexible = new RateLimiterRedis({
  storeClient: client,
  useRedisPackage: true,
  keyPrefix: 'rlflx',
  points: 1_000_000,
  duration: 60,
});

const sessionData = (i) => ({
  cookie: {
    originalMaxAge: 1_800_000,
    expires: new Date(Date.now() + 1_800_000).toISOString(),
    httpOnly: true,
    path: '/',
    sameSite: 'strict',
    secure: true,
  },
  subject: `user-${i}`,
  tenant: 'st-marys',
  roles: ['clinician'],
});
const sid = (i) => `sid-${String(i).padStart(8, '0')}-bench-session-identifier`;
const callback = (fn) =>
  new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));

const failures = { sessionMisses: 0, limiterNotAllowed: 0 };
const peers = {
  sessions: {
    'connect-redis 10': connectRedis,
    'phicache expressSessionStore': phicacheSessions,
    '(breakdown) phicache expressSessionStore without its audit trail': unauditedSessions,
  },
};

/** Runs `op(i)` OPS times from CALLERS concurrent callers; returns operations per second. */
async function measure(op) {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < OPS) {
        const i = next++;
        await op(i);
      }
    }),
  );
  return OPS / ((performance.now() - start) / 1000);
}

const results = new Map();
const record = (row, value) => results.set(row, Math.max(results.get(row) ?? 0, value));

for (const store of Object.values(peers.sessions)) {
  for (let i = 0; i < SESSIONS; i += 1) await callback((done) => store.set(sid(i), sessionData(i), done));
}
for (let round = 0; round < ROUNDS; round += 1) {
  for (const [name, store] of Object.entries(peers.sessions)) {
    record(
      `${name}|get`,
      await measure(async (i) => {
        const data = await callback((done) => store.get(sid(i % SESSIONS), done));
        if (data?.subject !== `user-${i % SESSIONS}`) failures.sessionMisses += 1;
      }),
    );
    record(
      `${name}|set`,
      await measure((i) => callback((done) => store.set(sid(i % SESSIONS), sessionData(i % SESSIONS), done))),
    );
    record(
      `${name}|touch`,
      await measure((i) =>
        callback((done) => store.touch(sid(i % SESSIONS), sessionData(i % SESSIONS), done)),
      ),
    );
  }
  record(
    'rate-limiter-flexible 11 (RateLimiterRedis)|consume',
    await measure((i) => flexible.consume(`203.0.113.${i % 250}-${i}`)),
  );
  record(
    'phicache RateLimiter (RedisCounters, fixed)|consume',
    await measure(async (i) => {
      const result = await phicacheLimiter.consume(`203.0.113.${i % 250}-${i}`);
      if (result.outcome !== 'allowed') failures.limiterNotAllowed += 1;
    }),
  );
}

const rows = [...results].map(([row, opsPerSecond]) => {
  const [peer, op] = row.split('|');
  return `| ${peer} | ${op} | ${Math.round(opsPerSecond).toLocaleString('en-US')} |`;
});
console.log(`# Sessions and rate limits over Redis (${new Date().toISOString().slice(0, 10)})\n`);
console.log(
  `${cpus().length} CPUs, one local redis-server, ${CALLERS} concurrent callers, ${OPS} calls per measurement, best of ${ROUNDS}.\n`,
);
console.log('| implementation | operation | ops/s |');
console.log('| --- | --- | ---: |');
console.log(rows.join('\n'));
const wrong = failures.sessionMisses + failures.limiterNotAllowed;
if (wrong > 0) console.error(`error: ${JSON.stringify(failures)}`);

phicacheSessions.sessions.close();
unauditedSessions.sessions.close();
await cache.close();
await unauditedCache.close();
await client.quit();
await stopRedis(server);
process.exit(wrong > 0 ? 1 : 0);
