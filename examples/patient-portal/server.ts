import type { AddressInfo } from 'node:net';
import { AuditTrail, FileSink, LocalKeyring, loadDefaultPolicy, openAuditKeys, PhiCache } from 'phicache';
import { createPortalServer } from './app.js';

// The embedded defaults: the shipped policy, the in-process store, the development keyrings (one KEK for the cache,
// another for audit keys) and a tamper-evident audit trail, all under PHICACHE_HOME (./.phicache unless set).
// No Redis, no cloud account.
const audit = new AuditTrail({
  keys: await openAuditKeys({ provider: await LocalKeyring.open({ domain: 'audit' }) }),
  sinks: [new FileSink()],
});
const cache = await PhiCache.create({
  service: 'patient-portal',
  policy: await loadDefaultPolicy(),
  keys: await LocalKeyring.open(),
  audit,
});

const server = createPortalServer(cache);
server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = server.address() as AddressInfo;
  console.log(`patient-portal listening on http://localhost:${port}`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    void cache.close().then(() => process.exit(0));
  });
}
