import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  connectOptions,
  type RedisEndpoint,
  RespConnection,
  sharedRedis,
  strangerCaCertificate,
} from '../harness/redis.js';
import { type CliRun, runCli } from './run-cli.js';

/** Exit 2 with `error <code>: <message>` and a hint on stderr, nothing on stdout, no stack trace. */
function assertCouldNotRun(run: CliRun, code: string, message: RegExp): void {
  assert.equal(run.exitCode, 2, run.stdout + run.stderr);
  assert.match(run.stderr, new RegExp(`^error ${code}: `));
  assert.match(run.stderr, message);
  assert.match(run.stderr, /\nhint: \S/);
  assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
  assert.equal(run.stdout, '');
}

// The failures to connect wait out the client's retries up to the connect timeout, so the cases run side by side.
describe('phicache ttl-audit: --password-secret and --tls-ca-secret', { concurrency: true }, () => {
  let acl: RedisEndpoint;
  let tls: RedisEndpoint;
  let admin: RespConnection;
  let dir: string;
  const run = randomBytes(4).toString('hex');
  /** A key without a TTL, inside the ACL user's `~phc:*`, that only this file writes. */
  const planted = `phc:secret-flags-${run}:no-ttl`;
  const match = ['--match', `phc:secret-flags-${run}:*`];

  before(async () => {
    [acl, tls] = await Promise.all([sharedRedis('acl'), sharedRedis('tls')]);
    admin = await RespConnection.open(connectOptions(acl, acl.nodes[0]!, { admin: true }));
    await admin.call('SET', planted, 'x');
    dir = await mkdtemp(join(tmpdir(), 'phicache-cli-secrets-'));
  });
  after(async () => {
    await admin?.call('DEL', planted).catch(() => undefined);
    admin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const file = async (name: string, content: string) => {
    const path = join(dir, name);
    await writeFile(path, content, { mode: 0o600 });
    return path;
  };

  test('the ACL password from a file: (a mounted secret, trailing newline and all) connects and scans', async () => {
    const pw = await file('redis-password', `${acl.password}\n`);
    const result = await runCli([
      'ttl-audit',
      '--redis',
      acl.url,
      '--user',
      acl.username!,
      '--password-secret',
      `file:${pw}`,
      ...match,
      '--show-key-names', // the planted name is not phicache-shaped, so it is redacted by default
      '--json',
    ]);
    assert.equal(result.exitCode, 1, result.stderr);
    const report = JSON.parse(result.stdout) as {
      scanned: number;
      findings: { kind: string; key: string }[];
    };
    assert.deepEqual(report.findings, [{ kind: 'no-ttl', key: planted }]);
    assert.equal(result.stdout.includes(acl.password!), false);
  });

  test('a wrong password from a file: is WRONGPASS, exit 2, and the password is not printed', async () => {
    const wrong = 'not-the-password-5c1d';
    const pw = await file('wrong-password', wrong);
    const result = await runCli([
      'ttl-audit',
      '--redis',
      acl.url,
      '--user',
      acl.username!,
      '--password-secret',
      `file:${pw}`,
    ]);
    assertCouldNotRun(result, 'ERR_STORE_UNAVAILABLE', /WRONGPASS/);
    assert.equal(result.stderr.includes(wrong), false);
  });

  test('a password file that is missing or empty: the secret error names the reference, exit 2', async () => {
    const missing = join(dir, 'no-such-file');
    const gone = await runCli([
      'ttl-audit',
      '--redis',
      acl.url,
      '--user',
      acl.username!,
      '--password-secret',
      `file:${missing}`,
    ]);
    assertCouldNotRun(gone, 'ERR_KEY_NOT_FOUND', new RegExp(`secret file:${missing}: `));

    const empty = await file('empty-password', '\n');
    const blank = await runCli([
      'ttl-audit',
      '--redis',
      acl.url,
      '--user',
      acl.username!,
      '--password-secret',
      `file:${empty}`,
      '--json',
    ]);
    assert.equal(blank.exitCode, 2);
    const { error } = JSON.parse(blank.stdout) as { error: { code: string; message: string; hint: string } };
    assert.equal(error.code, 'ERR_KEY_NOT_FOUND');
    assert.match(error.message, new RegExp(`secret file:${empty}: `));
    assert.ok(error.hint.length > 0);
  });

  test('a file: reference naming a directory is refused before anything is opened', async () => {
    const folder = join(dir, 'a-directory');
    await mkdir(folder);
    for (const flag of ['--password-secret', '--tls-ca-secret']) {
      const result = await runCli(['ttl-audit', '--redis', acl.url, flag, `file:${folder}`]);
      assertCouldNotRun(result, 'ERR_CLI_USAGE', /is a directory, not a file/);
    }
  });

  test('a value that is no reference (a password pasted in its place) is refused without being repeated', async () => {
    const pasted = 'S3cret-pasted-here';
    for (const flag of ['--password-secret', '--tls-ca-secret']) {
      const result = await runCli(['ttl-audit', '--redis', acl.url, flag, pasted]);
      assertCouldNotRun(result, 'ERR_CLI_USAGE', new RegExp(`${flag}: a secret reference starts with env:`));
      assert.equal(result.stderr.includes(pasted), false);
    }
  });

  test('--password-env with --password-secret, or --tls-ca with --tls-ca-secret, is a usage error', async () => {
    const pw = await file('either-password', 'x');
    const both = await runCli([
      'ttl-audit',
      '--redis',
      acl.url,
      '--password-env',
      'PW',
      '--password-secret',
      `file:${pw}`,
    ]);
    assertCouldNotRun(both, 'ERR_CLI_USAGE', /--password-env or --password-secret, not both/);
    const ca = await file('either-ca.pem', tls.tls!.ca);
    const twice = await runCli([
      'ttl-audit',
      '--redis',
      tls.url,
      '--tls-ca',
      ca,
      '--tls-ca-secret',
      `file:${ca}`,
    ]);
    assertCouldNotRun(twice, 'ERR_CLI_USAGE', /--tls-ca or --tls-ca-secret, not both/);
  });

  test('the server CA from a file: or an env: reference verifies a TLS server', async () => {
    const ca = await file('redis-ca.pem', tls.tls!.ca);
    const fromFile = await runCli([
      'ttl-audit',
      '--redis',
      tls.url,
      '--tls-ca-secret',
      `file:${ca}`,
      ...match,
    ]);
    assert.equal(fromFile.exitCode, 0, fromFile.stderr);
    assert.match(fromFile.stdout, /^clean: scanned 0 keys on 1 masters/);

    const fromEnv = await runCli(
      ['ttl-audit', '--redis', tls.url, '--tls-ca-secret', 'env:REDIS_CA', ...match],
      {
        REDIS_CA: tls.tls!.ca,
      },
    );
    assert.equal(fromEnv.exitCode, 0, fromEnv.stderr);
  });

  test('a CA secret that is not set is exit 2 naming the reference; a wrong CA fails the TLS handshake', async () => {
    const unset = await runCli([
      'ttl-audit',
      '--redis',
      tls.url,
      '--tls-ca-secret',
      'env:PHICACHE_TEST_NO_CA',
    ]);
    assertCouldNotRun(unset, 'ERR_KEY_NOT_FOUND', /secret env:PHICACHE_TEST_NO_CA: /);

    const stranger = await file('stranger-ca.pem', await strangerCaCertificate());
    const wrong = await runCli(['ttl-audit', '--redis', tls.url, '--tls-ca-secret', `file:${stranger}`]);
    assertCouldNotRun(wrong, 'ERR_STORE_UNAVAILABLE', /the TLS handshake failed \([A-Z_]+\)/);
  });
});
