import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type PostureReport, type Verdict, verifyPosture } from '../../src/ops/verify/index.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';

/** Fixtures are read from the source tree: build/test/ops -> test/fixtures. */
const fixture = async (name: string) =>
  JSON.parse(
    await readFile(fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url)), 'utf8'),
  ) as Record<string, unknown>;

const verdicts = (report: PostureReport) => Object.fromEntries(report.checks.map((c) => [c.id, c.verdict]));
const NOW = Date.parse('2026-12-02T12:00:00Z');

async function memorystore(description: unknown) {
  return verifyPosture({ memorystore: description, policy: await loadDefaultPolicy(), now: NOW });
}

async function elasticache(description: unknown) {
  return verifyPosture({ elasticache: description, policy: await loadDefaultPolicy(), now: NOW });
}

describe('verify --memorystore', () => {
  test('a secure instance: every check passes', async () => {
    const report = await memorystore(await fixture('memorystore-secure.json'));
    assert.deepEqual(verdicts(report), {
      'memorystore.auth': 'PASS',
      'memorystore.transit-encryption': 'PASS',
      'memorystore.at-rest-encryption': 'PASS',
      'memorystore.network': 'PASS',
      'memorystore.tier': 'PASS',
      'memorystore.persistence': 'PASS',
      'memorystore.maxmemory-policy': 'PASS',
      'memorystore.version': 'PASS',
      'memorystore.state': 'PASS',
    });
    assert.equal(report.ok, true);
    assert.equal(report.checks[0]?.target, 'memorystore:phi-redis');
  });

  test('an insecure instance: each field gives its verdict', async () => {
    const report = await memorystore(await fixture('memorystore-insecure.json'));
    assert.deepEqual(verdicts(report), {
      'memorystore.auth': 'FAIL',
      'memorystore.transit-encryption': 'FAIL',
      'memorystore.at-rest-encryption': 'WARN',
      'memorystore.network': 'FAIL',
      'memorystore.tier': 'WARN',
      'memorystore.persistence': 'WARN',
      'memorystore.maxmemory-policy': 'FAIL',
      'memorystore.version': 'FAIL',
      'memorystore.state': 'WARN',
    });
    assert.equal(report.ok, false);
  });

  // One field of the secure description changed at a time: only its own check moves.
  const changes: [string, (d: Record<string, unknown>) => void, string, Verdict][] = [
    [
      'authEnabled false',
      (d) => {
        d.authEnabled = false;
      },
      'memorystore.auth',
      'FAIL',
    ],
    [
      'transit encryption DISABLED',
      (d) => {
        d.transitEncryptionMode = 'DISABLED';
      },
      'memorystore.transit-encryption',
      'FAIL',
    ],
    [
      'no customer-managed key',
      (d) => {
        delete d.customerManagedKey;
      },
      'memorystore.at-rest-encryption',
      'WARN',
    ],
    [
      'the default network',
      (d) => {
        d.authorizedNetwork = 'projects/phi-prod/global/networks/default';
      },
      'memorystore.network',
      'WARN',
    ],
    [
      'direct peering',
      (d) => {
        d.connectMode = 'DIRECT_PEERING';
      },
      'memorystore.network',
      'WARN',
    ],
    [
      'no authorized network',
      (d) => {
        delete d.authorizedNetwork;
      },
      'memorystore.network',
      'FAIL',
    ],
    [
      'basic tier',
      (d) => {
        d.tier = 'BASIC';
        d.replicaCount = 0;
      },
      'memorystore.tier',
      'WARN',
    ],
    [
      'RDB persistence',
      (d) => {
        d.persistenceConfig = { persistenceMode: 'RDB' };
      },
      'memorystore.persistence',
      'WARN',
    ],
    [
      'allkeys-lru',
      (d) => {
        d.redisConfigs = { 'maxmemory-policy': 'allkeys-lru' };
      },
      'memorystore.maxmemory-policy',
      'FAIL',
    ],
    [
      'volatile-ttl',
      (d) => {
        d.redisConfigs = { 'maxmemory-policy': 'volatile-ttl' };
      },
      'memorystore.maxmemory-policy',
      'WARN',
    ],
    [
      'Redis 6, below the default minimum 7.0',
      (d) => {
        d.redisVersion = 'REDIS_6_X';
      },
      'memorystore.version',
      'FAIL',
    ],
    [
      'Redis 5',
      (d) => {
        d.redisVersion = 'REDIS_5_0';
      },
      'memorystore.version',
      'FAIL',
    ],
    [
      'state UPDATING',
      (d) => {
        d.state = 'UPDATING';
      },
      'memorystore.state',
      'WARN',
    ],
  ];
  for (const [what, change, id, verdict] of changes) {
    test(`${what}: ${id} ${verdict}, every other check still PASS`, async () => {
      const description = await fixture('memorystore-secure.json');
      change(description);
      const got = verdicts(await memorystore(description));
      assert.equal(got[id], verdict);
      for (const [other, v] of Object.entries(got)) if (other !== id) assert.equal(v, 'PASS', other);
    });
  }
});

