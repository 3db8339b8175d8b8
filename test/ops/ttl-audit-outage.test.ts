import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { PhiCacheError } from '../../src/errors.js';
import { ttlAudit } from '../../src/ops/ttl-audit.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { runCli } from '../cli/run-cli.js';
import { type PrivateRedis, pause, resume, startRedis } from '../harness/redis.js';

/** Keys planted per server: enough pages (1,000 keys each) that a pause after the first lands mid-scan. */
const KEYS = 50_000;

async function plant(url: string, count: number): Promise<void> {
  const client = createClient({ url });
  await client.connect();
  try {
    for (let start = 0; start < count; start += 5000) {
      const batch = [];
      for (let i = start; i < Math.min(count, start + 5000); i++)
        batch.push(client.set(`other-app:${i}`, 'x', { PX: 600_000 }));
      await Promise.all(batch);
    }
  } finally {
    await client.close();
  }
}

describe('ttl-audit when the server stops answering mid-scan', () => {
  let server: PrivateRedis;
  before(async () => {
    server = await startRedis('plain');
    await plant(server.url, KEYS);
  });
  after(async () => {
    resume(server.nodes[0]!);
    await server.stop();
  });

  test('the library call rejects with ERR_STORE_UNAVAILABLE once the deadline passes, instead of hanging', async () => {
    const commands = await nodeRedisCommands({ url: server.url });
    let paused = false;
    try {
      await assert.rejects(
        ttlAudit(commands, {
          policy: await loadDefaultPolicy(),
          deadlineMs: 500,
          // The first progress report comes after the first page: stop the server there, in the middle of the scan.
          onProgress: () => {
            if (!paused) {
              paused = true;
              pause(server.nodes[0]!);
            }
          },
        }),
        (error: unknown) =>
          error instanceof PhiCacheError &&
          error.code === 'ERR_STORE_UNAVAILABLE' &&
          /within 500 ms/.test(error.message),
      );
      assert.equal(paused, true);
    } finally {
      resume(server.nodes[0]!);
      await commands.close();
    }
  });

  test('the CLI exits 2 with the code and a hint when the server is stopped once its scan has begun', async () => {
    // A MONITOR connection sees each command as the server runs it: the CLI's first page is the sign its scan has
    // begun, and the server is stopped right then, with most of the keys still to scan.
    const monitor = net.connect({ host: '127.0.0.1', port: server.nodes[0]!.port });
    monitor.write('MONITOR\r\n');
    let seen = '';
    let paused = false;
    const midScan = new Promise<void>((resolve) => {
      monitor.on('data', (chunk: Buffer) => {
        // Test the whole chunk (it may hold thousands of lines) with the tail of the last one, for a line cut in two.
        const text = seen + chunk.toString('latin1');
        seen = text.slice(-512);
        // The first page: a SCAN from the client, or the audit script that runs SCAN on the server.
        if (!paused && /"SCAN" "\d+"|"EVAL" /i.test(text)) {
          paused = true;
          pause(server.nodes[0]!);
          resolve();
        }
      });
    });
    try {
      const run = runCli(['ttl-audit', '--redis', server.url, '--deadline-ms', '1000', '--json']);
      // Should the audit ever end before its second page, the test fails here instead of waiting forever.
      const first = await Promise.race([midScan.then(() => 'paused'), run.then(() => 'ended')]);
      assert.equal(
        first,
        'paused',
        `the audit ended before the server could be stopped mid-scan; saw ${seen.slice(0, 300)} / ${JSON.stringify(await run)}`,
      );
      const result = await run;
      assert.equal(result.exitCode, 2, result.stdout + result.stderr);
      const { error } = JSON.parse(result.stdout) as {
        error: { code: string; message: string; hint: string };
      };
      assert.equal(error.code, 'ERR_STORE_UNAVAILABLE');
      assert.match(error.message, /did not answer (SCAN|PTTL of \d+ keys) within 1000 ms/);
      assert.match(error.hint, /paused/);
    } finally {
      resume(server.nodes[0]!);
      monitor.destroy();
    }
  });

  test('a whole audit of the planted keys still completes once the server answers again', async () => {
    const commands = await nodeRedisCommands({ url: server.url });
    try {
      const report = await ttlAudit(commands, { policy: await loadDefaultPolicy(), match: 'other-app:*' });
      assert.equal(report.scanned, KEYS);
      assert.equal(report.ok, true);
    } finally {
      await commands.close();
    }
  });
});

describe("ttl-audit does not print other applications' key names", () => {
  let server: PrivateRedis;
  before(async () => {
    server = await startRedis('plain');
    const client = createClient({ url: server.url });
    await client.connect();
    await client.set('patient:987-65-4329:chart', 'x');
    await client.set('mrn-4471234:labs', 'x');
    await client.close();
  });
  after(() => server.stop());

  test('by default: namespace and a per-report HMAC, never the identifier', async () => {
    const result = await runCli(['ttl-audit', '--redis', server.url]);
    assert.equal(result.exitCode, 1);
    assert.doesNotMatch(result.stdout + result.stderr, /987-65-4329|4471234/);
    assert.match(result.stdout, /redacted:patient:…#[0-9a-f]{16} has no TTL/);
    assert.match(result.stdout, /redacted:…#[0-9a-f]{16} has no TTL/);
    assert.match(result.stdout, /--show-key-names prints them/);
  });

  test('with --show-key-names, for an operator who asks: verbatim', async () => {
    const result = await runCli(['ttl-audit', '--redis', server.url, '--show-key-names', '--json']);
    assert.equal(result.exitCode, 1);
    const report = JSON.parse(result.stdout) as { keyNames: string; findings: { key: string }[] };
    assert.equal(report.keyNames, 'verbatim');
    assert.deepEqual(report.findings.map((f) => f.key).sort(), [
      'mrn-4471234:labs',
      'patient:987-65-4329:chart',
    ]);
  });
});
