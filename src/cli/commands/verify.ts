import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../../errors.js';
import { LocalKeyring } from '../../keys/providers/local-keyring.js';
import {
  type CheckResult,
  type PostureReport,
  type ProbeTarget,
  sentinelMaster,
  verifyPosture,
} from '../../ops/verify/index.js';
import { parseMinimumVersion } from '../../ops/verify/server-version.js';
import { loadDefaultPolicy } from '../../policy/default.js';
import { loadPolicyFile } from '../../policy/load.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import type { RedisConnectionOptions } from '../../store/redis/commands.js';
import { regularFile } from '../input-paths.js';
import { cacheKeysFrom, keysetFlag, keysetFrom, keysetHelp } from '../keyset-flag.js';
import { redisConnectionFlags, redisConnectionFrom, redisConnectionHelp } from '../redis-connection.js';
import type { Command, CommandResult, CommandValues } from './command.js';

export const verifyCommand: Command = {
  name: ['verify'],
  summary:
    'Check that a Redis (live, and its Memorystore or ElastiCache description) is fit to hold the cache',
  help: [
    'Usage: phicache verify [--redis <url> [connection flags]] [--memorystore <file>] [--elasticache <file>]',
    '                       [--policy <file>] [--keyset <file>] [--json]',
    '',
    'Checks a live server from a client connection (TLS, AUTH, ACL least privilege, exposure, TTLs and class caps,',
    'eviction, persistence, envelopes and key names) and managed-service descriptions, and prints one line per',
    'check: PASS, FAIL, WARN or NOT-CHECKABLE, its id and the evidence seen. Run it with the credentials phicache',
    'itself uses; checks that need CONFIG are then NOT-CHECKABLE, and an administrator user can read them.',
    '',
    redisConnectionHelp,
    '  --memorystore <file>              JSON of `gcloud redis instances describe <name> --format=json`',
    '  --elasticache <file>              JSON of `aws elasticache describe-replication-groups`',
    '  --policy <file>                   the policy whose class caps keys must respect (default: the shipped one)',
    keysetHelp,
    '  --require-client-cert             the policy asks for client certificates (mutual TLS)',
    '  --tls-servername <name>           the name the server certificate must be valid for (default: the host)',
    '  --deadline-ms <ms>                deadline of every connection and call, default 5000',
    '  --sample-size <n>                 keys sampled per node, default 10000',
    '  --min-redis-version <x.y[.z]>     the oldest Redis version that passes server.version, default 7.0',
    "  --dek-epoch-ms <ms>               the writers' dekEpochMs, default 3600000",
    "  --show-key-names                  print names of other applications' keys as they are (default: redacted)",
    '',
    'Exit codes: 0 no FAIL (WARN and NOT-CHECKABLE allowed), 1 any FAIL, 2 could not run.',
  ].join('\n'),
  options: {
    ...redisConnectionFlags,
    ...keysetFlag,
    memorystore: { type: 'string' },
    elasticache: { type: 'string' },
    policy: { type: 'string' },
    'require-client-cert': { type: 'boolean' },
    'tls-servername': { type: 'string' },
    'deadline-ms': { type: 'string' },
    'sample-size': { type: 'string' },
    'min-redis-version': { type: 'string' },
    'dek-epoch-ms': { type: 'string' },
    'show-key-names': { type: 'boolean' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length > 0)
      throw new PhiCacheError('ERR_CLI_USAGE', 'verify takes no positional arguments');
    const live = values.redis !== undefined || values.sentinel !== undefined;
    if (!live && values.memorystore === undefined && values.elasticache === undefined) {
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        'verify needs --redis <url>, --sentinel, --memorystore <file> or --elasticache <file>',
      );
    }
    const deadlineMs = integer(values['deadline-ms'], '--deadline-ms', 1, 600_000);
    const sampleSize = integer(values['sample-size'], '--sample-size', 1, 1_000_000);
    const minimumServerVersion = values['min-redis-version'];
    if (typeof minimumServerVersion === 'string')
      parseMinimumVersion(minimumServerVersion, '--min-redis-version');
    const dekEpochMs = integer(values['dek-epoch-ms'], '--dek-epoch-ms', 1000, Number.MAX_SAFE_INTEGER);
    const policy =
      typeof values.policy === 'string'
        ? await loadPolicyFile(await regularFile(values.policy, '--policy'))
        : await loadDefaultPolicy();
    const memorystore = await jsonFile(values.memorystore, '--memorystore');
    const elasticache = await jsonFile(values.elasticache, '--elasticache');
    const targets = live ? await probeTargets(values, deadlineMs ?? 5_000) : [];
    const knownKids = await kekIds(values.keyset);
    const report = await verifyPosture({
      targets,
      policy,
      ...(memorystore === undefined ? {} : { memorystore }),
      ...(elasticache === undefined ? {} : { elasticache }),
      ...(knownKids === undefined ? {} : { knownKids }),
      requireClientCertificates: values['require-client-cert'] === true,
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
      ...(sampleSize === undefined ? {} : { sampleSize }),
      ...(dekEpochMs === undefined ? {} : { dekEpochMs }),
      ...(typeof minimumServerVersion === 'string' ? { minimumServerVersion } : {}),
      keyNames: values['show-key-names'] === true ? 'verbatim' : 'redacted',
    });
    return { exitCode: report.ok ? 0 : 1, data: report, text: render(report) };
  },
};

