// The test command's runner (`npm test`, after the build): starts the shared Redis fleet once (plain, tls, mtls,
// acl, cluster, sentinel), hands it to every test file in PHICACHE_TEST_REDIS, runs `node --test` over build/test/
// and always stops the fleet. Exits with the test run's exit code.
//
//   node test/harness/run.mjs [extra node --test arguments or paths, default build/test/]
import { spawn } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const harness = join(root, 'build', 'test', 'harness', 'redis.js');
const { SHARED_FLEET_ENV, TOPOLOGIES, startRedis } = await import(pathToFileURL(harness).href).catch(
  (error) => {
    process.stderr.write(
      `[redis harness] cannot load ${harness} (run \`npm run build\` first): ${error.message}\n`,
    );
    process.exit(1);
  },
);

/** @type {Map<string, { stop(): Promise<void> }>} */
const fleet = new Map();
let stopping;
const stopFleet = () => {
  stopping ??= Promise.allSettled([...fleet.values()].map((endpoint) => endpoint.stop()));
  return stopping;
};

/** @type {import('node:child_process').ChildProcess | undefined} */
let tests;
let interrupted;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, async () => {
    if (interrupted) return;
    interrupted = signal;
    process.stderr.write(`\n[redis harness] ${signal}: stopping the tests and the Redis fleet\n`);
    // The test runner and its test file processes are a process group of their own: signal all of them, so
    // each file process kills its private servers now rather than when it finishes on its own.
    if (tests?.pid !== undefined && tests.exitCode === null) {
      try {
        process.kill(-tests.pid, 'SIGTERM');
      } catch {
        tests.kill('SIGTERM');
      }
    }
    const exited = tests ? new Promise((resolve) => tests.once('exit', resolve)) : Promise.resolve();
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    await stopFleet();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

const started = Date.now();
let code = 1;
try {
  const results = await Promise.allSettled(
    TOPOLOGIES.map(async (topology) => {
      const endpoint = await startRedis(topology);
      fleet.set(topology, endpoint);
      return endpoint;
    }),
  );
  const failure = results.find((result) => result.status === 'rejected');
  if (failure) throw failure.reason;
  if (interrupted) throw new Error(`interrupted by ${interrupted}`);
  const shared = Object.fromEntries(
    [...fleet].map(([topology, { stop: _stop, ...endpoint }]) => [topology, endpoint]),
  );
  const summary = [...fleet]
    .map(([topology, endpoint]) => `${topology} ${endpoint.nodes.map((node) => node.port).join(',')}`)
    .join('; ');
  process.stderr.write(`[redis harness] fleet up in ${Date.now() - started} ms: ${summary}\n`);

  const args = process.argv.slice(2);
  const paths = args.some((arg) => !arg.startsWith('-'))
    ? []
    : [relative(process.cwd(), join(root, 'build', 'test')) || '.'];
  tests = spawn(process.execPath, ['--test', '--test-reporter=spec', ...args, ...paths], {
    stdio: 'inherit',
    detached: true, // its own process group, see the signal handler; run.mjs forwards Ctrl-C
    env: { ...process.env, [SHARED_FLEET_ENV]: JSON.stringify(shared) },
  });
  code = await new Promise((resolve) => {
    tests.once('error', (error) => {
      process.stderr.write(`[redis harness] could not start node --test: ${error.message}\n`);
      resolve(1);
    });
    tests.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
} catch (error) {
  process.stderr.write(`[redis harness] could not start the Redis fleet: ${error?.stack ?? error}\n`);
  code = 1;
} finally {
  await stopFleet();
}
if (!interrupted) process.exit(code);
