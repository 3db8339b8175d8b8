/**
 * What a failover drill asks the servers directly, over raw RESP and never through the client under test: which
 * master to kill, and when the deployment itself has finished failing over (so the client's recovery time can be
 * told apart from the server's).
 */
import { type PrivateRedis, parseInfo, type RedisNode, respCall } from '../harness/redis.js';

/** How many entry keys (`phc:e:*`) a node holds, by SCAN. */
export async function entryKeysOn(node: { port: number }): Promise<number> {
  let cursor = '0';
  let count = 0;
  do {
    const reply = (await respCall(
      { port: node.port },
      'SCAN',
      cursor,
      'MATCH',
      'phc:e:*',
      'COUNT',
      1000,
    )) as [string, string[]];
    cursor = reply[0];
    count += reply[1].length;
  } while (cursor !== '0');
  return count;
}

/** The Sentinel group's master: the node every sentinel names. */
export async function sentinelMaster(redis: PrivateRedis): Promise<RedisNode> {
  const sentinel = redis.nodes.find((n) => n.role === 'sentinel')!;
  const reply = await respCall(
    { port: sentinel.port },
    'SENTINEL',
    'get-master-addr-by-name',
    redis.sentinel!.name,
  );
  const port = Number((reply as string[])[1]);
  const master = redis.nodes.find((n) => n.port === port);
  if (master === undefined) throw new Error(`sentinels name an unknown master on port ${port}`);
  return master;
}

/** True once a majority of sentinels name a master other than `old`, and that node says it is a master. */
export async function sentinelFailedOver(redis: PrivateRedis, old: RedisNode): Promise<boolean> {
  const sentinels = redis.nodes.filter((n) => n.role === 'sentinel');
  const named = await Promise.all(
    sentinels.map(async (s) => {
      const reply = await respCall(
        { port: s.port },
        'SENTINEL',
        'get-master-addr-by-name',
        redis.sentinel!.name,
      );
      return Number((reply as string[])[1]);
    }),
  );
  const moved = named.filter((port) => port !== old.port);
  if (moved.length * 2 <= sentinels.length) return false;
  const role = parseInfo(await respCall({ port: moved[0]! }, 'INFO', 'replication'));
  return role.get('role') === 'master';
}

interface ClusterNodeLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly masterId: string;
}

async function clusterNodes(port: number): Promise<ClusterNodeLine[]> {
  const text = String(await respCall({ port }, 'CLUSTER', 'NODES'));
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId] = line.split(' ');
      return {
        id: id!,
        port: Number(address!.split('@')[0]!.split(':').at(-1)),
        flags: flags!.split(','),
        masterId: masterId!,
      };
    });
}

/** The Cluster master holding the most entry keys, and the replica that will take over from it. */
export async function busiestClusterMaster(
  redis: PrivateRedis,
): Promise<{ master: RedisNode; replicaPort: number; entryKeys: number }> {
  const masters = redis.nodes.filter((n) => n.role === 'master');
  const counts = await Promise.all(masters.map((m) => entryKeysOn(m)));
  const busiest = counts.indexOf(Math.max(...counts));
  const master = masters[busiest]!;
  const lines = await clusterNodes(master.port);
  const self = lines.find((line) => line.flags.includes('myself'))!;
  const replica = lines.find((line) => line.masterId === self.id);
  if (replica === undefined) throw new Error(`master on port ${master.port} has no replica`);
  return { master, replicaPort: replica.port, entryKeys: counts[busiest]! };
}

/** True once a surviving master reports the Cluster healthy again with `replicaPort` promoted to master. */
export async function clusterFailedOver(
  redis: PrivateRedis,
  old: RedisNode,
  replicaPort: number,
): Promise<boolean> {
  const witness = redis.nodes.find((n) => n.role === 'master' && n.port !== old.port)!;
  const info = parseInfo(await respCall({ port: witness.port }, 'CLUSTER', 'INFO'));
  if (info.get('cluster_state') !== 'ok') return false;
  const promoted = (await clusterNodes(witness.port)).find((line) => line.port === replicaPort);
  return promoted?.flags.includes('master') === true && !promoted.flags.includes('fail');
}
