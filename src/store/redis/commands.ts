/**
 * The narrow command interface RedisStore runs on. A binding (node-redis, ioredis) maps each method onto one
 * Redis command and nothing more: no retries, no timers, no key rewriting. Keeping it this small means a test
 * double is a few lines and a new client library is one short file.
 *
 * Contract for every binding:
 * - A reply error from the server (NOSCRIPT, WRONGTYPE, MOVED beyond the client's redirections...) rejects with
 *   `RedisReplyError`; anything else (refused, closed, offline, not ready) rejects with a `PhiCacheError`
 *   `ERR_STORE_UNAVAILABLE`. RedisStore's circuit breaker counts only the latter.
 * - Calls made while the client is not connected fail at once (the offline queue is off on the cache path).
 * - Bulk replies are Buffers: values are ciphertext and keys may hold any bytes.
 * - Commands with several keys are only ever called with keys of one hash slot.
 */

import { isSecretSource } from '../../secrets/connection-password.js';
import type { SecretSource } from '../../secrets/secret-source.js';

/** A key or member as sent on the wire. */
export type RedisArg = string | Buffer;

export interface RedisCommands {
  /** GET: the value, or null when absent. */
  get(key: RedisArg): Promise<Buffer | null>;
  /** SET key value PX ttlMs, with NX when `onlyIfAbsent`; true when the value was written. */
  set(key: RedisArg, value: Buffer, ttlMs: number, onlyIfAbsent: boolean): Promise<boolean>;
  /** DEL of one or more keys of one hash slot; how many existed. */
  del(keys: readonly RedisArg[]): Promise<number>;
  /** PTTL: ms left, -1 when the key has no expiry, -2 when absent. */
  pttl(key: RedisArg): Promise<number>;
  /** EVALSHA; rejects with a `RedisReplyError` whose message starts with NOSCRIPT when the script is unknown. */
  evalsha(sha1: string, keys: readonly RedisArg[], args: readonly RedisArg[]): Promise<unknown>;
  /** EVAL, which also loads the script into the server's script cache. */
  eval(script: string, keys: readonly RedisArg[], args: readonly RedisArg[]): Promise<unknown>;
  /** ZRANGE key start stop (by rank, inclusive): the members. */
  zrange(key: RedisArg, start: number, stop: number): Promise<Buffer[]>;
  /** ZREM key member...: how many were removed. */
  zrem(key: RedisArg, members: readonly RedisArg[]): Promise<number>;
  /**
   * SCAN cursor MATCH pattern COUNT count on the one node this object speaks to. On a Cluster object it rejects
   * with a TypeError: scan each of `masters()` instead.
   */
  scan(cursor: string, match: string, count: number): Promise<{ cursor: string; keys: Buffer[] }>;
  /** One command object per master: the object itself on a standalone or Sentinel deployment. */
  masters(): readonly RedisCommands[];
  /**
   * PUBLISH channel message: how many subscribers the node that took it counted (on a Cluster, Redis 7 also
   * forwards it to every other node). Optional: a binding offers it when its client can publish.
   */
  publish?(channel: string, message: Buffer): Promise<number>;
  /**
   * SUBSCRIBE channel on a connection of its own, since a connection in subscriber mode cannot run other
   * commands. Resolves once the server confirmed the subscription, with a function that ends it (and closes the
   * connection). Messages arrive as Buffers. After a reconnect the binding subscribes again; messages sent while
   * disconnected are lost, as pub/sub is at-most-once. `close()` ends the subscriptions still open. Optional: a
   * binding offers it when its client can make that connection.
   */
  subscribe?(channel: string, onMessage: (message: Buffer) => void): Promise<() => Promise<void>>;
  /** Closes the client when the binding created it; a client the caller handed over is left open. */
  close(): Promise<void>;
}

/** The server answered with an error reply: it is reachable, so this is no outage. The message is Redis's own. */
export class RedisReplyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisReplyError';
  }
}

/** A host and port, as a Cluster seed or a Sentinel. */
export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/** TLS material as PEM text or bytes; with `ca` alone the server is verified, with `cert` and `key` the client too. */
export interface RedisTlsOptions {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** The name to verify the server certificate against. Default: the host connected to. */
  readonly servername?: string;
}

