import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ACL_RULES, type ConfiguredRedis, pause, resume, startConfiguredRedis } from '../harness/redis.js';
import { runCli } from './run-cli.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../../test/fixtures/${name}`, import.meta.url));

/** An empty PHICACHE_HOME: no development keyring, so key ids are NOT-CHECKABLE rather than checked against one made now. */
let home: string;
before(async () => {
  home = await mkdtemp(join(tmpdir(), 'phicache-verify-home-'));
});

describe('phicache verify against a default redis-server', () => {
  let server: ConfiguredRedis;
  before(async () => {
    server = await startConfiguredRedis();
  });
  after(() => server.stop());

  test('exit 1 with FAIL lines for AUTH and TLS, and a summary', async () => {
    const result = await runCli(['verify', '--redis', `redis://127.0.0.1:${server.plainPort}`], {
      PHICACHE_HOME: home,
    });
    assert.equal(result.exitCode, 1, result.stderr);
    assert.match(result.stdout, /^ {2}FAIL +auth\.required +PING without AUTH was answered/m);
    assert.match(result.stdout, /^ {2}FAIL +auth\.default-user +the default user is on with nopass/m);
    assert.match(result.stdout, /^ {2}FAIL +tls\.version +the connection is plain TCP/m);
    assert.match(result.stdout, /^ {2}FAIL +transport\.plaintext-listener /m);
    assert.match(result.stdout, /^ +fix: /m);
    assert.match(result.stdout, /^FAIL: \d+ passed, \d+ failed, \d+ warnings, \d+ not checkable$/m);
  });

  test('--min-redis-version: the default 7.0 passes this server, a minimum above it FAILs server.version', async () => {
    const url = `redis://127.0.0.1:${server.plainPort}`;
    const byDefault = await runCli(['verify', '--redis', url], { PHICACHE_HOME: home });
    assert.match(
      byDefault.stdout,
      /^ {2}PASS +server\.version +Redis [\d.]+, at least the minimum 7\.0\.0$/m,
    );
    const raised = await runCli(['verify', '--redis', url, '--min-redis-version', '99.1'], {
      PHICACHE_HOME: home,
    });
    assert.equal(raised.exitCode, 1, raised.stderr);
    assert.match(
      raised.stdout,
      /^ {2}FAIL +server\.version +Redis [\d.]+, older than the minimum 99\.1\.0$/m,
    );
    const bad = await runCli(['verify', '--redis', url, '--min-redis-version', 'latest', '--json']);
    assert.equal(bad.exitCode, 2);
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'ERR_CLI_USAGE');
  });

  test('--json: one stable document, the report', async () => {
    const result = await runCli(['verify', '--redis', `redis://127.0.0.1:${server.plainPort}`, '--json'], {
      PHICACHE_HOME: home,
    });
    assert.equal(result.exitCode, 1);
    const report = JSON.parse(result.stdout) as {
      format: string;
      version: number;
      ok: boolean;
      summary: Record<string, number>;
      checks: { id: string; verdict: string; evidence: string; target: string }[];
    };
    assert.equal(report.format, 'phicache-posture-report');
    assert.equal(report.version, 1);
    assert.equal(report.ok, false);
    assert.deepEqual(Object.keys(report.summary), ['pass', 'fail', 'warn', 'notCheckable']);
    assert.equal(report.summary.fail, report.checks.filter((c) => c.verdict === 'FAIL').length);
    for (const check of report.checks) {
      assert.match(check.verdict, /^(PASS|FAIL|WARN|NOT-CHECKABLE)$/);
      assert.equal(check.target, `redis://127.0.0.1:${server.plainPort}`);
    }
  });

  test('combined with a Memorystore description: both in one report', async () => {
    const result = await runCli(
      [
        'verify',
        '--redis',
        `redis://127.0.0.1:${server.plainPort}`,
        '--memorystore',
        fixture('memorystore-secure.json'),
        '--json',
      ],
      { PHICACHE_HOME: home },
    );
    const report = JSON.parse(result.stdout) as { checks: { id: string; target: string }[] };
    assert.ok(report.checks.some((c) => c.target === 'memorystore:phi-redis' && c.id === 'memorystore.auth'));
    assert.ok(report.checks.some((c) => c.id === 'auth.required'));
  });

  test('a server that stops answering: exit 2 within the deadline, never a hang', async () => {
    pause(server.nodes[0]!);
    try {
      const result = await runCli(
        ['verify', '--redis', `redis://127.0.0.1:${server.plainPort}`, '--deadline-ms', '500', '--json'],
        {
          PHICACHE_HOME: home,
        },
      );
      assert.equal(result.exitCode, 2, result.stdout);
      assert.equal(
        (JSON.parse(result.stdout) as { error: { code: string } }).error.code,
        'ERR_STORE_UNAVAILABLE',
      );
    } finally {
      resume(server.nodes[0]!);
    }
  });
});

