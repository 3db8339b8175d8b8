/**
 * RedisCommands over node-redis (the `redis` package, v6), the client Redis recommends for new projects.
 * `redis` is an optional peer dependency: only this module imports it, and only when this function is called.
 */
import { PhiCacheError } from '../../errors.js';
import { loadPeer } from '../../runtime/load-peer.js';
import { connectionPassword } from '../../secrets/connection-password.js';
import {
  checkConnectionOptions,
  type Listen,
  type RedisArg,
  type RedisCommands,
  type RedisConnectionOptions,
  RedisReplyError,
  type RedisTlsOptions,
  withSubscriptions,
} from './commands.js';
import { ConnectionErrors, closeWithin, connectWithin, ignore } from './lifecycle.js';
import { type Send, sendCommands } from './send.js';

type NodeRedis = typeof import('redis');

/** How long a subscriber connection duplicated from a caller's client may take to connect, as in `connect`. */
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** The parts of a node-redis client this binding uses; a `RedisClientType` fits. */
export interface NodeRedisClientLike {
  sendCommand(args: RedisArg[], options?: object): Promise<unknown>;
  withCommandOptions(options: object): NodeRedisClientLike;
  /** For `subscribe`: a second connection with the same options, since a subscribed one runs no commands. */
  duplicate?(): NodeRedisSubscriberLike;
}

/** What `subscribe` uses of a client's duplicate. */
export interface NodeRedisSubscriberLike extends NodeRedisPubSubLike {
  connect(): Promise<unknown>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  close(): Promise<unknown>;
  destroy(): unknown;
}

/** The pub/sub calls of a client, a Cluster (its own pub/sub connection) or a Sentinel (likewise). */
export interface NodeRedisPubSubLike {
  subscribe(channel: string, listener: PubSubListener, bufferMode: true): Promise<unknown>;
  unsubscribe(channel: string, listener: PubSubListener, bufferMode: true): Promise<unknown>;
}

/** In buffer mode a message is a Buffer; the string is only there so that node-redis's own types fit. */
type PubSubListener = (message: Buffer | string) => void;

/** The parts of a node-redis `RedisClusterType` this binding uses. */
export interface NodeRedisClusterLike {
  sendCommand(
    firstKey: RedisArg | undefined,
    isReadonly: boolean | undefined,
    args: RedisArg[],
    options?: object,
  ): Promise<unknown>;
  withCommandOptions(options: object): NodeRedisClusterLike;
  readonly masters: readonly unknown[];
  nodeClient(node: never): Promise<NodeRedisClientLike>;
  subscribe?: NodeRedisPubSubLike['subscribe'];
  unsubscribe?: NodeRedisPubSubLike['unsubscribe'];
}

/** The parts of a node-redis `RedisSentinelType` this binding uses. */
export interface NodeRedisSentinelLike {
  sendCommand(isReadonly: boolean | undefined, args: RedisArg[], options?: object): Promise<unknown>;
  withCommandOptions(options: object): NodeRedisSentinelLike;
  subscribe?: NodeRedisPubSubLike['subscribe'];
  unsubscribe?: NodeRedisPubSubLike['unsubscribe'];
}

/**
 * A client you already have (left open by `close()`; configure it with `disableOfflineQueue: true`, or a call
 * during an outage waits in its queue until RedisStore's deadline), or connection options (the binding creates,
 * connects and later closes the client, with the offline queue off).
 */
export type NodeRedisSource =
  | { readonly client: NodeRedisClientLike }
  | { readonly cluster: NodeRedisClusterLike }
  | { readonly sentinel: NodeRedisSentinelLike }
  | RedisConnectionOptions;

/**
 * Commands go out with node-redis's per-command timer off (`timeout: 0`: a timer per command costs most of the
 * client's throughput on small values, so RedisStore keeps one sweeping timer for all of them) and bulk replies as
 * Buffers. Options passed to your client are otherwise kept.
 */
export async function nodeRedisCommands(source: NodeRedisSource): Promise<RedisCommands> {
  const redis: NodeRedis = await loadPeer('redis', () => import('redis'), 'or use the other Redis binding');
  const commandOptions = { timeout: 0, typeMapping: { [redis.RESP_TYPES.BLOB_STRING]: Buffer } };
  const keep = async () => undefined;
  if ('client' in source) {
    const commands = overClient(redis, source.client.withCommandOptions(commandOptions), keep);
    return withSubscriptions(commands, duplicateListener(redis, source.client, DEFAULT_CONNECT_TIMEOUT_MS));
  }
  if ('cluster' in source && isClusterClient(source.cluster)) {
    const commands = overCluster(
      redis,
      source.cluster.withCommandOptions(commandOptions),
      commandOptions,
      keep,
    );
    return withSubscriptions(commands, ownListener(redis, source.cluster));
  }
  if ('sentinel' in source && isSentinelClient(source.sentinel)) {
    const commands = overSentinel(redis, source.sentinel.withCommandOptions(commandOptions), keep);
    return withSubscriptions(commands, ownListener(redis, source.sentinel));
  }
  return connect(redis, source as RedisConnectionOptions, commandOptions);
}

