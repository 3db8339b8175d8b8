import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { PostureReport, ProbeTarget } from '../../src/ops/verify/index.js';
import { verifyPosture } from '../../src/ops/verify/index.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { Policy } from '../../src/policy/policy.js';
import {
  type ConfiguredRedis,
  parseInfo,
  RespConnection,
  type RespConnectOptions,
  startConfiguredRedis,
  waitFor,
} from '../harness/redis.js';

/**
 * TLS on the links between nodes: a replica that syncs over the plain port and a Cluster bus without TLS carry
 * every key and value in the clear, so `tls.replication` and `tls.cluster` FAIL; TLS on every link passes. Real
 * primaries, replicas and Cluster nodes, started by the harness.
 */

const NOW = Date.parse('2026-12-02T12:00:00Z');
let policy: Policy;
let caDir: string;
const servers: ConfiguredRedis[] = [];

before(async () => {
  policy = await loadDefaultPolicy();
  caDir = await mkdtemp(join(tmpdir(), 'phicache-verify-links-'));
});
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await rm(caDir, { recursive: true, force: true });
});

async function start(spec: Parameters<typeof startConfiguredRedis>[0]): Promise<ConfiguredRedis> {
  const server = await startConfiguredRedis(spec);
  servers.push(server);
  return server;
}

async function info(options: RespConnectOptions, section: string): Promise<Map<string, string>> {
  const connection = await RespConnection.open(options);
  try {
    return parseInfo(await connection.call('INFO', section));
  } finally {
    connection.close();
  }
}

/** Waits until the primary counts a replica whose link is up: the link the check is about exists. */
async function replicaLinked(primary: RespConnectOptions, replica: RespConnectOptions): Promise<void> {
  await waitFor(
    async () =>
      (await info(primary, 'replication')).get('connected_slaves') === '1' &&
      (await info(replica, 'replication')).get('master_link_status') === 'up',
    20_000,
    'the replica to sync with its primary',
  );
}

function finding(report: PostureReport, id: string): { verdict: string; evidence: string } {
  const check = report.checks.find((c) => c.id === id);
  assert.ok(check, `the report has ${id}`);
  return check;
}

function tlsTarget(server: ConfiguredRedis): ProbeTarget {
  return { host: '127.0.0.1', port: server.tlsPort!, tls: { ca: server.tls!.ca } };
}

describe('tls.replication', () => {
  test('a TLS primary whose replica syncs over the plain port (tls-replication no): FAIL on both ends', async () => {
    const primary = await start({ tls: { plainPort: true }, config: ['tls-replication no'] });
    const replica = await start({ config: [`replicaof 127.0.0.1 ${primary.plainPort}`] });
    await replicaLinked({ port: primary.plainPort! }, { port: replica.plainPort! });

    const report = await verifyPosture({ targets: [tlsTarget(primary)], policy, now: NOW });
    const link = finding(report, 'tls.replication');
    assert.equal(link.verdict, 'FAIL', link.evidence);
    assert.match(link.evidence, /tls-replication no with 1 replication links/);
    assert.equal(report.ok, false);

    const fromReplica = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: replica.plainPort! }],
      policy,
      now: NOW,
    });
    assert.equal(finding(fromReplica, 'tls.replication').verdict, 'FAIL');
  });

  test('TLS on every link (tls-replication yes, the replica on the TLS port): PASS', async () => {
    const primary = await start({ tls: {}, config: ['tls-replication yes'] });
    const primaryCa = join(caDir, `primary-${primary.tlsPort}.crt`);
    await writeFile(primaryCa, primary.tls!.ca);
    // The replica trusts the primary's CA for its outgoing link; its own clients are not asked for certificates.
    const replica = await start({
      tls: {},
      config: [
        'tls-replication yes',
        `tls-ca-cert-file ${primaryCa}`,
        `replicaof 127.0.0.1 ${primary.tlsPort}`,
      ],
    });
    await replicaLinked(
      { port: primary.tlsPort!, tls: primary.tls! },
      { port: replica.tlsPort!, tls: { ca: replica.tls!.ca } },
    );

    const report = await verifyPosture({ targets: [tlsTarget(primary)], policy, now: NOW });
    const link = finding(report, 'tls.replication');
    assert.equal(link.verdict, 'PASS', link.evidence);
    assert.match(link.evidence, /tls-replication yes \(1 links\)/);
    // A primary with a live replica is also what server.replication asks for.
    const ha = finding(report, 'server.replication');
    assert.equal(ha.verdict, 'PASS', ha.evidence);
    assert.match(ha.evidence, /role master, 1 connected replicas/);
  });
});

describe('tls.cluster', () => {
  test('a Cluster node whose bus is plain (tls-cluster no): FAIL', async () => {
    const node = await start({ tls: {}, clusterNode: true, config: ['tls-cluster no'] });
    const report = await verifyPosture({ targets: [tlsTarget(node)], policy, now: NOW });
    const bus = finding(report, 'tls.cluster');
    assert.equal(bus.verdict, 'FAIL', bus.evidence);
    assert.match(bus.evidence, /tls-cluster no on a Cluster node/);
  });

  test('a Cluster node whose bus is TLS (tls-cluster yes): PASS', async () => {
    const node = await start({ tls: {}, clusterNode: true, config: ['tls-cluster yes'] });
    const clustered = await info({ port: node.tlsPort!, tls: node.tls! }, 'cluster');
    assert.equal(clustered.get('cluster_enabled'), '1');
    const report = await verifyPosture({ targets: [tlsTarget(node)], policy, now: NOW });
    const bus = finding(report, 'tls.cluster');
    assert.equal(bus.verdict, 'PASS', bus.evidence);
    assert.equal(bus.evidence, 'tls-cluster yes');
  });

  test('a Cluster node whose settings the user may not read: NOT-CHECKABLE, never PASS', async () => {
    const node = await start({
      tls: {},
      clusterNode: true,
      config: ['user default off', 'user reader on >pw ~* +@all -config', 'user admin on >pw2 ~* +@all'],
      probe: { username: 'admin', password: 'pw2' },
    });
    const report = await verifyPosture({
      targets: [{ ...tlsTarget(node), username: 'reader', password: 'pw' }],
      policy,
      now: NOW,
    });
    const bus = finding(report, 'tls.cluster');
    assert.equal(bus.verdict, 'NOT-CHECKABLE', bus.evidence);
    assert.match(bus.evidence, /a Cluster node; tls-cluster not readable/);
  });
});
