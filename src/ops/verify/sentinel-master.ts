import { PhiCacheError } from '../../errors.js';
import { ProbeConnection } from './probe-connection.js';

/** The address a Sentinel group gives for its master: the first sentinel that answers decides. */
export async function sentinelMaster(
  sentinels: readonly { host: string; port: number }[],
  name: string,
  deadlineMs: number,
): Promise<{ host: string; port: number }> {
  for (const sentinel of sentinels) {
    let connection: ProbeConnection | undefined;
    try {
      connection = await ProbeConnection.open(sentinel, deadlineMs);
      const reply = await connection.call('SENTINEL', 'get-master-addr-by-name', name);
      if (Array.isArray(reply) && Buffer.isBuffer(reply[0]) && Buffer.isBuffer(reply[1])) {
        return { host: reply[0].toString(), port: Number(reply[1].toString()) };
      }
    } catch {
      // the next sentinel
    } finally {
      connection?.close();
    }
  }
  throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `no sentinel gave the address of master ${name}`, {
    hint: 'Check the --sentinel addresses and --sentinel-name.',
  });
}
