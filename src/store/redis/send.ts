import type { RedisArg, RedisCommands } from './commands.js';

/**
 * Sends one command as an argument list; `firstKey` routes it on a Cluster. Resolves with the raw reply (bulk
 * strings as Buffers) and rejects as the RedisCommands contract says.
 */
export type Send = (firstKey: RedisArg | undefined, args: RedisArg[]) => Promise<unknown>;

export interface SendCommandsOptions {
  /** Per-master command objects on a Cluster; omitted, the object is its own only master. */
  readonly masters?: () => readonly RedisCommands[];
  /** Whether SCAN may be sent through this object (false on a Cluster, where it would reach one random node). */
  readonly scan: boolean;
  readonly close: () => Promise<void>;
}

/** RedisCommands over a bare `send`: what both bindings share, so each binding is only its client's plumbing. */
export function sendCommands(send: Send, options: SendCommandsOptions): RedisCommands {
  const commands: RedisCommands = {
    get: (key) => send(key, ['GET', key]) as Promise<Buffer | null>,
    set: async (key, value, ttlMs, onlyIfAbsent) => {
      const args: RedisArg[] = ['SET', key, value, 'PX', String(ttlMs)];
      if (onlyIfAbsent) args.push('NX');
      return (await send(key, args)) !== null;
    },
    del: (keys) => send(keys[0], ['DEL', ...keys]) as Promise<number>,
    pttl: (key) => send(key, ['PTTL', key]) as Promise<number>,
    evalsha: (sha1, keys, args) => send(keys[0], ['EVALSHA', sha1, String(keys.length), ...keys, ...args]),
    eval: (source, keys, args) => send(keys[0], ['EVAL', source, String(keys.length), ...keys, ...args]),
    zrange: (key, start, stop) =>
      send(key, ['ZRANGE', key, String(start), String(stop)]) as Promise<Buffer[]>,
    zrem: (key, members) => send(key, ['ZREM', key, ...members]) as Promise<number>,
    scan: async (cursor, match, count) => {
      if (!options.scan) throw new TypeError('SCAN each of masters(), not the Cluster as a whole');
      const [next, keys] = (await send(undefined, [
        'SCAN',
        cursor,
        'MATCH',
        match,
        'COUNT',
        String(count),
      ])) as [Buffer | string, Buffer[]];
      return { cursor: next.toString(), keys };
    },
    masters: () => (options.masters === undefined ? [commands] : options.masters()),
    close: options.close,
  };
  return commands;
}
