import type { Policy } from '../../policy/policy.js';
import type { KeyDisplay } from '../key-display.js';
import { judgeTtl } from '../ttl-caps.js';
import type { KeySample } from './key-sample.js';
import { isRefused, type LiveServer } from './live-server.js';
import { type Finding, fail, notCheckable, pass, warn } from './report.js';

export interface DataOptions {
  readonly policy: Policy;
  readonly dekEpochMs: number;
  readonly now: number;
}

/** Keys without TTL: INFO keyspace counts every database; the sample names (redacted) a few of them. */
export async function checkNoTtl(
  server: LiveServer,
  sample: KeySample,
  display: KeyDisplay,
): Promise<Finding> {
  const id = 'data.no-ttl';
  const remedy =
    'Give every key an expiry (SET … PX, or EXPIRE the keys found); `phicache ttl-audit` lists them all. A cache shared with other applications holds their untimed keys too: move them to another instance.';
  const keyspace = await server.info('keyspace');
  let untimed = 0;
  let total = 0;
  if (!isRefused(keyspace)) {
    for (const [, value] of keyspace) {
      const keys = Number(/keys=(\d+)/.exec(value)?.[1] ?? 0);
      const expires = Number(/expires=(\d+)/.exec(value)?.[1] ?? 0);
      total += keys;
      untimed += keys - expires;
    }
  }
  const sampled = sample.keys.filter((k) => k.ttlMs === -1);
  const names = sampled.slice(0, 5).map((k) => display.show(k.name));
  const seen = `sample of ${sample.keys.length} keys: ${sampled.length} without TTL${names.length > 0 ? ` (${names.join(', ')})` : ''}`;
  if (isRefused(keyspace)) {
    if (sampled.length > 0) return fail(id, `${seen}; ${keyspace.refused}`, remedy);
    return notCheckable(id, `${keyspace.refused}; ${seen}`);
  }
  if (untimed > 0 || sampled.length > 0)
    return fail(id, `INFO keyspace: ${untimed} of ${total} keys have no TTL; ${seen}`, remedy);
  return pass(id, `INFO keyspace: all ${total} keys have a TTL; ${seen}`);
}

/** Every sampled phicache key within its class cap (entries) or one DEK epoch past it (key records). */
export function checkClassCaps(sample: KeySample, options: DataOptions, display: KeyDisplay): Finding {
  const id = 'data.class-caps';
  if (sample.refused !== undefined) return notCheckable(id, sample.refused);
  let capped = 0;
  const over: string[] = [];
  const unknown = new Set<string>();
  for (const key of sample.keys) {
    const verdict = judgeTtl(key.name.toString('latin1'), key.ttlMs, options);
    if (verdict.kind === 'not-capped' || verdict.kind === 'no-ttl') continue;
    capped += 1;
    if (verdict.kind === 'over-cap')
      over.push(`${display.show(key.name)} ${verdict.ttlMs} ms > ${verdict.capMs} ms`);
    if (verdict.kind === 'unknown-class') unknown.add(verdict.className);
  }
  const scope = `${capped} phicache keys in a sample of ${sample.keys.length}${sample.complete ? ' (the whole keyspace)' : ''}`;
  if (over.length > 0 || unknown.size > 0) {
    return fail(
      id,
      `${scope}: ${over.length} over their class cap${over.length > 0 ? ` (${over.slice(0, 3).join('; ')})` : ''}${unknown.size > 0 ? `; classes the policy does not declare: ${[...unknown].join(', ')}` : ''}`,
      'Find the writer that sets a longer TTL than the policy allows (all phicache writes are capped; a key written by hand or by an older policy is not), and check verify runs with the policy the writers use (--policy).',
    );
  }
  return pass(id, `${scope}: all within their class cap`);
}

/** Eviction must not drop a data-key record or a purge marker before the entries that depend on it. */
export async function checkEvictionPolicy(server: LiveServer): Promise<Finding> {
  const id = 'data.maxmemory-policy';
  const memory = await server.info('memory');
  if (isRefused(memory)) return notCheckable(id, memory.refused);
  const policy = memory.get('maxmemory_policy');
  if (policy === undefined) return notCheckable(id, 'INFO memory has no maxmemory_policy');
  const remedy =
    'Set `maxmemory-policy noeviction` (Memorystore `--redis-config maxmemory-policy=noeviction`, ElastiCache parameter group `maxmemory-policy`).';
  if (policy === 'noeviction')
    return pass(id, 'maxmemory-policy noeviction: a full Redis refuses writes, which phicache drops');
  if (policy === 'volatile-ttl')
    return warn(
      id,
      'maxmemory-policy volatile-ttl: data keys and markers outlive their entries, so mostly safe',
      remedy,
    );
  return fail(
    id,
    `maxmemory-policy ${policy}: may evict a data key before its entries, or a purge marker before it was read`,
    remedy,
  );
}

/** Persistence writes the (encrypted) cache to disk and into backups that outlive every TTL: reported, not refused. */
export async function checkPersistence(server: LiveServer): Promise<Finding> {
  const id = 'data.persistence';
  const remedy =
    'A cache needs no persistence: `appendonly no` and `save ""`; Memorystore `--persistence-mode=disabled`; ElastiCache `--snapshot-retention-limit 0`. If you keep it, the files hold ciphertext whose data keys expire, but treat them and their backups as holding PHI.';
  const persistence = await server.info('persistence');
  if (isRefused(persistence)) return notCheckable(id, persistence.refused);
  const aof = persistence.get('aof_enabled') === '1';
  const save = await server.config('save');
  if (aof)
    return warn(
      id,
      `AOF on (aof_enabled:1)${isRefused(save) ? '' : `, save "${save}"`}: cached ciphertext is written to disk`,
      remedy,
    );
  if (isRefused(save))
    return notCheckable(id, `AOF off; the RDB schedule is not readable: ${save.refused}`, remedy);
  if (save.trim() !== '')
    return warn(id, `RDB snapshots on (save "${save}"): cached ciphertext is written to disk`, remedy);
  return pass(id, 'AOF off and no RDB schedule (save "")');
}

/** A replica (or Sentinel/Cluster failover) keeps the cache up through a node failure; a cache may do without. */
export async function checkReplication(server: LiveServer): Promise<Finding> {
  const id = 'server.replication';
  const [replication, cluster] = await Promise.all([server.info('replication'), server.info('cluster')]);
  if (isRefused(replication)) return notCheckable(id, replication.refused);
  const role = replication.get('role');
  const replicas = Number(replication.get('connected_slaves') ?? 0);
  const clustered = !isRefused(cluster) && cluster.get('cluster_enabled') === '1';
  const shape = `role ${role}, ${replicas} connected replicas${clustered ? ', Cluster node' : ''}`;
  if (role === 'slave') return pass(id, `${shape}: this node is a replica`);
  if (replicas > 0) return pass(id, shape);
  return warn(
    id,
    `${shape}: a node failure empties the cache (misses, not data loss)`,
    'Add a replica with failover: Sentinel or Cluster; Memorystore `--tier=standard`; ElastiCache `--replicas-per-node-group 1 --automatic-failover-enabled --multi-az-enabled`.',
  );
}
