// A writer process for the crash tests: `node trail-writer-child.js <audit dir> <chain id or -> <write|hold>`.
// It opens a trail over a file sink, prints `ready <chain>` once 300 access records are written (or, for `hold`,
// once the chain is open), and goes on writing (or holding the chain) until it is killed.
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { event, keys } from './trail-fixture.js';

const [dir, chain, mode] = process.argv.slice(2) as [string, string, string];
// `node --test build/test` runs every file under test/ once without arguments: then there is nothing to write.
if (dir === undefined) process.exit(0);
const trail = new AuditTrail({
  keys,
  sinks: [new FileSink({ dir })],
  ...(chain === '-' ? {} : { chain }),
  checkpointEveryRecords: 100,
});
await trail.checkpoint();
let written = 0;
if (mode === 'hold') {
  process.stdout.write(`ready ${trail.chain}\n`);
  setInterval(() => undefined, 1000);
} else {
  // Sixteen callers at once, as a busy service makes them, until the parent kills the process mid-run.
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (;;) {
        await trail.write(event(written % 7 === 6 ? 'admin' : 'access', Date.now()));
        written += 1;
        if (written === 300) process.stdout.write(`ready ${trail.chain}\n`);
      }
    }),
  );
}
