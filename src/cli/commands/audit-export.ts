import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { type AuditKeys, openAuditKeys } from '../../audit/audit-keys.js';
import { AuditLogInvalidError, type ExportManifest, exportAuditLog, isInside } from '../../audit/export.js';
import type { Finding } from '../../audit/verify.js';
import { PhiCacheError } from '../../errors.js';
import { LocalKeyring } from '../../keys/providers/local-keyring.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import { directory } from '../input-paths.js';
import { auditKeySourceFrom, keysetFlag, keysetFrom, keysetHelp } from '../keyset-flag.js';
import type { Command, CommandResult } from './command.js';

export const auditExportCommand: Command = {
  name: ['audit', 'export'],
  summary: 'Copy the closed audit files into a write-once layout with a signed manifest',
  help: [
    'Usage: phicache audit export <dir> --out <dir> [--keyset <file>] [--json]',
    '',
    'Copies every closed records file of <dir> (such as $PHICACHE_HOME/audit) and the checkpoints of each stream',
    'to <out>/<chain>/<file>, for write-once object storage (S3 Object Lock, GCS Bucket Lock), and writes a manifest',
    '<out>/manifests/<time>-<random>.json listing each file with its size and SHA-256, signed with the audit signing',
    'key of PHICACHE_HOME. The newest records file of a stream stays behind while its writer may still append to',
    'it; once the final checkpoint is written (or the last one is long overdue) it goes too. Nothing in <out> is',
    'overwritten: a file already there with the same SHA-256 is kept, and different content stops the export',
    'before it writes anything. Exporting again is safe; each run adds a manifest.',
    '',
    keysetHelp,
    '',
    'Before it copies anything it verifies what it will copy (hash chains, canonical lines, checkpoints, and the',
    "MACs with the stream key of the audit keys), and refuses a log with any problem. An open stream's checkpoints",
    'go out as a snapshot, which `phicache audit verify --manifest` checks together with the manifest.',
    '',
    'Exit codes: 0 exported, 1 the log did not verify (nothing written), 2 could not run (bad flags, no audit keys,',
    'unreadable <dir>, <out> inside <dir>, a conflict in <out>).',
  ].join('\n'),
  options: { out: { type: 'string' }, ...keysetFlag },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length !== 1)
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit export takes one directory');
    if (typeof values.out !== 'string')
      throw new PhiCacheError('ERR_CLI_USAGE', 'audit export needs --out <dir>');
    const dir = await directory(positionals[0]!, 'audit directory');
    const out = values.out;
    // An export inside its input would be read back as a chain by the next export, and break it.
    if (await isInside(out, dir))
      throw new PhiCacheError('ERR_CLI_USAGE', `--out ${out} is the audit directory or inside it`, {
        hint: 'Export into a directory outside the audit directory, such as a mount of the retention bucket.',
      });
    const keyset = await keysetFrom(values.keyset);
    const keys =
      keyset === undefined
        ? await developmentAuditKeys()
        : await openAuditKeys({ keyset: await auditKeySourceFrom(keyset) });
    let manifest: ExportManifest;
    try {
      manifest = await exportAuditLog({ dir, out, keys });
    } catch (error) {
      if (!(error instanceof AuditLogInvalidError)) throw error;
      return {
        exitCode: 1,
        data: { dir, out, exported: false, findings: error.findings },
        text: renderRefusal(dir, error.findings),
      };
    }
    const manifestPath = join(out, 'manifests', `${manifest.id}.json`);
    return {
      exitCode: 0,
      data: { dir, out, manifestPath, manifest },
      text: render(out, manifestPath, manifest),
    };
  },
};

async function developmentAuditKeys(): Promise<AuditKeys> {
  // openAuditKeys makes keys on first use: a manifest signed by a key made just now would match no checkpoint.
  const home = phicacheHome();
  try {
    await access(join(home, 'keyring', 'audit-keys.json'));
  } catch (cause) {
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `no audit keys under ${home}`, {
      cause,
      hint: 'Set PHICACHE_HOME to the home of the writer whose audit log this is; its signing key signs the manifest.',
    });
  }
  return openAuditKeys({ provider: await LocalKeyring.open({ domain: 'audit' }) });
}

function renderRefusal(dir: string, findings: readonly Finding[]): string {
  const lines = findings.map(
    (f) =>
      `${f.file ?? `${f.chain}/${f.stream}`}${f.line === undefined ? '' : `:${f.line}`} ${f.kind}: ${f.message}`,
  );
  lines.push(`${dir}: FAIL (${findings.length} problems); nothing was exported`);
  return lines.join('\n');
}

function render(out: string, manifestPath: string, manifest: ExportManifest): string {
  const lines = manifest.streams.map((s) => {
    const held = s.heldBack > 0 ? `, newest records file held back (${s.state})` : ` (${s.state})`;
    return `${s.chain}/${s.stream}: records up to seq ${s.lastSeq}${held}`;
  });
  const bytes = manifest.files.reduce((sum, file) => sum + file.size, 0);
  lines.push(
    `${out}: ${manifest.files.length} files (${bytes} bytes) of ${manifest.chains.length} chains; manifest ${manifestPath} signed by ${manifest.kid}`,
  );
  return lines.join('\n');
}
