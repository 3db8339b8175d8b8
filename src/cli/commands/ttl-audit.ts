import { PhiCacheError } from '../../errors.js';
import { type TtlAuditReport, ttlAudit } from '../../ops/ttl-audit.js';
import { loadDefaultPolicy } from '../../policy/default.js';
import { loadPolicyFile } from '../../policy/load.js';
import { nodeRedisCommands } from '../../store/redis/node-redis.js';
import { regularFile } from '../input-paths.js';
import { redisConnectionFlags, redisConnectionFrom, redisConnectionHelp } from '../redis-connection.js';
import type { Command, CommandResult } from './command.js';

export const ttlAuditCommand: Command = {
  name: ['ttl-audit'],
  summary: 'Find Redis keys without a TTL, and phicache keys whose TTL exceeds their class cap',
  help: [
    'Usage: phicache ttl-audit --redis <url> [connection flags] [--match <pattern>] [--policy <file>] [--json]',
    '',
    'Scans every master with SCAN (never KEYS) and lists every key with no TTL, on any Redis, and every phicache',
    'key whose TTL exceeds what its data class allows under the policy (default: the shipped policy).',
    '',
    redisConnectionHelp,
    '  --match <pattern>                 SCAN MATCH pattern, default *',
    '  --policy <file>                   the policy that sets the caps',
    "  --dek-epoch-ms <ms>               the writers' dekEpochMs, default 3600000",
    '  --deadline-ms <ms>                how long one SCAN page or its PTTLs may take, default 5000',
    '  --show-key-names                  print names of keys phicache did not write as they are; by default',
    '                                    they are redacted (namespace and an HMAC), since they may hold PHI',
    '',
    'Exit codes: 0 clean, 1 keys found, 2 could not run.',
  ].join('\n'),
  options: {
    ...redisConnectionFlags,
    match: { type: 'string' },
    policy: { type: 'string' },
    'dek-epoch-ms': { type: 'string' },
    'deadline-ms': { type: 'string' },
    'show-key-names': { type: 'boolean' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length > 0)
      throw new PhiCacheError('ERR_CLI_USAGE', 'ttl-audit takes no positional arguments');
    const policy =
      typeof values.policy === 'string'
        ? await loadPolicyFile(await regularFile(values.policy, '--policy'))
        : await loadDefaultPolicy();
    const dekEpochMs = values['dek-epoch-ms'] === undefined ? undefined : Number(values['dek-epoch-ms']);
    if (dekEpochMs !== undefined && !(Number.isSafeInteger(dekEpochMs) && dekEpochMs >= 1000)) {
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        '--dek-epoch-ms must be an integer number of milliseconds, at least 1000',
      );
    }
    const deadlineMs = values['deadline-ms'] === undefined ? undefined : Number(values['deadline-ms']);
    if (
      deadlineMs !== undefined &&
      !(Number.isSafeInteger(deadlineMs) && deadlineMs >= 1 && deadlineMs <= 600_000)
    ) {
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        '--deadline-ms must be an integer number of milliseconds in 1..600000',
      );
    }
    const commands = await nodeRedisCommands(await redisConnectionFrom(values));
    const progress = process.stderr.isTTY
      ? (scanned: number) => process.stderr.write(`\rscanned ${scanned} keys`)
      : undefined;
    try {
      const report = await ttlAudit(commands, {
        policy,
        ...(typeof values.match === 'string' ? { match: values.match } : {}),
        ...(dekEpochMs === undefined ? {} : { dekEpochMs }),
        ...(deadlineMs === undefined ? {} : { deadlineMs }),
        keyNames: values['show-key-names'] === true ? 'verbatim' : 'redacted',
        ...(progress === undefined ? {} : { onProgress: progress }),
      });
      if (progress !== undefined) process.stderr.write('\n');
      return { exitCode: report.ok ? 0 : 1, data: report, text: render(report) };
    } finally {
      await commands.close();
    }
  },
};

function render(report: TtlAuditReport): string {
  const lines = report.findings.map((f) => {
    if (f.kind === 'no-ttl') return `${f.key} has no TTL`;
    if (f.kind === 'unknown-class')
      return `${f.key} belongs to class ${f.className}, which the policy does not declare`;
    return `${f.key} TTL ${f.ttlMs} ms exceeds the ${f.capMs} ms cap of ${f.className}`;
  });
  const noTtl = report.findings.filter((f) => f.kind === 'no-ttl').length;
  const overCap = report.findings.length - noTtl;
  if (report.keyNames === 'redacted' && report.findings.some((f) => f.key.startsWith('redacted:'))) {
    lines.push('names of keys phicache did not write are redacted; --show-key-names prints them');
  }
  lines.push(
    `${report.ok ? 'clean' : 'FAIL'}: scanned ${report.scanned} keys on ${report.masters} masters; ${noTtl} without TTL, ${overCap} over their class cap`,
  );
  return lines.join('\n');
}
