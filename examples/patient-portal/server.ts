import type { AddressInfo } from 'node:net';
import { JsonlFileSink, LocalKeyring, loadDefaultPolicy, PhiCache } from 'phicache';
import { createPortalServer } from './app.js';

// The embedded defaults: the shipped policy, the in-process store, the development keyring and a JSONL audit log,
// all under PHICACHE_HOME (./.phicache unless set). No Redis, no cloud account.
const cache = await PhiCache.create({
  service: 'patient-portal',
  policy: await loadDefaultPolicy(),
  keys: await LocalKeyring.open(),
  audit: new JsonlFileSink(),
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
