import { type Finding, fail, notCheckable, pass, warn } from './report.js';
import { type ServerVersion, versionFinding } from './server-version.js';

/**
 * Control-plane checks of ElastiCache replication groups, from `aws elasticache describe-replication-groups
 * [--replication-group-id <id>]` (JSON). Every group in the file is checked.
 */
export function checkElastiCache(
  description: unknown,
  minimum: ServerVersion,
): { target: string; findings: Finding[] }[] {
  const groups = (description as { ReplicationGroups?: unknown })?.ReplicationGroups;
  if (!Array.isArray(groups) || groups.length === 0) {
    return [
      {
        target: 'elasticache',
        findings: [notCheckable('elasticache.description', 'the file has no ReplicationGroups')],
      },
    ];
  }
  return groups.map((group) => checkGroup((group ?? {}) as Record<string, unknown>, minimum));
}

function checkGroup(
  g: Record<string, unknown>,
  minimum: ServerVersion,
): { target: string; findings: Finding[] } {
  const id = String(g.ReplicationGroupId ?? 'group');
  const modify = (flags: string) =>
    `\`aws elasticache modify-replication-group --replication-group-id ${id} ${flags} --apply-immediately\``;
  const findings: Finding[] = [];
  const rbac = Array.isArray(g.UserGroupIds) && g.UserGroupIds.length > 0;
  findings.push(
    g.AuthTokenEnabled === true || rbac
      ? pass(
          'elasticache.auth',
          rbac ? `RBAC user groups ${(g.UserGroupIds as unknown[]).join(', ')}` : 'AuthTokenEnabled true',
        )
      : fail(
          'elasticache.auth',
          'no AUTH token and no RBAC user group',
          `${modify('--user-group-ids-to-add <group>')} (or \`--auth-token … --auth-token-update-strategy ROTATE\`).`,
        ),
  );
  const transit = g.TransitEncryptionEnabled === true;
  const mode =
    typeof g.TransitEncryptionMode === 'string' ? g.TransitEncryptionMode : transit ? 'required' : 'none';
  findings.push(
    transit && mode === 'required'
      ? pass('elasticache.transit-encryption', 'TransitEncryptionEnabled true, mode required')
      : fail(
          'elasticache.transit-encryption',
          `TransitEncryptionEnabled ${String(g.TransitEncryptionEnabled ?? false)}, mode ${mode}`,
          `${modify('--transit-encryption-enabled --transit-encryption-mode required')} (through "preferred" first, then "required", once every client uses TLS).`,
        ),
  );
  const kms = typeof g.KmsKeyId === 'string' && g.KmsKeyId.length > 0 ? g.KmsKeyId : undefined;
  findings.push(
    g.AtRestEncryptionEnabled !== true
      ? fail(
          'elasticache.at-rest-encryption',
          'AtRestEncryptionEnabled false',
          'At-rest encryption is set at creation: create a new group with `--at-rest-encryption-enabled --kms-key-id <cmk arn>` and move the clients.',
        )
      : kms === undefined
        ? warn(
            'elasticache.at-rest-encryption',
            'encrypted at rest under the AWS-owned key (no KmsKeyId)',
            'A customer-managed key is set at creation: `--kms-key-id <cmk arn>`.',
          )
        : pass('elasticache.at-rest-encryption', `encrypted at rest under customer-managed key ${kms}`),
  );
  findings.push(
    notCheckable(
      'elasticache.network',
      'describe-replication-groups does not show subnets or security groups',
      'Check with `aws elasticache describe-cache-clusters --show-cache-node-info` (CacheSubnetGroupName, SecurityGroups) that the nodes sit in private subnets whose security group admits only the application.',
    ),
  );
  const failover = String(g.AutomaticFailover ?? 'disabled');
  const multiAz = String(g.MultiAZ ?? 'disabled');
  const members = Array.isArray(g.MemberClusters) ? g.MemberClusters.length : 0;
  findings.push(
    failover === 'enabled' && multiAz === 'enabled'
      ? pass('elasticache.replicas', `AutomaticFailover enabled, MultiAZ enabled, ${members} nodes`)
      : warn(
          'elasticache.replicas',
          `AutomaticFailover ${failover}, MultiAZ ${multiAz}, ${members} nodes: a node failure empties the cache`,
          `${modify('--automatic-failover-enabled --multi-az-enabled')} with at least one replica per node group.`,
        ),
  );
  const retention = Number(g.SnapshotRetentionLimit ?? 0);
  findings.push(
    retention === 0
      ? pass('elasticache.persistence', 'SnapshotRetentionLimit 0: no automatic snapshots')
      : warn(
          'elasticache.persistence',
          `SnapshotRetentionLimit ${retention}: daily snapshots hold the cached ciphertext for ${retention} days`,
          `A cache needs none: ${modify('--snapshot-retention-limit 0')}.`,
        ),
  );
  const version = typeof g.EngineVersion === 'string' ? g.EngineVersion : undefined;
  if (version === undefined) {
    findings.push(
      notCheckable(
        'elasticache.version',
        'describe-replication-groups does not give the engine version',
        'Read it with `aws elasticache describe-cache-clusters` (EngineVersion).',
      ),
    );
  } else {
    const parts = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
    const seen = `${String(g.Engine ?? 'redis')} ${version}`;
    const upgrade = `${modify('--engine-version 7.1')}.`;
    findings.push(
      parts === null
        ? fail('elasticache.version', `${seen}: not a version`, upgrade)
        : versionFinding(
            'elasticache.version',
            seen,
            [Number(parts[1]), Number(parts[2]), Number(parts[3] ?? 0)],
            minimum,
            upgrade,
          ),
    );
  }
  findings.push(
    g.Status === 'available'
      ? pass('elasticache.state', 'Status available')
      : g.Status === undefined
        ? notCheckable('elasticache.state', 'the description has no Status')
        : warn(
            'elasticache.state',
            `Status ${String(g.Status)}`,
            'Verify again once the group is available.',
          ),
  );
  return { target: `elasticache:${id}`, findings };
}