describe('verify --elasticache', () => {
  test('a secure replication group: every check passes but the network, which the file cannot show', async () => {
    const report = await elasticache(await fixture('elasticache-secure.json'));
    assert.deepEqual(verdicts(report), {
      'elasticache.auth': 'PASS',
      'elasticache.transit-encryption': 'PASS',
      'elasticache.at-rest-encryption': 'PASS',
      'elasticache.network': 'NOT-CHECKABLE',
      'elasticache.replicas': 'PASS',
      'elasticache.persistence': 'PASS',
      'elasticache.version': 'PASS',
      'elasticache.state': 'PASS',
    });
    assert.equal(report.ok, true);
    assert.match(
      report.checks.find((c) => c.id === 'elasticache.network')!.evidence,
      /does not show subnets/,
    );
  });

  test('an insecure replication group: each field gives its verdict', async () => {
    const report = await elasticache(await fixture('elasticache-insecure.json'));
    assert.deepEqual(verdicts(report), {
      'elasticache.auth': 'FAIL',
      'elasticache.transit-encryption': 'FAIL',
      'elasticache.at-rest-encryption': 'FAIL',
      'elasticache.network': 'NOT-CHECKABLE',
      'elasticache.replicas': 'WARN',
      'elasticache.persistence': 'WARN',
      'elasticache.version': 'FAIL',
      'elasticache.state': 'WARN',
    });
    assert.equal(report.ok, false);
  });

  const group = (d: Record<string, unknown>) => (d.ReplicationGroups as Record<string, unknown>[])[0]!;
  const changes: [string, (g: Record<string, unknown>) => void, string, Verdict][] = [
    [
      'no RBAC, no AUTH token',
      (g) => {
        g.UserGroupIds = [];
      },
      'elasticache.auth',
      'FAIL',
    ],
    [
      'transit mode preferred',
      (g) => {
        g.TransitEncryptionMode = 'preferred';
      },
      'elasticache.transit-encryption',
      'FAIL',
    ],
    [
      'no transit encryption',
      (g) => {
        g.TransitEncryptionEnabled = false;
        delete g.TransitEncryptionMode;
      },
      'elasticache.transit-encryption',
      'FAIL',
    ],
    [
      'the AWS-owned key',
      (g) => {
        delete g.KmsKeyId;
      },
      'elasticache.at-rest-encryption',
      'WARN',
    ],
    [
      'no at-rest encryption',
      (g) => {
        g.AtRestEncryptionEnabled = false;
      },
      'elasticache.at-rest-encryption',
      'FAIL',
    ],
    [
      'no failover',
      (g) => {
        g.AutomaticFailover = 'disabled';
      },
      'elasticache.replicas',
      'WARN',
    ],
    [
      'snapshots kept',
      (g) => {
        g.SnapshotRetentionLimit = 5;
      },
      'elasticache.persistence',
      'WARN',
    ],
    [
      'Redis 6',
      (g) => {
        g.EngineVersion = '6.2.6';
      },
      'elasticache.version',
      'FAIL',
    ],
    [
      'no engine version in the file',
      (g) => {
        delete g.EngineVersion;
      },
      'elasticache.version',
      'NOT-CHECKABLE',
    ],
    [
      'modifying',
      (g) => {
        g.Status = 'modifying';
      },
      'elasticache.state',
      'WARN',
    ],
  ];
  for (const [what, change, id, verdict] of changes) {
    test(`${what}: ${id} ${verdict}, every other check unchanged`, async () => {
      const description = await fixture('elasticache-secure.json');
      change(group(description));
      const got = verdicts(await elasticache(description));
      assert.equal(got[id], verdict);
      for (const [other, v] of Object.entries(got)) {
        if (other !== id) assert.equal(v, other === 'elasticache.network' ? 'NOT-CHECKABLE' : 'PASS', other);
      }
    });
  }

  test('an AUTH token alone passes auth', async () => {
    const description = await fixture('elasticache-secure.json');
    Object.assign(group(description), { UserGroupIds: [], AuthTokenEnabled: true });
    assert.equal(verdicts(await elasticache(description))['elasticache.auth'], 'PASS');
  });

  test('a file without replication groups: NOT-CHECKABLE, never a pass', async () => {
    const report = await elasticache({});
    assert.deepEqual(verdicts(report), { 'elasticache.description': 'NOT-CHECKABLE' });
  });
});

describe('verify: the minimum Redis version applies to descriptions as to live servers', () => {
  test('the secure descriptions pass the default minimum and FAIL a higher one', async () => {
    const policy = await loadDefaultPolicy();
    const both = {
      memorystore: await fixture('memorystore-secure.json'),
      elasticache: await fixture('elasticache-secure.json'),
      policy,
      now: NOW,
    };
    const byDefault = verdicts(await verifyPosture(both));
    assert.equal(byDefault['memorystore.version'], 'PASS');
    assert.equal(byDefault['elasticache.version'], 'PASS');
    const raised = await verifyPosture({ ...both, minimumServerVersion: '7.4' });
    const got = verdicts(raised);
    assert.equal(got['memorystore.version'], 'FAIL');
    assert.equal(got['elasticache.version'], 'FAIL');
    assert.match(
      raised.checks.find((c) => c.id === 'memorystore.version')!.evidence,
      /redisVersion REDIS_7_2, older than the minimum 7\.4\.0/,
    );
    const lowered = verdicts(await verifyPosture({ ...both, minimumServerVersion: '7.2' }));
    assert.equal(lowered['memorystore.version'], 'PASS');
    assert.equal(lowered['elasticache.version'], 'FAIL', 'ElastiCache 7.1.0 is below 7.2');
  });
});
