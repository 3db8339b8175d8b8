import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient, createCluster } from 'redis';
import { runCli } from '../cli/run-cli.js';
import { type RedisEndpoint, sharedRedis } from '../harness/redis.js';

type Writer = {
  set(key: string, value: string, options?: { PX: number }): Promise<unknown>;
  close(): Promise<void>;
};

/** A raw client for planting keys the way careless code would: some without any TTL. */
async function writerFor(endpoint: RedisEndpoint): Promise<Writer> {
  if (endpoint.cluster) {
    const cluster = createCluster({
      rootNodes: endpoint.cluster.seeds.map((s) => ({ url: `redis://${s.host}:${s.port}` })),
    });
    await cluster.connect();
    return {
      set: (key, value, options) => cluster.set(key, value, options),
      close: () => cluster.close(),
    };
  }
  const client = createClient({ url: endpoint.url });
  await client.connect();
  return { set: (key, value, options) => client.set(key, value, options), close: () => client.close() };
}

const hmac = () => randomBytes(32).toString('base64url').slice(0, 43);

for (const topology of ['plain', 'cluster'] as const) {
  describe(`phicache ttl-audit on ${topology}`, () => {
    let endpoint: RedisEndpoint;
    let writer: Writer;
    let policyFile: string;
    const run = randomBytes(4).toString('hex');
    const className = `audit-${run}`;
    const flags = () =>
      endpoint.cluster
        ? ['--cluster', ...endpoint.cluster.seeds.flatMap((s) => ['--redis', `redis://${s.host}:${s.port}`])]
        : ['--redis', endpoint.url];

    before(async () => {
      endpoint = await sharedRedis(topology);
      writer = await writerFor(endpoint);
      const dir = await mkdtemp(join(tmpdir(), 'phicache-ttl-audit-'));
      policyFile = join(dir, 'policy.yaml');
      await writeFile(
        policyFile,
        `version: 1\nclasses:\n  ${className}:\n    description: audited\n    phi: true\n    cacheable: true\n    maxTtlSeconds: 300\n`,
      );
      // Clean keys: within their caps.
      for (let i = 0; i < 50; i++) await writer.set(`phc:e:${className}:${hmac()}`, 'x', { PX: 300_000 });
      await writer.set(`phc:k:${className}:${hmac()}`, 'x', { PX: 3_600_000 + 300_000 });
      for (let i = 0; i < 20; i++) await writer.set(`clean-${run}:${i}`, 'x', { PX: 60_000 });
    });
    after(() => writer.close());

    test('a clean namespace: exit 0', async () => {
      const result = await runCli([
        'ttl-audit',
        ...flags(),
        '--match',
        `*${run}*`,
        '--policy',
        policyFile,
        '--json',
      ]);
      assert.equal(result.exitCode, 0, result.stdout + result.stderr);
      const report = JSON.parse(result.stdout) as { scanned: number; masters: number; findings: unknown[] };
      assert.equal(report.scanned, 71);
      assert.equal(report.masters, topology === 'cluster' ? 3 : 1);
    });

    test('keys without TTL (any key) and phicache keys over their class cap: listed, exit 1', async () => {
      const noTtl = [`legacy-${run}:session:1`, `legacy-${run}:session:2`, `phc:e:${className}:${hmac()}`];
      for (const key of noTtl) await writer.set(key, 'x');
      const overCap = `phc:e:${className}:${hmac()}`;
      await writer.set(overCap, 'x', { PX: 86_400_000 });
      const result = await runCli([
        'ttl-audit',
        ...flags(),
        '--match',
        `*${run}*`,
        '--policy',
        policyFile,
        '--json',
      ]);
      assert.equal(result.exitCode, 1, result.stderr);
      const report = JSON.parse(result.stdout) as {
        findings: { kind: string; key: string; capMs?: number }[];
      };
      // Other applications' names are redacted to their namespace and a per-report HMAC; phicache's are HMACs.
      const shown = report.findings.filter((f) => f.kind === 'no-ttl').map((f) => f.key);
      assert.equal(shown.length, 3);
      assert.ok(shown.includes(noTtl[2]!));
      const redacted = shown.filter((key) => key !== noTtl[2]);
      for (const key of redacted) assert.match(key, new RegExp(`^redacted:legacy-${run}:…#[0-9a-f]{16}$`));
      assert.notEqual(redacted[0], redacted[1]);
      const over = report.findings.filter((f) => f.kind === 'over-cap');
      assert.deepEqual(
        over.map((f) => [f.key, f.capMs]),
        [[overCap, 300_000]],
      );
      const text = await runCli(['ttl-audit', ...flags(), '--match', `*${run}*`, '--policy', policyFile]);
      assert.equal(text.exitCode, 1);
      assert.match(
        text.stdout,
        /FAIL: scanned \d+ keys on \d masters; 3 without TTL, 1 over their class cap/,
      );
    });
  });
}

describe('phicache ttl-audit could not run', () => {
  test('an unreachable server, bad flags: exit 2 with a code and a hint', async () => {
    const unreachable = await runCli(['ttl-audit', '--redis', 'redis://127.0.0.1:1', '--json']);
    assert.equal(unreachable.exitCode, 2);
    assert.equal(
      (JSON.parse(unreachable.stdout) as { error: { code: string } }).error.code,
      'ERR_STORE_UNAVAILABLE',
    );
    assert.equal((await runCli(['ttl-audit'])).exitCode, 2);
    assert.equal(
      (await runCli(['ttl-audit', '--redis', 'redis://a:1', '--redis', 'redis://b:2'])).exitCode,
      2,
    );
    assert.equal(
      (await runCli(['ttl-audit', '--redis', 'redis://a:1', '--password-env', 'NOPE_UNSET'])).exitCode,
      2,
    );
  });
});
