// A redis-server for a benchmark: on a free port of 127.0.0.1, without persistence, stopped with the process.

import { spawn } from 'node:child_process';
import { createServer, connect as netConnect } from 'node:net';

/** BENCH_REDIS_SERVER, or `redis-server` on the PATH. */
export const REDIS_SERVER = process.env.BENCH_REDIS_SERVER || 'redis-server';

export async function freePort() {
  const probe = createServer();
  await new Promise((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port: free } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return free;
}

/** Starts redis-server on `p` without persistence and waits until it answers PING. */
export async function startRedis(p) {
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.once('error', (error) => keep(`${error.message}\n`));
  // Never leave a server behind, whatever happens to this process.
  process.once('exit', () => child.exitCode === null && child.kill('SIGKILL'));
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${p}:\n${log}`);
    }
    if (await answersPing(p)) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, exited };
}

function answersPing(p) {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port: p });
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export async function stopRedis({ child, exited }) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** An integer knob from the environment, at least 1. */
export function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be an integer of at least 1`);
  return n;
}
