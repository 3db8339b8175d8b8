/**
 * RedisCommands over node-redis (the `redis` package, v6), the client Redis recommends for new projects.
 * `redis` is an optional peer dependency: it is imported here only, and only when this function is called.
 */
import { PhiCacheError } from '../../errors.js';
import {
  checkConnectionOptions,
  type RedisArg,
  type RedisCommands,
  type RedisConnectionOptions,
  RedisReplyError,
  type RedisTlsOptions,
} from './commands.js';
import { closeWithin, connectWithin, ignore } from './lifecycle.js';
import { type Send, sendCommands } from './send.js';

type NodeRedis = typeof import('redis');

/** The parts of a node-redis client this binding uses; a `RedisClientType` fits. */
export interface NodeRedisClientLike {
  sendCommand(args: RedisArg[], options?: object): Promise<unknown>;
  withCommandOptions(options: object): NodeRedisClientLike;
}

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
}

/** The parts of a node-redis `RedisSentinelType` this binding uses. */
export interface NodeRedisSentinelLike {
  sendCommand(isReadonly: boolean | undefined, args: RedisArg[], options?: object): Promise<unknown>;
  withCommandOptions(options: object): NodeRedisSentinelLike;
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
 * Commands go out with node-redis's per-command timer off (`timeout: 0`: RedisStore keeps one sweeping timer for
 * all of them, DESIGN §7) and bulk replies as Buffers. Options passed to your client are otherwise kept.
 */
export async function nodeRedisCommands(source: NodeRedisSource): Promise<RedisCommands> {
  const redis: NodeRedis = await import('redis');
  const commandOptions = { timeout: 0, typeMapping: { [redis.RESP_TYPES.BLOB_STRING]: Buffer } };
  const keep = async () => undefined;
  if ('client' in source) return overClient(redis, source.client.withCommandOptions(commandOptions), keep);
  if ('cluster' in source && isClusterClient(source.cluster)) {
    return overCluster(redis, source.cluster.withCommandOptions(commandOptions), commandOptions, keep);
  }
  if ('sentinel' in source && isSentinelClient(source.sentinel)) {
    return overSentinel(redis, source.sentinel.withCommandOptions(commandOptions), keep);
  }
  return connect(redis, source as RedisConnectionOptions, commandOptions);
}

async function connect(
  redis: NodeRedis,
  options: RedisConnectionOptions,
  commandOptions: object,
): Promise<RedisCommands> {
  const { connectTimeoutMs } = checkConnectionOptions(options);
  const auth = {
    ...(options.username === undefined ? {} : { username: options.username }),
    ...(options.password === undefined ? {} : { password: options.password }),
  };
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
    client.on('error', ignore);
    await connectWithin(client.connect(), connectTimeoutMs, () => client.destroy(), 'node-redis');
    return overClient(redis, client as unknown as NodeRedisClientLike, () =>
      closeWithin(
        () => client.close(),
        () => client.destroy(),
      ),
    );
  }
  if (options.cluster !== undefined) {
    const cluster = redis.createCluster({
      rootNodes: options.cluster.seeds.map(({ host, port }) => ({ socket: { host, port, ...tls } as never })),
      defaults: { ...auth, socket: socket as never, disableOfflineQueue: true },
      commandOptions,
    });
    cluster.on('error', ignore);
    await connectWithin(cluster.connect(), connectTimeoutMs, () => cluster.destroy(), 'node-redis');
    return overCluster(redis, cluster as unknown as NodeRedisClusterLike, commandOptions, () =>
      closeWithin(
        () => cluster.close(),
        () => cluster.destroy(),
      ),
    );
  }
  const sentinel = options.sentinel!;
  const sentinelClient = redis.createSentinel({
    name: sentinel.name,
    sentinelRootNodes: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    nodeClientOptions: { ...auth, socket: socket as never, disableOfflineQueue: true },
    sentinelClientOptions: { socket: { connectTimeout: connectTimeoutMs } },
    commandOptions,
  });
  sentinelClient.on('error', ignore);
  await connectWithin(
    sentinelClient.connect(),
    connectTimeoutMs,
    () => sentinelClient.destroy(),
    'node-redis',
  );
  return overSentinel(redis, sentinelClient as unknown as NodeRedisSentinelLike, () =>
    closeWithin(
      () => sentinelClient.close(),
      () => sentinelClient.destroy(),
    ),
  );
}

function overClient(
  redis: NodeRedis,
  client: NodeRedisClientLike,
  close: () => Promise<void>,
): RedisCommands {
  const send: Send = (_firstKey, args) => client.sendCommand(args).catch((error) => fail(redis, error));
  return sendCommands(send, { scan: true, close });
}

function overSentinel(
  redis: NodeRedis,
  sentinel: NodeRedisSentinelLike,
  close: () => Promise<void>,
): RedisCommands {
  const send: Send = (_firstKey, args) =>
    sentinel.sendCommand(false, args).catch((error) => fail(redis, error));
  return sendCommands(send, { scan: true, close });
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
  return sendCommands(send, { scan: false, masters, close });
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
