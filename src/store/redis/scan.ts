import type { RedisCommands } from './commands.js';

/**
 * Every key matching `match` on every master, by SCAN (never KEYS, which blocks the server). On a Cluster each
 * master is scanned in turn; a key may be reported twice if the Cluster reshards meanwhile.
 */
export async function* scanKeys(
  commands: RedisCommands,
  match = 'phc:*',
  count = 1000,
): AsyncGenerator<{
  key: Buffer;
  node: RedisCommands;
}> {
  for (const node of commands.masters()) {
    let cursor = '0';
    do {
      const page = await node.scan(cursor, match, count);
      cursor = page.cursor;
      for (const key of page.keys) yield { key, node };
    } while (cursor !== '0');
  }
}
