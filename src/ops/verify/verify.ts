import type { Policy } from '../../policy/policy.js';
import { checkDeadlineMs } from '../deadline.js';
import { KeyDisplay } from '../key-display.js';
import { checkAuthRequired, checkDefaultUser, pingUnauthenticated } from './authentication.js';
import { checkEnvelopes, checkKeyNames } from './content.js';
import {
  checkClassCaps,
  checkEvictionPolicy,
  checkNoTtl,
  checkPersistence,
  checkReplication,
} from './data.js';
import { checkElastiCache } from './elasticache.js';
import { checkExposure } from './exposure.js';
import { sampleKeys } from './key-sample.js';
import { LiveServer } from './live-server.js';
import { checkMemorystore } from './memorystore.js';
import { checkLeastPrivilege } from './privilege.js';
import { ProbeConnection, type ProbeTarget } from './probe-connection.js';
import { buildReport, type CheckResult, type Finding, notCheckable, type PostureReport } from './report.js';
import {
  checkVersion,
  DEFAULT_MINIMUM_SERVER_VERSION,
  parseMinimumVersion,
  type ServerVersion,
} from './server-version.js';
import {
  checkCertificateExpiry,
  checkCertificateName,
  checkClientCertificates,
  checkClusterTls,
  checkPlaintextListener,
  checkReplicationTls,
  checkTlsVersion,
  inspectTls,
} from './transport.js';

export interface VerifyOptions {
  /** Live nodes to check from a client connection (one per standalone server, Sentinel master or Cluster seed). */
  readonly targets?: readonly ProbeTarget[];
  /** Parsed JSON of `gcloud redis instances describe --format=json`. */
  readonly memorystore?: unknown;
  /** Parsed JSON of `aws elasticache describe-replication-groups`. */
  readonly elasticache?: unknown;
  /** The policy whose class caps the keys must respect. */
  readonly policy: Policy;
  /** KEK ids (with version) the keyset knows; without them the key ids of envelopes are NOT-CHECKABLE. */
  readonly knownKids?: readonly string[];
  /** The policy asks for client certificates (mutual TLS). Default false. */
  readonly requireClientCertificates?: boolean;
  /** The deadline of every connection and every call, in ms. Default 5,000; 1..600,000. */
  readonly deadlineMs?: number;
  /** Keys sampled per node for the TTL, cap, envelope and key-name checks. Default 10,000; 1..1,000,000. */
  readonly sampleSize?: number;
  /** The writers' DEK epoch (PhiCache `dekEpochMs`). Default 1 hour. */
  readonly dekEpochMs?: number;
  /** Milliseconds since the epoch (certificate expiry, policy exceptions). Default `Date.now()`. */
  readonly now?: number;
  /**
   * The oldest Redis version that passes `server.version`, as `major.minor` or `major.minor.patch`.
   * Default `DEFAULT_MINIMUM_SERVER_VERSION` (7.0).
   */
  readonly minimumServerVersion?: string;
  /** How names of keys phicache did not write appear in evidence. Default `redacted`. */
  readonly keyNames?: 'redacted' | 'verbatim';
}

const NOT_VERIFIED_SERVER = 'the server certificate did not verify, so no credentials were sent to it';

/**
 * Is this Redis fit to hold phicache's cache? Checks live nodes from a client connection and managed-service
 * descriptions, and returns the report as data (the CLI only renders it). Throws ERR_STORE_UNAVAILABLE when a
 * node cannot be reached or refuses the credentials: then nothing could be verified.
 */