async function connect(
  redis: NodeRedis,
  options: RedisConnectionOptions,
  commandOptions: object,
): Promise<RedisCommands> {
  const { connectTimeoutMs } = checkConnectionOptions(options);
  const auth = await credentials(options, connectTimeoutMs);
  const tls = tlsSocket(options.tls);
  const socket = { connectTimeout: connectTimeoutMs, ...tls };
  if (options.url !== undefined) {
    const url = tls.tls === true ? options.url.replace(/^redis:/, 'rediss:') : options.url;
    const client = redis.createClient({
      url,
      ...auth,
      socket: { ...socket, tls: url.startsWith('rediss:') } as never,
      disableOfflineQueue: true,
      commandOptions,
    });
    const errors = new ConnectionErrors();
    client.on('error', errors.record);
    await connectWithin(client.connect(), connectTimeoutMs, () => client.destroy(), 'node-redis', errors);
    const commands = overClient(redis, client as unknown as NodeRedisClientLike, () =>
      closeWithin(
        () => client.close(),
        () => client.destroy(),
      ),
    );
    return withSubscriptions(
      commands,
      duplicateListener(redis, client as unknown as NodeRedisClientLike, connectTimeoutMs),
    );
  }
  if (options.cluster !== undefined) {
    const cluster = redis.createCluster({
      rootNodes: options.cluster.seeds.map(({ host, port }) => ({ socket: { host, port, ...tls } as never })),
      defaults: { ...auth, socket: socket as never, disableOfflineQueue: true },
      commandOptions,
    });
    const errors = new ConnectionErrors();
    cluster.on('error', errors.record);
    await connectWithin(cluster.connect(), connectTimeoutMs, () => cluster.destroy(), 'node-redis', errors);
    const commands = overCluster(redis, cluster as unknown as NodeRedisClusterLike, commandOptions, () =>
      closeWithin(
        () => cluster.close(),
        () => cluster.destroy(),
      ),
    );
    return withSubscriptions(commands, ownListener(redis, cluster as unknown as NodeRedisClusterLike));
  }
  const sentinel = options.sentinel!;
  const sentinelClient = redis.createSentinel({
    name: sentinel.name,
    sentinelRootNodes: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    nodeClientOptions: { ...auth, socket: socket as never, disableOfflineQueue: true },
    sentinelClientOptions: { socket: { connectTimeout: connectTimeoutMs } },
    commandOptions,
  });
  const errors = new ConnectionErrors();
  sentinelClient.on('error', errors.record);
  await connectWithin(
    sentinelClient.connect(),
    connectTimeoutMs,
    () => sentinelClient.destroy(),
    'node-redis',
    errors,
  );
  const commands = overSentinel(redis, sentinelClient as unknown as NodeRedisSentinelLike, () =>
    closeWithin(
      () => sentinelClient.close(),
      () => sentinelClient.destroy(),
    ),
  );
  return withSubscriptions(commands, ownListener(redis, sentinelClient as unknown as NodeRedisSentinelLike));
}

/**
 * A password from a secret source goes through node-redis's async credentials provider, which the client asks
 * before every handshake, the first and each reconnection: a rotated password is picked up without a restart.
 * The first read happens here, so a secret that cannot be read fails the start with its own error.
 */
async function credentials(options: RedisConnectionOptions, connectTimeoutMs: number): Promise<object> {
  const username = options.username === undefined ? {} : { username: options.username };
  if (options.password === undefined || typeof options.password === 'string') {
    return { ...username, ...(options.password === undefined ? {} : { password: options.password }) };
  }
  const password = connectionPassword(options.password, connectTimeoutMs);
  await password();
  return {
    credentialsProvider: {
      type: 'async-credentials-provider',
      credentials: async () => ({ ...username, password: await password() }),
    },
  };
}

function overClient(
  redis: NodeRedis,
  client: NodeRedisClientLike,
  close: () => Promise<void>,
): RedisCommands {
  const send: Send = (_firstKey, args) => client.sendCommand(args).catch((error) => fail(redis, error));
  return withPublish(sendCommands(send, { scan: true, close }), send);
}

