import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type ExportFinding, verifyExportManifest } from '../../audit/export.js';
import {
  type Finding,
  type Notice,
  type VerifyOptions,
  type VerifyReport,
  verifyAuditDirectory,
  verifyAuditLog,
} from '../../audit/verify.js';
import { PhiCacheError } from '../../errors.js';
import { directory, regularFile } from '../input-paths.js';
import { keysetFrom } from '../keyset-flag.js';
import type { Command, CommandResult } from './command.js';

export const auditVerifyCommand: Command = {
  name: ['audit', 'verify'],
  summary: 'Verify an audit directory: hash chains, MACs, signed checkpoints',
  help: [
    'Usage: phicache audit verify <dir> (--pubkey <file> | --keyset <file>) [--stream-key-env <VAR>]',
    '                             [--witness <dir>] [--threads <n>] [--json]',
    '       phicache audit verify --manifest <file> (--pubkey <file> | --keyset <file>) [--json]',
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
    '  --witness <dir>          the directory the writer also gave its checkpoints to: every chain, stream and',
    '                           checkpoint it holds must be in the log (a tail cut with its checkpoints is found)',
    '  --threads <n>            threads that parse records beside the main one (0..256); default one fewer than',
    '                           the cores, at most 3, for a stream over 4 MiB checked with the public key alone',
    "  --manifest <file>        check an export instead: the manifest's signature, each file it lists (size and",
    '                           SHA-256, under the export directory that holds manifests/), and the log they form;',
    '                           the signed manifest vouches for the records of streams exported while open',
    '',
    'Notices (an outage the writer recorded, a restart after a close or a crash, torn bytes set aside) are printed',
    'as "note:" lines and in the JSON report\'s `notices`; they never make the check fail.',
    '',
    'Exit codes: 0 intact, 1 anything wrong, 2 could not run (also: a directory with no chain, nothing to verify).',
  ].join('\n'),
  options: {
    pubkey: { type: 'string' },
    keyset: { type: 'string' },
    'stream-key-env': { type: 'string' },
    manifest: { type: 'string' },
    witness: { type: 'string' },
    threads: { type: 'string' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    const manifest = typeof values.manifest === 'string' ? values.manifest : undefined;
    if (manifest === undefined ? positionals.length !== 1 : positionals.length !== 0)
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        manifest === undefined
          ? 'audit verify takes one directory'
          : 'audit verify --manifest takes no directory',
      );
    if ((typeof values.pubkey === 'string') === (typeof values.keyset === 'string'))
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        'audit verify needs one of --pubkey <file> or --keyset <file>',
      );
    // Paths are checked before any key is read, so a wrong path is named as such.
    if (manifest !== undefined && typeof values.witness === 'string')
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit verify --manifest takes no --witness');
    const dir = manifest === undefined ? await directory(positionals[0]!, 'audit directory') : undefined;
    const witness =
      typeof values.witness === 'string' ? await directory(values.witness, '--witness') : undefined;
    const manifestPath = manifest === undefined ? undefined : await regularFile(manifest, '--manifest');
    const keyset = await keysetFrom(values.keyset);
    const publicKey =
      keyset === undefined
        ? await readPublicKey(await regularFile(String(values.pubkey), '--pubkey'))
        : keyset.publicKey;
    const streamRoot = readStreamRootEnv(values['stream-key-env']);
    const threads = readThreads(values.threads);
    const options: VerifyOptions = {
      publicKey,
      ...(streamRoot ? { streamRoot } : {}),
      ...(threads === undefined ? {} : { threads }),
    };
    if (manifestPath !== undefined) return verifyManifest(manifestPath, options);
    const report = await verifyAuditDirectory(dir!, { ...options, ...(witness ? { witness } : {}) });
    return { exitCode: report.ok ? 0 : 1, data: { dir, ...report }, text: render(dir!, report) };
  },
};

/** An export: `<out>/manifests/<id>.json` lists the files of `<out>` that it vouches for. */
async function verifyManifest(path: string, options: VerifyOptions): Promise<CommandResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', `--manifest ${path} cannot be read`, { cause });
  }
  const out = dirname(dirname(path));
  const checked = await verifyExportManifest(text, options.publicKey, out);
  const report =
    checked.manifest === null
      ? undefined
      : await verifyAuditLog(
          checked.log,
          { ...options, exported: checked.exported, manifestVouches: checked.signed },
          out,
        );
  const ok = checked.ok && report?.ok === true;
  const lines = checked.findings.map((f: ExportFinding) => `${f.path ?? path} ${f.kind}: ${f.message}`);
  return {
    exitCode: ok ? 0 : 1,
    data: { manifest: path, ...(report ?? {}), manifestFindings: checked.findings, ok },
    text: [
      ...lines,
      report === undefined ? `${path}: FAIL (not a manifest)` : render(out, report, checked.ok),
    ].join('\n'),
  };
}

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

function readThreads(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d{1,3}$/.test(value) || n > 256) {
    throw new PhiCacheError('ERR_CLI_USAGE', '--threads must be an integer in 0..256');
  }
  return n;
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

function render(dir: string, report: VerifyReport, manifestOk = true): string {
  const where = (item: Finding | Notice) =>
    `${item.file === undefined ? `${item.chain}/${item.stream}` : `${item.file}${item.line === undefined ? '' : `:${item.line}`}`}${item.seq === undefined ? '' : ` seq ${item.seq}`}`;
  const lines = report.findings.map((f) => `${where(f)} ${f.kind}: ${f.message}`);
  // Notices are what the writer recorded about itself: their own lines, after the findings, never a failure.
  lines.push(...report.notices.map((n) => `note: ${where(n)} ${n.kind}: ${n.message}`));
  const verdict = report.ok && manifestOk ? 'intact' : `FAIL (${report.findings.length} problems in the log)`;
  lines.push(
    `${dir}: ${verdict}; ${report.chains} chains, ${report.records} records (${report.vouched} vouched for), ${report.checkpoints} checkpoints, ${report.notices.length} notices`,
  );
  return lines.join('\n');
}