export async function verifyPosture(options: VerifyOptions): Promise<PostureReport> {
  const deadlineMs = checkDeadlineMs(options.deadlineMs ?? 5_000, 'deadlineMs');
  const sampleSize = options.sampleSize ?? 10_000;
  if (!Number.isSafeInteger(sampleSize) || sampleSize < 1 || sampleSize > 1_000_000) {
    throw new RangeError('sampleSize must be an integer in 1..1000000');
  }
  const targets = options.targets ?? [];
  if (targets.length === 0 && options.memorystore === undefined && options.elasticache === undefined) {
    throw new TypeError(
      'verifyPosture needs targets, a Memorystore description or an ElastiCache description',
    );
  }
  const minimumVersion = parseMinimumVersion(
    options.minimumServerVersion ?? DEFAULT_MINIMUM_SERVER_VERSION,
    'minimumServerVersion',
  );
  const now = options.now ?? Date.now();
  const checkedAt = new Date(now);
  const display = new KeyDisplay(options.keyNames ?? 'redacted');
  const checks: CheckResult[] = [];
  const add = (target: string, findings: readonly Finding[]) => {
    for (const finding of findings) checks.push({ ...finding, target });
  };

  if (options.memorystore !== undefined) {
    const { target, findings } = checkMemorystore(options.memorystore, minimumVersion);
    add(target, findings);
  }
  if (options.elasticache !== undefined) {
    for (const { target, findings } of checkElastiCache(options.elasticache, minimumVersion))
      add(target, findings);
  }
  for (const target of targets) {
    const label = `${target.tls === undefined ? 'redis' : 'rediss'}://${target.host}:${target.port}`;
    add(
      label,
      await verifyNode(target, label, { ...options, deadlineMs, sampleSize, now, minimumVersion }, display),
    );
  }
  return buildReport(checks, checkedAt);
}

async function verifyNode(
  target: ProbeTarget,
  label: string,
  options: VerifyOptions & {
    deadlineMs: number;
    sampleSize: number;
    now: number;
    minimumVersion: ServerVersion;
  },
  display: KeyDisplay,
): Promise<Finding[]> {
  const { deadlineMs } = options;
  const findings: Finding[] = [];
  const transport = {
    now: options.now,
    requireClientCertificates: options.requireClientCertificates ?? false,
  };
  let trusted = true;
  if (target.tls !== undefined) {
    const inspection = await inspectTls(target, deadlineMs);
    const certificate = checkCertificateName(inspection, target);
    trusted = certificate.verdict === 'PASS';
    findings.push(
      await checkTlsVersion(inspection, target, deadlineMs),
      certificate,
      checkCertificateExpiry(inspection, options.now),
      await checkClientCertificates(target, transport, deadlineMs),
    );
  } else {
    for (const id of [
      'tls.version',
      'tls.certificate',
      'tls.certificate-expiry',
      'tls.client-certificates',
    ]) {
      findings.push({
        id,
        verdict: 'FAIL',
        evidence: 'the connection is plain TCP: no TLS',
        remedy:
          'Serve TLS only (`port 0`, `tls-port`, `tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`) and connect with rediss://.',
      });
    }
  }
  const unauthenticated = await pingUnauthenticated(target, deadlineMs);
  findings.push(checkAuthRequired(unauthenticated));

  if (!trusted) {
    findings.unshift(await checkPlaintextListener(undefined, target));
    for (const id of SESSION_CHECKS) findings.push(notCheckable(id, NOT_VERIFIED_SERVER));
    return findings;
  }
  const session = await ProbeConnection.open(target, deadlineMs);
  const server = new LiveServer(target, label, session, deadlineMs);
  try {
    findings.unshift(await checkPlaintextListener(server, target));
    findings.push(await checkReplicationTls(server), await checkClusterTls(server));
    findings.push(await checkDefaultUser(server, unauthenticated));
    findings.push(...(await checkLeastPrivilege(server)));
    findings.push(...(await checkExposure(server, unauthenticated)));
    const sample = await sampleKeys(server, options.sampleSize);
    const data = { policy: options.policy, dekEpochMs: options.dekEpochMs ?? 3_600_000, now: options.now };
    findings.push(
      await checkNoTtl(server, sample, display),
      checkClassCaps(sample, data, display),
      await checkEvictionPolicy(server),
      await checkPersistence(server),
      await checkVersion(server, options.minimumVersion),
      await checkReplication(server),
      await checkEnvelopes(server, sample, options.knownKids, display),
      checkKeyNames(sample, display),
    );
  } finally {
    session.close();
  }
  return findings;
}

/** The checks that need an authenticated session, in report order. */
const SESSION_CHECKS = [
  'tls.replication',
  'tls.cluster',
  'auth.default-user',
  'acl.commands',
  'acl.keys',
  'acl.channels',
  'network.protected-mode',
  'network.bind',
  'surface.protected-configs',
  'surface.debug-command',
  'surface.module-command',
  'data.no-ttl',
  'data.class-caps',
  'data.maxmemory-policy',
  'data.persistence',
  'server.version',
  'server.replication',
  'content.envelopes',
  'content.key-names',
] as const;
