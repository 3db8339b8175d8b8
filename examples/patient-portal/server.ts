import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import {
  AuditTrail,
  type CacheStore,
  FileSink,
  LocalKeyring,
  loadDefaultPolicy,
  nodeRedisCommands,
  openAuditKeys,
  PhiCache,
  RedisStore,
  readSecret,
} from 'phicache';
import { createPortalServer } from './app.js';

// The embedded defaults: the shipped policy, the in-process store, the development keyrings (one KEK for the cache,
// another for audit keys) and a tamper-evident audit trail, all under PHICACHE_HOME (./.phicache unless set).
// No cloud account, and no Redis unless REDIS_URL names one (see redisFromEnvironment below).
const audit = new AuditTrail({
  keys: await openAuditKeys({ provider: await LocalKeyring.open({ domain: 'audit' }) }),
  sinks: [new FileSink()],
});
const store = await redisFromEnvironment();
const cache = await PhiCache.create({
  service: 'patient-portal',
  policy: await loadDefaultPolicy(),
  keys: await LocalKeyring.open(),
  audit,
  ...(store === undefined ? {} : { store }),
});

const server = createPortalServer(cache);
server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = server.address() as AddressInfo;
  console.log(
    `patient-portal listening on http://localhost:${port} (cache store: ${store ? 'redis' : 'embedded'})`,
  );
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    void cache.close().then(() => process.exit(0));
  });
}

/**
 * With REDIS_URL set, the cache lives in Redis instead of the process: `redis://host:port[/db]`, or `rediss://`
 * for TLS. REDIS_TLS_CA names a PEM file with the CA that signed the server's certificate (and implies TLS);
 * REDIS_USER and REDIS_PASSWORD are the ACL user and its password (or REDIS_PASSWORD alone for an AUTH string).
 * The URL is never printed: it may carry credentials.
 */
async function redisFromEnvironment(): Promise<CacheStore | undefined> {
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') return undefined;
  const caFile = process.env.REDIS_TLS_CA;
  const username = process.env.REDIS_USER;
  const password = process.env.REDIS_PASSWORD ? await readSecret({ env: 'REDIS_PASSWORD' }) : undefined;
  const commands = await nodeRedisCommands({
    url,
    ...(caFile ? { tls: { ca: await readFile(caFile) } } : {}),
    ...(username ? { username } : {}),
    ...(password === undefined ? {} : { password }),
  });
  return new RedisStore(commands);
}
