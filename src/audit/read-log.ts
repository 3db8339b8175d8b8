import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';
import type { AuditLogFile } from './verify.js';

/** Reads every chain directory of an audit directory: `<dir>/<chain>/<file>` for the verifier. */
export async function readAuditLog(dir: string): Promise<AuditLogFile[]> {
  let chains: string[];
  try {
    chains = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (cause) {
    throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'the audit directory cannot be read', {
      cause,
      hint: 'Pass the directory that holds the chain folders, such as $PHICACHE_HOME/audit.',
    });
  }
  const files: AuditLogFile[] = [];
  for (const chain of chains.sort()) {
    for (const name of (await readdir(join(dir, chain))).sort()) {
      if (!name.endsWith('.jsonl')) continue;
      files.push({ path: `${chain}/${name}`, text: await readFile(join(dir, chain, name), 'utf8') });
    }
  }
  return files;
}