/** The connection flags, as the nodes to check: the server, each Cluster seed, or the master a Sentinel names. */
async function probeTargets(values: CommandValues, deadlineMs: number): Promise<ProbeTarget[]> {
  const connection: RedisConnectionOptions = await redisConnectionFrom(values);
  const password =
    connection.password === undefined
      ? undefined
      : typeof connection.password === 'string'
        ? connection.password
        : (await connection.password.read()).toString('utf8').replace(/\r?\n$/, '');
  const servername = typeof values['tls-servername'] === 'string' ? values['tls-servername'] : undefined;
  const tls =
    connection.tls === undefined && servername === undefined
      ? undefined
      : { ...connection.tls, ...(servername === undefined ? {} : { servername }) };
  const common = {
    ...(tls === undefined ? {} : { tls }),
    ...(connection.username === undefined ? {} : { username: connection.username }),
    ...(password === undefined ? {} : { password }),
  };
  if (connection.sentinel !== undefined) {
    const master = await sentinelMaster(connection.sentinel.sentinels, connection.sentinel.name, deadlineMs);
    return [{ ...master, ...common }];
  }
  if (connection.cluster !== undefined)
    return connection.cluster.seeds.map((seed) => ({ ...seed, ...common }));
  const url = new URL(connection.url!);
  return [{ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379), ...common }];
}

/** KEK ids the keyset (or the development keyring, when there is one) knows, for the envelope check. */
async function kekIds(keysetPath: unknown): Promise<string[] | undefined> {
  const keyset = await keysetFrom(keysetPath);
  if (keyset !== undefined) {
    const provider = await cacheKeysFrom(keyset);
    try {
      return (await provider.describeKek()).versions.map((v) => v.kid);
    } finally {
      await provider.close?.();
    }
  }
  const home = phicacheHome();
  try {
    await access(join(home, 'keyring', 'cache.json'));
  } catch {
    return undefined; // no keyring here: key ids are NOT-CHECKABLE, never checked against a keyring made now
  }
  const keyring = await LocalKeyring.open({ home });
  return (await keyring.describeKek()).versions.map((v) => v.kid);
}

async function jsonFile(path: unknown, flag: string): Promise<unknown> {
  if (typeof path !== 'string') return undefined;
  const text = await readFile(await regularFile(path, flag), 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${flag} ${path} is not JSON`, {
      cause,
      hint: 'Save the output of `gcloud redis instances describe … --format=json` or `aws elasticache describe-replication-groups` as it is.',
    });
  }
}

function integer(value: unknown, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${flag} must be an integer in ${min}..${max}`);
  }
  return n;
}

function render(report: PostureReport): string {
  const width = Math.max(...report.checks.map((c) => c.id.length));
  const lines: string[] = [];
  let target: string | undefined;
  for (const check of report.checks) {
    if (check.target !== target) {
      target = check.target;
      lines.push(`${target}`);
    }
    lines.push(line(check, width));
  }
  const { pass, fail, warn, notCheckable } = report.summary;
  lines.push(
    `${report.ok ? 'ok' : 'FAIL'}: ${pass} passed, ${fail} failed, ${warn} warnings, ${notCheckable} not checkable`,
  );
  return lines.join('\n');
}

function line(check: CheckResult, width: number): string {
  const main = `  ${check.verdict.padEnd(13)} ${check.id.padEnd(width)}  ${check.evidence}`;
  return check.remedy === undefined || check.verdict === 'PASS'
    ? main
    : `${main}\n  ${' '.repeat(13)} ${' '.repeat(width)}  fix: ${check.remedy}`;
}
