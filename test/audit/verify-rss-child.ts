import { verifyAuditDirectory } from '../../src/audit/verify.js';
import { keys } from './trail-fixture.js';

/**
 * Verifies the audit directory named on the command line in a process of its own and prints what it cost: the
 * resident set before the check and the peak during it, so a test or a bench reads the verifier's memory alone.
 */
const [dir, now] = process.argv.slice(2);
// `node --test build/test` runs every file under test/ once without arguments: then there is nothing to measure.
if (dir !== undefined) await measure(dir, Number(now));

async function measure(dir: string, now: number): Promise<void> {
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, now });
  process.stdout.write(
    `${JSON.stringify({
      ok: report.ok,
      records: report.records,
      vouched: report.vouched,
      findings: report.findings.slice(0, 5),
      rssBefore,
      peakRss: process.resourceUsage().maxRSS * 1024,
      ms: Math.round(performance.now() - started),
    })}\n`,
  );
}
