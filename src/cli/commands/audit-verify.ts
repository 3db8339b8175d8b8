import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type VerifyReport, verifyAuditDirectory } from '../../audit/verify.js';
import { PhiCacheError } from '../../errors.js';
import { directory, regularFile } from '../input-paths.js';
import { keysetFrom } from '../keyset-flag.js';
import type { Command, CommandResult } from './command.js';

export const auditVerifyCommand: Command = {
  name: ['audit', 'verify'],
  summary: 'Verify an audit directory: hash chains, MACs, signed checkpoints',
  help: [
    'Usage: phicache audit verify <dir> (--pubkey <file> | --keyset <file>) [--stream-key-env <VAR>] [--json]',
    '',
    'Walks every chain and stream under <dir> (such as $PHICACHE_HOME/audit), goes on past failures and reports',
    'each bad item with its reason: a modified, deleted, duplicated, reordered or inserted record, a bad or missing',
    'checkpoint, a truncation, a MAC made under the wrong key epoch, and records the checks cannot vouch for.',
    '',
    '  --pubkey <file>          the checkpoint signing public key (PEM), e.g. $PHICACHE_HOME/audit-signing.pub;',
    "                           enough to vouch for every record up to each stream's last checkpoint",
    '  --keyset <file>          the keyset of the service: its audit public key is used, read from the file',
    '                           (no key service is called, so an auditor needs no access to the KEKs)',
    "  --stream-key-env <VAR>   an environment variable holding the stream root (base64): then every record's",
    '                           MAC is checked too, including the records after the last checkpoint',
    '',
    'Exit codes: 0 intact, 1 anything wrong, 2 could not run.',
  ].join('\n'),
  options: { pubkey: { type: 'string' }, keyset: { type: 'string' }, 'stream-key-env': { type: 'string' } },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length !== 1)
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit verify takes one directory');
    if ((typeof values.pubkey === 'string') === (typeof values.keyset === 'string'))
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        'audit verify needs one of --pubkey <file> or --keyset <file>',
      );
    const dir = await directory(positionals[0]!, 'audit directory');
    const keyset = await keysetFrom(values.keyset);
    const publicKey =
      keyset === undefined
        ? await readPublicKey(await regularFile(String(values.pubkey), '--pubkey'))
        : keyset.publicKey;
    const streamRoot = readStreamRootEnv(values['stream-key-env']);
    const report = await verifyAuditDirectory(dir, {
      publicKey,
      ...(streamRoot ? { streamRoot } : {}),
    });
    return { exitCode: report.ok ? 0 : 1, data: { dir, ...report }, text: render(dir, report) };
  },
};

async function readPublicKey(path: string): Promise<KeyObject> {
  try {
    const key = createPublicKey(await readFile(path));
    if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 key');
    return key;
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', 'the --pubkey file is not an Ed25519 public key', {
      cause,
      hint: 'Pass the audit signing public key, $PHICACHE_HOME/audit-signing.pub of the writer.',
    });
  }
}

function readStreamRootEnv(variable: unknown): Buffer | undefined {
  if (variable === undefined) return undefined;
  const value = process.env[String(variable)];
  const root = value === undefined ? undefined : Buffer.from(value, 'base64');
  if (root === undefined || root.length !== 32) {
    throw new PhiCacheError(
      'ERR_CLI_USAGE',
      `--stream-key-env ${String(variable)} does not hold a 32-byte base64 key`,
    );
  }
  return root;
}

function render(dir: string, report: VerifyReport): string {
  const lines = report.findings.map((f) => {
    const where =
      f.file === undefined
        ? `${f.chain}/${f.stream}`
        : `${f.file}${f.line === undefined ? '' : `:${f.line}`}`;
    return `${where}${f.seq === undefined ? '' : ` seq ${f.seq}`} ${f.kind}: ${f.message}`;
  });
  const verdict = report.ok ? 'intact' : `FAIL (${report.findings.length} problems)`;
  lines.push(
    `${dir}: ${verdict}; ${report.chains} chains, ${report.records} records (${report.vouched} vouched for), ${report.checkpoints} checkpoints`,
  );
  return lines.join('\n');
}
