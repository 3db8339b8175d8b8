import type { LiveServer } from './live-server.js';
import { type Reply, ReplyError } from './probe-connection.js';

export interface KeySample {
  /** Every sampled key with its PTTL (-1: no TTL). */
  readonly keys: readonly { readonly name: Buffer; readonly ttlMs: number }[];
  /** The whole keyspace of the node was scanned (not cut off at the sample size). */
  readonly complete: boolean;
  /** Why nothing could be sampled (SCAN refused), when so. */
  readonly refused?: string;
}

/**
 * Up to `size` keys of the node by SCAN (never KEYS), each page's PTTLs pipelined. A key phicache's user may not
 * read (outside its `~phc:*`) is not returned by SCAN's pattern match on such a user, so the sample is of what the
 * connecting user can see; the keyspace counts of INFO cover the rest.
 */
export async function sampleKeys(server: LiveServer, size: number): Promise<KeySample> {
  const keys: { name: Buffer; ttlMs: number }[] = [];
  let cursor = '0';
  do {
    const page = await server.session.call('SCAN', cursor, 'COUNT', '1000');
    if (page instanceof ReplyError)
      return { keys, complete: false, refused: `SCAN is refused (${page.message.split(' ')[0]})` };
    const [next, names] = page as [Buffer, Buffer[]];
    cursor = next.toString();
    const batch = names.slice(0, size - keys.length);
    const ttls = await server.session.pipeline(batch.map((name) => ['PTTL', name]));
    for (const [i, name] of batch.entries()) keys.push({ name, ttlMs: ttlOf(ttls[i]) });
  } while (cursor !== '0' && keys.length < size);
  return { keys, complete: cursor === '0' };
}

/** A PTTL the user may not run on that key counts as unknown (-3), not as "no TTL". */
function ttlOf(reply: Reply | undefined): number {
  return typeof reply === 'number' ? reply : -3;
}
