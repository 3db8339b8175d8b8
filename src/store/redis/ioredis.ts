/**
 * RedisCommands over ioredis (v5 or v6: in maintenance, but widely deployed). `ioredis` is an optional peer
 * dependency: it is imported here only, and only when this function is called.
 */
import { PhiCacheError } from '../../errors.js';
import { loadPeer } from '../../runtime/load-peer.js';
import { connectionPassword } from '../../secrets/connection-password.js';
import {
  checkConnectionOptions,
  type RedisArg,
  type RedisCommands,
  type RedisConnectionOptions,
  RedisReplyError,
  type RedisTlsOptions,
  withSubscriptions,
} from './commands.js';
import { ConnectionErrors, closeWithin, connectWithin } from './lifecycle.js';

type Ioredis = Pick<typeof import('ioredis'), 'Redis' | 'Cluster'>;

/** How long a subscriber connection duplicated from a caller's client may take to connect, as in `connect`. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * The parts of an ioredis `Redis` (standalone or Sentinel-backed) this binding uses. Named methods, not
 * `call`/`callBuffer`: with `enableAutoPipelining` ioredis drops the command name of a `call` (seen in 6.0.0).
 */
export interface IoredisClientLike {
  getBuffer(key: RedisArg): Promise<Buffer | null>;
  set(key: RedisArg, value: Buffer, px: 'PX', ttlMs: number): Promise<unknown>;
  set(key: RedisArg, value: Buffer, px: 'PX', ttlMs: number, nx: 'NX'): Promise<unknown>;
  del(...keys: RedisArg[]): Promise<number>;
  pttl(key: RedisArg): Promise<number>;
  evalsha(sha1: string, numKeys: number, ...keysAndArgs: RedisArg[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...keysAndArgs: RedisArg[]): Promise<unknown>;
  zrangeBuffer(key: RedisArg, start: string, stop: string): Promise<Buffer[]>;
  zrem(key: RedisArg, ...members: RedisArg[]): Promise<number>;
  scanBuffer(
    cursor: string,
    match: 'MATCH',
    pattern: string,
    count: 'COUNT',
    n: number,
  ): Promise<[Buffer, Buffer[]]>;
  publish?(channel: string, message: Buffer): Promise<number>;
  /**
   * For `subscribe`: a new connection (a new Cluster on a Cluster) with the same options, since a subscribed
   * connection runs no other command. Called with `{ lazyConnect: true }` (on a Cluster: `[], { lazyConnect: true }`).
   */
  duplicate?(): IoredisSubscriberLike;
}

/** What `subscribe` uses of a duplicate. */
export interface IoredisSubscriberLike {
  connect(): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  on(event: 'messageBuffer', listener: (channel: Buffer, message: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): unknown;
}

/** The parts of an ioredis `Cluster` this binding uses. */
export interface IoredisClusterLike extends IoredisClientLike {
  nodes(role: 'master'): IoredisClientLike[];
}

/**
 * A client you already have (left open by `close()`; create it with `enableOfflineQueue: false`, or a call
 * during an outage waits in its queue until RedisStore's deadline; leave `commandTimeout` unset, RedisStore
 * keeps the deadlines), or connection options (the binding creates, connects and later closes the client).
 * A Sentinel-backed ioredis client is a `client`.
 */
export type IoredisSource =
  | { readonly client: IoredisClientLike }
  | { readonly cluster: IoredisClusterLike }
  | RedisConnectionOptions;

export async function ioredisCommands(source: IoredisSource): Promise<RedisCommands> {
  const keep = async () => undefined;
  // The connect timeout of a caller's client is unknown: its subscriber connections get the default.
  if ('client' in source) return overClient(source.client, keep);
  if ('cluster' in source && isCluster(source.cluster)) return overCluster(source.cluster, keep);
  // Only a client this binding creates needs the library itself.
  return connect(
    await loadPeer('ioredis', () => import('ioredis'), 'or use the other Redis binding'),
    source as RedisConnectionOptions,
  );
}

async function connect(ioredis: Ioredis, options: RedisConnectionOptions): Promise<RedisCommands> {
  const { connectTimeoutMs } = checkConnectionOptions(options);
  const given = options.password;
  const rotating =
    given === undefined || typeof given === 'string'
      ? undefined
      : connectionPassword(given, connectTimeoutMs);
  // Read once before the client exists, so that a secret that cannot be read fails the start with its own error.
  const password = typeof given === 'string' ? given : await rotating?.();
  const common = {
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(password === undefined ? {} : { password }),
    ...(options.tls === undefined ? {} : { tls: tlsOptions(options.tls) }),
    connectTimeout: connectTimeoutMs,
    // An in-flight command fails when its connection drops instead of being replayed after a reconnect.
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  };
  if (options.cluster !== undefined) {
    const cluster = new ioredis.Cluster(
      options.cluster.seeds.map(({ host, port }) => ({ host, port })),
      { redisOptions: common, enableOfflineQueue: false, lazyConnect: true, enableAutoPipelining: true },
    );
    if (rotating !== undefined) {
      const redisOptions = (cluster as unknown as { options: { redisOptions: { password?: string } } })
        .options.redisOptions;
      cluster.on('+node', (node: ReconnectingClient) =>
        readBeforeEachConnect(node, async () => {
          // Nodes the Cluster discovers later start with the latest password too.
          redisOptions.password = await rotating();
          return redisOptions.password;
        }),
      );
    }
    const errors = new ConnectionErrors();
    cluster.on('error', errors.record);
    await connectWithin(cluster.connect(), connectTimeoutMs, () => cluster.disconnect(), 'ioredis', errors);
    return overCluster(
      cluster as unknown as IoredisClusterLike,
      () =>
        closeWithin(
          () => cluster.quit(),
          () => cluster.disconnect(),
        ),
      connectTimeoutMs,
    );
  }
  const client =
    options.url !== undefined
      ? new ioredis.Redis(options.url, { ...common, enableOfflineQueue: false, enableAutoPipelining: true })
      : new ioredis.Redis({
          ...common,
          sentinels: options.sentinel!.sentinels.map(({ host, port }) => ({ host, port })),
          name: options.sentinel!.name,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
        });
  if (rotating !== undefined) readBeforeEachConnect(client as unknown as ReconnectingClient, rotating, false);
  const errors = new ConnectionErrors();
  client.on('error', errors.record);
  await connectWithin(client.connect(), connectTimeoutMs, () => client.disconnect(), 'ioredis', errors);
  return overClient(
    client as unknown as IoredisClientLike,
    () =>
      closeWithin(
        () => client.quit(),
        () => client.disconnect(),
      ),
    connectTimeoutMs,
  );
}

/** What `readBeforeEachConnect` uses of an ioredis `Redis`. */
interface ReconnectingClient {
  connect(): Promise<void>;
  readonly options: { password?: string };
  readonly status: string;
}

/**
 * ioredis builds each handshake's AUTH from `options.password` when `connect()` runs, and its reconnect timer
 * calls `connect()` on the instance; so reading the secret in front of `connect()` gives every reconnection the
 * current password. `firstRead` is false when the password for the first connection was just read. A client
 * closed while the read was under way stays closed.
 */
function readBeforeEachConnect(
  client: ReconnectingClient,
  password: () => Promise<string>,
  firstRead = true,
): void {
  const connect = client.connect.bind(client);
  let fresh = !firstRead;
  client.connect = async () => {
    if (!fresh) {
      const latest = await password().catch(() => undefined);
      if (latest !== undefined) client.options.password = latest;
      if (client.status === 'end') return;
    }
    fresh = false;
    return connect();
  };
}

function overClient(
  client: IoredisClientLike,
  close: () => Promise<void>,
  connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
): RedisCommands {
  const duplicate = client.duplicate as ((options: object) => IoredisSubscriberLike) | undefined;
  const listen = duplicate && (() => duplicate.call(client, { lazyConnect: true }));
  return withPubSub(over(client, { scan: true, close }), client, listen, connectTimeoutMs);
}

function overCluster(
  cluster: IoredisClusterLike,
  close: () => Promise<void>,
  connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
): RedisCommands {
  // The master list changes when the Cluster reshards, so it is read anew on each call.
  const masters = () =>
    cluster.nodes('master').map((node) => over(node, { scan: true, close: async () => undefined }));
  // A duplicate Cluster keeps one subscriber connection to some node and moves it when that node goes away.
  const duplicate = cluster.duplicate as ((nodes: [], options: object) => IoredisSubscriberLike) | undefined;
  const listen = duplicate && (() => duplicate.call(cluster, [], { lazyConnect: true }));
  return withPubSub(over(cluster, { scan: false, masters, close }), cluster, listen, connectTimeoutMs);
}

/**
 * Adds PUBLISH, and SUBSCRIBE on a duplicate connection of its own, which ioredis subscribes again after a
 * reconnect. `close()` then first ends the subscriptions still open.
 */
function withPubSub(
  commands: RedisCommands,
  client: IoredisClientLike,
  makeSubscriber: (() => IoredisSubscriberLike) | undefined,
  connectTimeoutMs: number,
): RedisCommands {
  if (typeof client.publish === 'function') {
    const publish = client.publish;
    commands.publish = (channel, message) => publish.call(client, channel, message).catch(fail);
  }
  if (makeSubscriber === undefined) return commands;
  return withSubscriptions(commands, async (channel, onMessage) => {
    const subscriber = makeSubscriber();
    const errors = new ConnectionErrors();
    subscriber.on('error', errors.record);
    subscriber.on('messageBuffer', (from: Buffer, message: Buffer) => {
      if (from.toString() !== channel) return;
      try {
        onMessage(message);
      } catch {
        // The subscriber's own fault; the connection carries on.
      }
    });
    await connectWithin(
      subscriber.connect(),
      connectTimeoutMs,
      () => subscriber.disconnect(),
      'ioredis',
      errors,
    );
    try {
      await subscriber.subscribe(channel);
    } catch (error) {
      subscriber.disconnect();
      fail(error);
    }
    return () =>
      closeWithin(
        () => subscriber.quit(),
        () => subscriber.disconnect(),
      );
  });
}

/** ioredis routes each command by its own key positions, so a Cluster takes the same calls as a client. */
function over(
  client: IoredisClientLike,
  options: {
    readonly scan: boolean;
    readonly masters?: () => readonly RedisCommands[];
    readonly close: () => Promise<void>;
  },
): RedisCommands {
  const failed = (error: unknown) => fail(error);
  const commands: RedisCommands = {
    get: (key) => client.getBuffer(key).catch(failed),
    set: (key, value, ttlMs, onlyIfAbsent) =>
      (onlyIfAbsent ? client.set(key, value, 'PX', ttlMs, 'NX') : client.set(key, value, 'PX', ttlMs)).then(
        (reply) => reply !== null,
        failed,
      ),
    del: (keys) => client.del(...keys).catch(failed),
    pttl: (key) => client.pttl(key).catch(failed),
    evalsha: (sha1, keys, args) => client.evalsha(sha1, keys.length, ...keys, ...args).catch(failed),
    eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args).catch(failed),
    zrange: (key, start, stop) => client.zrangeBuffer(key, String(start), String(stop)).catch(failed),
    zrem: (key, members) => client.zrem(key, ...members).catch(failed),
    scan: async (cursor, match, count) => {
      if (!options.scan) throw new TypeError('SCAN each of masters(), not the Cluster as a whole');
      const [next, keys] = await client.scanBuffer(cursor, 'MATCH', match, 'COUNT', count).catch(failed);
      return { cursor: next.toString(), keys };
    },
    masters: () => (options.masters === undefined ? [commands] : options.masters()),
    close: options.close,
  };
  return commands;
}

/**
 * ioredis reports a server's error reply as a ReplyError (from redis-errors in v5, its own in v6); everything
 * else means the server was not reached. Matched by name, since a client the caller made may come from another
 * copy or major version of ioredis than the one this file imports.
 */
function fail(error: unknown): never {
  if (error instanceof Error && error.name === 'ReplyError') {
    throw new RedisReplyError(error.message, { cause: error });
  }
  throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'redis (ioredis) did not take the command', {
    cause: error,
  });
}

function tlsOptions(tls: RedisTlsOptions): Record<string, unknown> {
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  };
}

function isCluster(value: unknown): value is IoredisClusterLike {
  return typeof value === 'object' && value !== null && 'nodes' in value;
}