describe('phicache verify against a hardened server (TLS only, ACL users, no usable default user)', () => {
  let server: ConfiguredRedis;
  let dir: string;
  const password = randomBytes(18).toString('base64url');
  before(async () => {
    const admin = { username: 'admin', password: randomBytes(18).toString('base64url') };
    server = await startConfiguredRedis({
      tls: {},
      config: [
        'user default off',
        `user ${admin.username} on >${admin.password} ~* &* +@all`,
        `user phicache on >${password} ${ACL_RULES}`,
      ],
      probe: admin,
    });
    dir = await mkdtemp(join(tmpdir(), 'phicache-verify-'));
    await writeFile(join(dir, 'ca.crt'), server.tls!.ca);
  });
  after(() => server.stop());

  test("exit 0 with phicache's own credentials: TLS, AUTH and least privilege pass", async () => {
    const result = await runCli(
      [
        'verify',
        '--redis',
        `rediss://127.0.0.1:${server.tlsPort}`,
        '--tls-ca',
        join(dir, 'ca.crt'),
        '--user',
        'phicache',
        '--password-env',
        'VERIFY_PASSWORD',
      ],
      { PHICACHE_HOME: home, VERIFY_PASSWORD: password },
    );
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    for (const id of [
      'transport.plaintext-listener',
      'tls.version',
      'tls.certificate',
      'auth.required',
      'acl.commands',
      'acl.keys',
      'acl.channels',
    ]) {
      assert.match(result.stdout, new RegExp(`^ {2}PASS +${id.replace('.', '\\.')} `, 'm'), id);
    }
    assert.match(result.stdout, /^ {2}NOT-CHECKABLE +surface\.protected-configs +CONFIG GET is refused/m);
    assert.match(result.stdout, /^ok: /m);
    assert.doesNotMatch(result.stdout + result.stderr, new RegExp(password));
  });

  test('a wrong password: exit 2, the password never printed', async () => {
    const result = await runCli(
      [
        'verify',
        '--redis',
        `rediss://127.0.0.1:${server.tlsPort}`,
        '--tls-ca',
        join(dir, 'ca.crt'),
        '--user',
        'phicache',
        '--password-env',
        'VERIFY_PASSWORD',
      ],
      { PHICACHE_HOME: home, VERIFY_PASSWORD: 'wrong-password-123' },
    );
    assert.equal(result.exitCode, 2);
    assert.match(result.stderr, /ERR_STORE_UNAVAILABLE/);
    assert.doesNotMatch(result.stdout + result.stderr, /wrong-password-123/);
  });
});

describe('phicache verify could not run', () => {
  test('no target, bad flags, a description that is not JSON, an unreachable server: exit 2', async () => {
    assert.equal((await runCli(['verify'])).exitCode, 2);
    assert.equal(
      (await runCli(['verify', '--redis', 'redis://127.0.0.1:1', '--deadline-ms', 'soon'])).exitCode,
      2,
    );
    const dir = await mkdtemp(join(tmpdir(), 'phicache-verify-bad-'));
    await writeFile(join(dir, 'bad.json'), 'not json');
    const bad = await runCli(['verify', '--memorystore', join(dir, 'bad.json'), '--json']);
    assert.equal(bad.exitCode, 2);
    assert.equal((JSON.parse(bad.stdout) as { error: { code: string } }).error.code, 'ERR_CLI_USAGE');
    const unreachable = await runCli(['verify', '--redis', 'redis://127.0.0.1:1', '--json']);
    assert.equal(unreachable.exitCode, 2);
    assert.equal(
      (JSON.parse(unreachable.stdout) as { error: { code: string } }).error.code,
      'ERR_STORE_UNAVAILABLE',
    );
  });

  test('descriptions alone: exit 0 for a secure one, 1 for an insecure one', async () => {
    assert.equal((await runCli(['verify', '--elasticache', fixture('elasticache-secure.json')])).exitCode, 0);
    const insecure = await runCli(['verify', '--elasticache', fixture('elasticache-insecure.json')]);
    assert.equal(insecure.exitCode, 1);
    assert.match(insecure.stdout, /^elasticache:legacy-cache$/m);
    assert.match(
      insecure.stdout,
      /^ {2}FAIL +elasticache\.transit-encryption +TransitEncryptionEnabled false/m,
    );
  });
});
