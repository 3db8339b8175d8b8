// Peak memory of `phicache audit verify` on a generated archive of any size: writes a valid chain (records sealed
// and checkpoints signed with the trail's own functions, 64 MiB files), runs the real CLI on it, and reads the
// child's peak resident set (VmHWM) from /proc. Linux only. Usage: node verify-rss.mjs [GiB] (default 2.6).
// Needs the built tests (npm run build in the repository root), which hold the generator.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { writeBigLog } = await import(join(root, 'build/test/audit/big-log.js'));
const { keys, FIXTURE_START } = await import(join(root, 'build/test/audit/trail-fixture.js'));

const gib = Number(process.argv[2] ?? 2.6);
const dir = await mkdtemp(join(tmpdir(), 'phicache-verify-rss-'));
try {
  let started = performance.now();
  const log = await writeBigLog(join(dir, 'audit'), {
    keys,
    bytes: Math.round(gib * 1024 ** 3),
    withoutMacs: true,
    start: FIXTURE_START,
  });
  console.log(
    `generated ${(log.bytes / 1024 ** 3).toFixed(2)} GiB, ${log.records} records in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const pubkey = join(dir, 'audit-signing.pub');
  await writeFile(pubkey, keys.publicKey.export({ format: 'pem', type: 'spki' }));
  started = performance.now();
  const child = spawn(
    process.execPath,
    [join(root, 'build/src/cli/main.js'), 'audit', 'verify', join(dir, 'audit'), '--pubkey', pubkey],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let peak = 0;
  const poll = setInterval(async () => {
    try {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      peak = Math.max(peak, Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024);
    } catch {
      // The child has exited.
    }
  }, 50);
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  const code = await new Promise((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  const seconds = (performance.now() - started) / 1000;
  console.log(stdout.trim().split('\n').at(-1));
  console.log(
    `exit ${code}; verified in ${seconds.toFixed(1)} s (${Math.round(log.records / seconds)} records/s); peak RSS ${(peak / 1024 ** 2).toFixed(0)} MiB`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
