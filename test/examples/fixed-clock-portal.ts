import type { AddressInfo } from 'node:net';
import { openPortal } from '../../examples/patient-portal/portal.js';

// The example portal with its login rate limit counting by a fixed instant (the start of a minute, in 2030): every
// attempt falls in one window however long the run takes, so the limit test never meets a window's end.
const LOGIN_INSTANT = Date.UTC(2030, 0, 1, 12, 0, 0);

// `node --test build/test` runs every file under test/ once without arguments: only `serve` starts the portal.
if (process.argv[2] === 'serve') await serve();

async function serve(): Promise<void> {
  const portal = await openPortal({ loginClock: () => LOGIN_INSTANT });
  portal.server.listen(Number(process.env.PORT ?? 0), () => {
    const { port } = portal.server.address() as AddressInfo;
    console.log(`patient-portal listening on http://localhost:${port} (cache store: ${portal.storeName})`);
  });
  process.once('SIGTERM', () => {
    void portal.close().then(() => process.exit(0));
  });
}