/**
 * How a binding connects when it creates the client itself. Exactly one of `url`, `cluster` and `sentinel`.
 * The same shape serves both bindings, so switching client libraries changes no configuration.
 */
export interface RedisConnectionOptions {
  /** `redis://host:port` or `rediss://host:port` (TLS) of a standalone server. Credentials in the URL are honoured. */
  readonly url?: string;
  /** Cluster seed nodes; the client discovers the rest. */
  readonly cluster?: { readonly seeds: readonly RedisAddress[] };
  /** A Sentinel group and the name of the master it watches. */
  readonly sentinel?: { readonly name: string; readonly sentinels: readonly RedisAddress[] };
  /** TLS to the data nodes (implied by a `rediss://` URL). */
  readonly tls?: RedisTlsOptions;
  /** ACL user. Default: the server's default user. */
  readonly username?: string;
  /**
   * ACL password or AUTH string. Pass it from the environment or a secret store, never a command line. Given as a
   * `SecretSource` (`openSecretSource('aws-sm://…')`), it is read before the first connection and again before
   * every reconnection, so a password rotated through Redis ACL's two-password window is picked up without a
   * restart.
   */
  readonly password?: string | SecretSource;
  /** How long to wait for the first connection, in ms. Default 5,000; 1..120,000. */
  readonly connectTimeoutMs?: number;
}

const MAX_CONNECT_TIMEOUT_MS = 120_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** Validates connection options once; both bindings call it before creating a client. */
export function checkConnectionOptions(options: RedisConnectionOptions): { connectTimeoutMs: number } {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('Redis connection options must be an object');
  const given = [options.url, options.cluster, options.sentinel].filter((v) => v !== undefined).length;
  if (given !== 1)
    throw new TypeError('Redis connection options need exactly one of url, cluster and sentinel');
  if (options.url !== undefined && !/^rediss?:\/\//.test(options.url)) {
    throw new TypeError('a Redis url starts with redis:// or rediss://');
  }
  const addresses = [...(options.cluster?.seeds ?? []), ...(options.sentinel?.sentinels ?? [])];
  if (options.cluster !== undefined && options.cluster.seeds.length === 0) {
    throw new TypeError('a Redis Cluster needs at least one seed');
  }
  if (options.sentinel !== undefined) {
    if (options.sentinel.sentinels.length === 0)
      throw new TypeError('a Sentinel group needs at least one sentinel');
    if (typeof options.sentinel.name !== 'string' || options.sentinel.name.length === 0) {
      throw new TypeError('a Sentinel group needs the name of its master');
    }
  }
  for (const address of addresses) {
    if (typeof address.host !== 'string' || address.host.length === 0)
      throw new TypeError('a Redis address needs a host');
    if (!Number.isSafeInteger(address.port) || address.port < 1 || address.port > 65_535) {
      throw new RangeError('a Redis port is an integer in 1..65535');
    }
  }
  if (
    options.password !== undefined &&
    typeof options.password !== 'string' &&
    !isSecretSource(options.password)
  ) {
    throw new TypeError('a Redis password is a string or a SecretSource');
  }
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  if (
    !Number.isSafeInteger(connectTimeoutMs) ||
    connectTimeoutMs < 1 ||
    connectTimeoutMs > MAX_CONNECT_TIMEOUT_MS
  ) {
    throw new RangeError(`connectTimeoutMs must be an integer in 1..${MAX_CONNECT_TIMEOUT_MS}`);
  }
  return { connectTimeoutMs };
}

/** Starts listening on a channel; resolves to the function that stops it. */
export type Listen = NonNullable<RedisCommands['subscribe']>;

/**
 * Adds SUBSCRIBE over a binding's `listen`, and makes `close()` first end the subscriptions still open. Each stop
 * runs once, however often it is called.
 */
export function withSubscriptions(commands: RedisCommands, listen: Listen | undefined): RedisCommands {
  if (listen === undefined) return commands;
  const open = new Set<() => Promise<void>>();
  commands.subscribe = async (channel, onMessage) => {
    const stop = await listen(channel, onMessage);
    let stopped: Promise<void> | undefined;
    const end = () => {
      open.delete(end);
      stopped ??= stop();
      return stopped;
    };
    open.add(end);
    return end;
  };
  const closeClient = commands.close;
  commands.close = async () => {
    await Promise.all([...open].map((end) => end()));
    await closeClient();
  };
  return commands;
}
