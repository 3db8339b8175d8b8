import type { AddressInfo } from 'node:net';
import { openPortal } from './portal.js';

// The embedded defaults: the shipped policy, the in-process store, the development keyrings (one KEK for the cache,
// another for audit keys) and a tamper-evident audit trail, all under PHICACHE_HOME (./.phicache unless set).
// No cloud account, and no Redis unless REDIS_URL names one. In production, PHICACHE_KEYSET names the keyset file
// (phicache keys init) that every instance of the service shares. portal.ts reads the environment.
const portal = await openPortal();
portal.server.listen(Number(process.env.PORT ?? 3000), () => {
  const { port } = portal.server.address() as AddressInfo;
  console.log(`patient-portal listening on http://localhost:${port} (cache store: ${portal.storeName})`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void portal.close().then(() => process.exit(0));
  });
}
