import { type Finding, fail, notCheckable, pass, warn } from './report.js';
import { type ServerVersion, versionFinding } from './server-version.js';

/**
 * Control-plane checks of a Memorystore for Redis instance, from `gcloud redis instances describe <name>
 * --region <r> --format=json`. Field names are those of the Redis API's `Instance` resource.
 */
export function checkMemorystore(
  description: unknown,
  minimum: ServerVersion,
): { target: string; findings: Finding[] } {
  const d = (typeof description === 'object' && description !== null ? description : {}) as Record<
    string,
    unknown
  >;
  const name = typeof d.name === 'string' ? d.name.split('/').pop()! : 'instance';
  const findings: Finding[] = [];
  const flag = (value: string) => `\`gcloud redis instances ${value}\``;

  findings.push(
    d.authEnabled === true
      ? pass('memorystore.auth', 'authEnabled true')
      : fail(
          'memorystore.auth',
          `authEnabled ${String(d.authEnabled ?? 'absent')}`,
          `${flag('update <name> --region <r> --enable-auth')}, then read the AUTH string with get-auth-string into a secret manager.`,
        ),
  );
  findings.push(
    d.transitEncryptionMode === 'SERVER_AUTHENTICATION'
      ? pass('memorystore.transit-encryption', 'transitEncryptionMode SERVER_AUTHENTICATION')
      : fail(
          'memorystore.transit-encryption',
          `transitEncryptionMode ${String(d.transitEncryptionMode ?? 'absent')}`,
          `Transit encryption is set at creation: ${flag('create … --transit-encryption-mode=server-authentication')}, then move the data (export/import) and switch clients to port 6378 with the server CA.`,
        ),
  );
  // Memorystore encrypts at rest always; a customer-managed key (CMEK) is what lets you revoke it.
  findings.push(
    typeof d.customerManagedKey === 'string' && d.customerManagedKey.length > 0
      ? pass(
          'memorystore.at-rest-encryption',
          `encrypted at rest under customer-managed key ${d.customerManagedKey}`,
        )
      : warn(
          'memorystore.at-rest-encryption',
          'encrypted at rest under a Google-managed key (no customerManagedKey)',
          `CMEK is set at creation: ${flag('create … --customer-managed-key=projects/…/cryptoKeys/…')}.`,
        ),
  );
  const network = typeof d.authorizedNetwork === 'string' ? d.authorizedNetwork : undefined;
  const connectMode = String(d.connectMode ?? 'DIRECT_PEERING');
  if (network === undefined) {
    findings.push(
      fail(
        'memorystore.network',
        `connectMode ${connectMode}, no authorizedNetwork`,
        'Create the instance in your own VPC: `--network=projects/<p>/global/networks/<vpc> --connect-mode=private-service-access`.',
      ),
    );
  } else if (/\/networks\/default$/.test(network)) {
    findings.push(
      warn(
        'memorystore.network',
        `connectMode ${connectMode}, authorizedNetwork is the project's default network (${network})`,
        'Use a dedicated VPC for PHI workloads, with `--connect-mode=private-service-access`.',
      ),
    );
  } else if (connectMode !== 'PRIVATE_SERVICE_ACCESS') {
    findings.push(
      warn(
        'memorystore.network',
        `connectMode ${connectMode} on ${network}`,
        'Prefer `--connect-mode=private-service-access` (set at creation), which works with VPC Service Controls and shared VPC.',
      ),
    );
  } else {
    findings.push(pass('memorystore.network', `connectMode ${connectMode} on ${network}`));
  }
  const tier = String(d.tier ?? 'absent');
  const replicas = Number(d.replicaCount ?? 0);
  findings.push(
    tier === 'STANDARD_HA'
      ? pass('memorystore.tier', `tier STANDARD_HA, ${replicas} replicas`)
      : warn(
          'memorystore.tier',
          `tier ${tier}: no replica, a failure or maintenance empties the cache`,
          `Create a Standard tier instance: ${flag('create … --tier=standard --replica-count=1')}.`,
        ),
  );
  const persistence = (d.persistenceConfig ?? {}) as Record<string, unknown>;
  const mode = String(persistence.persistenceMode ?? 'DISABLED');
  findings.push(
    mode === 'DISABLED'
      ? pass('memorystore.persistence', 'persistenceMode DISABLED')
      : warn(
          'memorystore.persistence',
          `persistenceMode ${mode}: cached ciphertext is snapshotted to disk`,
          `A cache needs none: ${flag('update <name> --persistence-mode=disabled')}.`,
        ),
  );
  const policy = ((d.redisConfigs ?? {}) as Record<string, unknown>)['maxmemory-policy'];
  findings.push(
    policy === 'noeviction'
      ? pass('memorystore.maxmemory-policy', 'redisConfigs maxmemory-policy noeviction')
      : policy === 'volatile-ttl'
        ? warn(
            'memorystore.maxmemory-policy',
            'maxmemory-policy volatile-ttl',
            `${flag('update <name> --update-redis-config maxmemory-policy=noeviction')}.`,
          )
        : fail(
            'memorystore.maxmemory-policy',
            `maxmemory-policy ${String(policy ?? 'volatile-lru (the Memorystore default)')}`,
            `${flag('update <name> --update-redis-config maxmemory-policy=noeviction')}.`,
          ),
  );
  const version = String(d.redisVersion ?? 'absent');
  // REDIS_7_2, REDIS_6_X: the minor version of an `_X` line is not given, so it counts as .0.
  const parts = /^REDIS_(\d+)_(\d+|X)$/.exec(version);
  const upgrade = `${flag('upgrade <name> --redis-version=redis_7_2')}.`;
  findings.push(
    parts === null
      ? fail('memorystore.version', `redisVersion ${version}: not a Redis version`, upgrade)
      : versionFinding(
          'memorystore.version',
          `redisVersion ${version}`,
          [Number(parts[1]), parts[2] === 'X' ? 0 : Number(parts[2]), 0],
          minimum,
          upgrade,
        ),
  );
  findings.push(
    d.state === 'READY'
      ? pass('memorystore.state', 'state READY')
      : d.state === undefined
        ? notCheckable('memorystore.state', 'the description has no state')
        : warn(
            'memorystore.state',
            `state ${String(d.state)}`,
            'Check the instance in the console; verify again once it is READY.',
          ),
  );
  return { target: `memorystore:${name}`, findings };
}
