// The KEK rotation drill as an auditor asks for its evidence: `phicache drill rotation` against a standalone
// redis-server and against a 6-node Redis Cluster (3 masters, 3 replicas), each started here on free ports without
// persistence and stopped at the end. The CLI writes report.json and latency.svg into bench/drill/<store>/ and
// refuses to overwrite them: move an earlier run away first.
//
// Run `npx tsc -p .` in the repository first: this script starts the built CLI and the built test harness.
//   node bench/drill-rotation.mjs [standalone] [cluster]      (default: both, one after the other)
// Knobs (environment): BENCH_DURATION (seconds, default 60), BENCH_CONCURRENCY (default 32),
// BENCH_SWEEP_RATE (entries per second for the re-encryption sweep, default unlimited),
// BENCH_REDIS_SERVER (default `redis-server` on the PATH; the Cluster uses the harness, which runs `redis-server`),
// BENCH_OUT (the parent of the <store> directories, default bench/drill).

import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, positiveInt, startRedis, stopRedis } from './redis-server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'build', 'src', 'cli', 'main.js');
const { startRedis: startHarnessRedis } = await import(join(root, 'build', 'test', 'harness', 'redis.js'));

const duration = positiveInt('BENCH_DURATION', 60);
const concurrency = positiveInt('BENCH_CONCURRENCY', 32);
const sweepRate = process.env.BENCH_SWEEP_RATE;
const wanted = process.argv.slice(2);
const stores = wanted.length > 0 ? wanted : ['standalone', 'cluster'];

/** Runs the CLI as `npx phicache` would, with its own PHICACHE_HOME (development keyring, audit trail). */
function drill(connection, out) {
  const args = [
    'drill',
    'rotation',
    '--duration',
    String(duration),
    '--concurrency',
    String(concurrency),
    ...(sweepRate === undefined ? [] : ['--sweep-rate', sweepRate]),
    ...connection,
    '--out',
    out,
  ];
  return new Promise((resolve, reject) => {
    mkdtemp(join(tmpdir(), 'phicache-drill-home-')).then((home) => {
      process.stderr.write(`$ PHICACHE_HOME=${home} phicache ${args.join(' ')}\n`);
      const child = spawn(process.execPath, [main, ...args], {
        env: { ...process.env, PHICACHE_HOME: home },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? 1));
    }, reject);
  });
}

let worst = 0;
for (const store of stores) {
  const out = relative(process.cwd(), join(process.env.BENCH_OUT || join(root, 'bench', 'drill'), store));
  process.stderr.write(`\n== ${store}: load average ${loadavg()[0].toFixed(2)} at the start\n`);
  if (store === 'standalone') {
    const port = await freePort();
    const server = await startRedis(port);
    try {
      worst = Math.max(worst, await drill(['--redis', `redis://127.0.0.1:${port}`], out));
    } finally {
      await stopRedis(server);
    }
  } else if (store === 'cluster') {
    const cluster = await startHarnessRedis('cluster');
    try {
      const seeds = cluster.cluster.seeds.flatMap((s) => ['--redis', `redis://${s.host}:${s.port}`]);
      worst = Math.max(worst, await drill(['--cluster', ...seeds], out));
    } finally {
      await cluster.stop();
    }
  } else {
    process.stderr.write(`unknown store ${store}: give standalone and/or cluster\n`);
    process.exit(2);
  }
  process.stderr.write(`== ${store}: load average ${loadavg()[0].toFixed(2)} at the end\n`);
}
process.exit(worst);