function overSentinel(
  redis: NodeRedis,
  sentinel: NodeRedisSentinelLike,
  close: () => Promise<void>,
): RedisCommands {
  const send: Send = (_firstKey, args) =>
    sentinel.sendCommand(false, args).catch((error) => fail(redis, error));
  return withPublish(sendCommands(send, { scan: true, close }), send);
}

function overCluster(
  redis: NodeRedis,
  cluster: NodeRedisClusterLike,
  commandOptions: object,
  close: () => Promise<void>,
): RedisCommands {
  const send: Send = (firstKey, args) =>
    cluster.sendCommand(firstKey, false, args).catch((error) => fail(redis, error));
  // The master list changes when the Cluster reshards, so it is read anew on each call; a master's client is
  // fetched when a command goes to it, so an unused master costs nothing and fails nothing.
  const masters = () =>
    cluster.masters.map((master) => {
      const sendToNode: Send = async (_firstKey, args) => {
        try {
          const node = (await cluster.nodeClient(master as never)).withCommandOptions(commandOptions);
          return await node.sendCommand(args);
        } catch (error) {
          return fail(redis, error);
        }
      };
      return sendCommands(sendToNode, { scan: true, close: async () => undefined });
    });
  return withPublish(sendCommands(send, { scan: false, masters, close }), send);
}

/** PUBLISH names no key: `send` routes it to any node, and on a Cluster Redis 7 forwards it to all the others. */
function withPublish(commands: RedisCommands, send: Send): RedisCommands {
  commands.publish = async (channel, message) => Number(await send(undefined, ['PUBLISH', channel, message]));
  return commands;
}

/**
 * SUBSCRIBE on a duplicate of a client: a connection in subscriber mode runs no other command. node-redis
 * subscribes the duplicate again after it reconnects.
 */
function duplicateListener(
  redis: NodeRedis,
  client: NodeRedisClientLike,
  connectTimeoutMs: number,
): Listen | undefined {
  if (typeof client.duplicate !== 'function') return undefined;
  return async (channel, onMessage) => {
    const subscriber = client.duplicate!();
    const errors = new ConnectionErrors();
    subscriber.on('error', errors.record);
    await connectWithin(
      subscriber.connect(),
      connectTimeoutMs,
      () => subscriber.destroy(),
      'node-redis',
      errors,
    );
    try {
      await subscriber.subscribe(channel, deliverTo(onMessage), true);
    } catch (error) {
      await subscriber.destroy();
      fail(redis, error);
    }
    return () =>
      closeWithin(
        () => subscriber.close(),
        () => subscriber.destroy(),
      );
  };
}

/** SUBSCRIBE on a Cluster or Sentinel client: each keeps a pub/sub connection of its own and renews it. */
function ownListener(redis: NodeRedis, client: Partial<NodeRedisPubSubLike>): Listen | undefined {
  const { subscribe, unsubscribe } = client;
  if (typeof subscribe !== 'function' || typeof unsubscribe !== 'function') return undefined;
  return async (channel, onMessage) => {
    const listener = deliverTo(onMessage);
    await subscribe.call(client, channel, listener, true).catch((error) => fail(redis, error));
    return async () => {
      await unsubscribe.call(client, channel, listener, true).catch(ignore);
    };
  };
}

/** A listener that throws must not break the client's reply parsing. */
function deliverTo(onMessage: (message: Buffer) => void): PubSubListener {
  return (message) => {
    try {
      onMessage(Buffer.isBuffer(message) ? message : Buffer.from(message));
    } catch {
      // The subscriber's own fault; the connection carries on.
    }
  };
}

/** node-redis reports a server's error reply as ErrorReply; everything else means the server was not reached. */
function fail(redis: NodeRedis, error: unknown): never {
  if (error instanceof redis.ErrorReply) throw new RedisReplyError(error.message, { cause: error });
  throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'redis (node-redis) did not take the command', {
    cause: error,
  });
}

function tlsSocket(tls: RedisTlsOptions | undefined): Record<string, unknown> {
  if (tls === undefined) return {};
  return {
    tls: true,
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    ...(tls.servername === undefined ? {} : { servername: tls.servername }),
  };
}

function isClusterClient(value: unknown): value is NodeRedisClusterLike {
  return typeof value === 'object' && value !== null && 'nodeClient' in value;
}

function isSentinelClient(value: unknown): value is NodeRedisSentinelLike {
  return typeof value === 'object' && value !== null && 'sendCommand' in value;
}
