import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RedisEndpoint, sharedRedis } from '../harness/redis.js';
import { type CliRun, runCli } from './run-cli.js';

/** Every failure to connect is exit 2 with the cause in words, and neither the URL nor its port in the output. */
function assertCouldNotConnect(run: CliRun, url: string, cause: RegExp): void {
  assert.equal(run.exitCode, 2, run.stderr);
  assert.match(run.stderr, /^error ERR_STORE_UNAVAILABLE: could not connect to redis \(node-redis\): /);
  assert.match(run.stderr, cause);
  assert.match(run.stderr, /\nhint: \S/);
  assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
  const { host, port } = new URL(url);
  assert.ok(!run.stderr.includes(url) && !run.stderr.includes(`${host}:${port}`), run.stderr);
  assert.equal(run.stdout, '');
}

// Each case waits out a client's retries up to the connect timeout, so they run side by side.
describe('phicache ttl-audit: Redis connection errors name their cause', { concurrency: true }, () => {
  let acl: RedisEndpoint;
  let tls: RedisEndpoint;
  before(async () => {
    [acl, tls] = await Promise.all([sharedRedis('acl'), sharedRedis('tls')]);
  });

  test('a port nobody listens on: connection refused', async () => {
    // A listener closed at once leaves a port that was free a moment ago and is now refused.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const url = `redis://127.0.0.1:${port}`;
    assertCouldNotConnect(await runCli(['ttl-audit', '--redis', url]), url, /: connection refused\n/);
  });

  test('a wrong password for an ACL user: WRONGPASS, and the password is not printed', async () => {
    const url = acl.url;
    const run = await runCli(['ttl-audit', '--redis', url, '--user', acl.username!, '--password-env', 'PW'], {
      PW: 'not-the-password-7f3a',
    });
    assertCouldNotConnect(run, url, /WRONGPASS/);
    assert.ok(!run.stderr.includes('not-the-password-7f3a'));
  });

  test('no credentials where the server requires them: NOAUTH', async () => {
    assertCouldNotConnect(await runCli(['ttl-audit', '--redis', acl.url]), acl.url, /\(NOAUTH\)/);
  });

  test('a TLS server whose CA was not given: the TLS handshake failed, with its code', async () => {
    const run = await runCli(['ttl-audit', '--redis', tls.url]);
    assertCouldNotConnect(run, tls.url, /the TLS handshake failed \([A-Z_]+\)/);
  });

  describe('a server that accepts and never answers', () => {
    let silent: Server;
    let url: string;
    before(async () => {
      silent = createServer((socket) => socket.on('error', () => undefined));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      url = `redis://127.0.0.1:${(silent.address() as { port: number }).port}`;
    });
    after(() => {
      silent.close();
    });

    test('timed out, after the connect timeout', async () => {
      assertCouldNotConnect(await runCli(['ttl-audit', '--redis', url]), url, /: timed out after 5000 ms\n/);
    });
  });
});
