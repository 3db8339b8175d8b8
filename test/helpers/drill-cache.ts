import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAuditKeys } from '../../src/audit/audit-keys.js';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { CacheStore } from '../../src/store/cache-store.js';

/**
 * Short drills on real components: the local keyring in a temporary PHICACHE_HOME, the real audit trail on files,
 * the embedded store or a redis-server of its own. A small key state refresh keeps the fleet bound (and so the
 * drill) a few seconds long. Nothing here asserts on latency figures: only that they are there and consistent.
 */
export async function openDrillCache(store: CacheStore): Promise<{ cache: PhiCache; auditDir: string }> {
  const home = await mkdtemp(join(tmpdir(), 'phicache-drill-'));
  const keys = await LocalKeyring.open({ home, env: {} });
  const auditKeys = await openAuditKeys({
    provider: await LocalKeyring.open({ home, env: {}, domain: 'audit' }),
    home,
  });
  const auditDir = join(home, 'audit');
  const audit = new AuditTrail({ keys: auditKeys, sinks: [new FileSink({ dir: auditDir })] });
  const cache = await PhiCache.create({
    service: 'drill-test',
    policy: await loadDefaultPolicy(),
    keys,
    store,
    audit,
    keyStateRefreshMs: 100,
  });
  return { cache, auditDir };
}
