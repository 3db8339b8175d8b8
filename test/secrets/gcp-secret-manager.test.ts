/**
 * gcp-sm:// through the official @google-cloud/secret-manager client in REST mode against a local server that
 * speaks Secret Manager's wire protocol: versions by number and `latest`, JSON fields, the payload's CRC32C,
 * retries inside the deadline, the caller's signal, faults mapped to the port's codes with no value in any
 * message or log, and a Redis ACL password read from it for a real node-redis connection.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { PhiCacheError } from '../../src/errors.js';
import { openSecretSource } from '../../src/secrets/open-secret-source.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import {
  FAKE_GCP_PROJECT,
  type FakeGcpSecretManager,
  startFakeGcpSecretManager,
} from '../harness/fake-secrets-gcp.js';
import { sharedRedis, waitFor } from '../harness/redis.js';

const PASSWORD = 'Correct-Horse-Battery-Staple-42';
const SECRETS = `projects/${FAKE_GCP_PROJECT}/secrets`;

/** Rejects with `code`, and the message and hint never hold the secret. */
async function rejectsWith(
  reading: Promise<unknown>,
  code: string,
  ...secrets: string[]
): Promise<PhiCacheError> {
  const error = await reading.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof PhiCacheError, `a PhiCacheError, not ${String(error)}`);
  assert.equal(error.code, code);
  for (const secret of [PASSWORD, ...secrets]) {
    assert.ok(!`${error.message} ${error.hint}`.includes(secret), 'no secret in the message or hint');
  }
  return error;
}

describe('gcp-sm:// through @google-cloud/secret-manager (REST, local wire-protocol server)', () => {
  let gcp: FakeGcpSecretManager;
  const open = (reference: string, timeoutMs = 5_000) =>
    openSecretSource(reference, { timeoutMs, gcp: { endpoint: gcp.endpoint } });
  before(async () => {
    gcp = await startFakeGcpSecretManager();
    gcp.addVersion('redis-auth', `${PASSWORD}\n`);
    gcp.addVersion('redis', JSON.stringify({ username: 'redis-user-xq7', password: PASSWORD }));
    gcp.addVersion('redis-ca', Buffer.from([0x2d, 0x2d, 0x00, 0xff, 0x0a]));
  });
  after(() => gcp?.close());

  test('a version by number, latest, a JSON field and binary bytes, with one GET …:access each', async () => {
    const before = gcp.requests.length;
    assert.equal((await open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read()).toString(), PASSWORD);
    assert.equal(
      (await open(`gcp-sm://${SECRETS}/redis/versions/latest#password`).read()).toString(),
      PASSWORD,
    );
    assert.deepEqual(
      await open(`gcp-sm://${SECRETS}/redis-ca/versions/latest`).read(),
      Buffer.from([0x2d, 0x2d, 0x00, 0xff]),
    );
    const sent = gcp.requests.slice(before);
    assert.deepEqual(
      sent.map((r) => `${r.method} ${r.path}`),
      [
        `GET /v1/${SECRETS}/redis-auth/versions/1:access`,
        `GET /v1/${SECRETS}/redis/versions/latest:access`,
        `GET /v1/${SECRETS}/redis-ca/versions/latest:access`,
      ],
    );
    for (const request of sent) {
      assert.match(String(request.headers['x-goog-api-client']), /gapic\/\d/, 'the official client sent it');
      assert.equal(request.headers.authorization, undefined, 'no credentials over plain http');
    }
    const source = open(`gcp-sm://${SECRETS}/redis/versions/latest#password`);
    assert.equal(source.reference, `gcp-sm://${SECRETS}/redis/versions/latest#password`);
  });

  test('latest follows a new version at the next read, without reopening the source', async () => {
    gcp.addVersion('rotating', 'first-password');
    const source = open(`gcp-sm://${SECRETS}/rotating/versions/latest`);
    assert.equal((await source.read()).toString(), 'first-password');
    gcp.addVersion('rotating', 'second-password');
    assert.equal((await source.read()).toString(), 'second-password');
    assert.equal((await open(`gcp-sm://${SECRETS}/rotating/versions/1`).read()).toString(), 'first-password');
  });

  test('a payload damaged on the way fails its CRC32C check and is read again', async () => {
    gcp.inject('corrupt');
    const before = gcp.requests.length;
    assert.equal((await open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read()).toString(), PASSWORD);
    assert.equal(gcp.requests.length - before, 2, 'the damaged answer, then a good one');

    gcp.inject('corrupt', 100);
    const error = await rejectsWith(
      open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read(),
      'ERR_KEY_SERVICE_UNAVAILABLE',
      PASSWORD.slice(0, -1),
    );
    gcp.clearFaults();
    assert.match(error.message, /CRC32C/);
  });

  test('throttling and unavailability are retried with backoff within the deadline, then the value', async () => {
    gcp.inject('throttle', 2);
    gcp.inject('unavailable', 1);
    const before = gcp.requests.length;
    assert.equal((await open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read()).toString(), PASSWORD);
    assert.equal(gcp.requests.length - before, 4, 'three refusals, then the answer');

    gcp.inject('throttle', 100);
    const error = await rejectsWith(
      open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read(),
      'ERR_KEY_SERVICE_UNAVAILABLE',
    );
    gcp.clearFaults();
    assert.match(error.message, /throttled/);
  });

  test('faults map to the port codes, with no value in the messages', async () => {
    const ref = `gcp-sm://${SECRETS}/redis-auth/versions/1`;
    await rejectsWith(open(`gcp-sm://${SECRETS}/absent/versions/latest`).read(), 'ERR_KEY_NOT_FOUND');
    await rejectsWith(open(`gcp-sm://${SECRETS}/redis-auth/versions/9`).read(), 'ERR_KEY_NOT_FOUND');
    await rejectsWith(
      open(`gcp-sm://${SECRETS}/redis/versions/1#absent`).read(),
      'ERR_KEY_NOT_FOUND',
      'redis-user-xq7',
    );
    await rejectsWith(open(`${ref}#password`).read(), 'ERR_KEY_NOT_FOUND');
    gcp.inject('deny');
    await rejectsWith(open(ref).read(), 'ERR_KEY_ACCESS_DENIED');
    // Client version 6 reports a body that is not JSON as a SyntaxError (final), version 7 as UNAVAILABLE
    // (retried): an answer that stays malformed is ERR_KEY_SERVICE_UNAVAILABLE either way.
    gcp.inject('malformed', 100);
    await rejectsWith(open(ref).read(), 'ERR_KEY_SERVICE_UNAVAILABLE');
    gcp.clearFaults();

    gcp.addVersion('disabled', 'old-password');
    gcp.addVersion('disabled', 'newer-password');
    gcp.setState('disabled', 1, 'DISABLED');
    gcp.setState('disabled', 2, 'DESTROYED');
    await rejectsWith(
      open(`gcp-sm://${SECRETS}/disabled/versions/1`).read(),
      'ERR_KEY_DISABLED',
      'old-password',
    );
    // latest is the newest version whatever its state, as in Secret Manager: destroyed, so no older fallback.
    await rejectsWith(
      open(`gcp-sm://${SECRETS}/disabled/versions/latest`).read(),
      'ERR_KEY_DISABLED',
      'old-password',
    );
  });

  test('a service that never answers fails at the deadline, a caller that gives up at once; both cancel the request', async () => {
    gcp.inject('hang');
    await rejectsWith(
      open(`gcp-sm://${SECRETS}/redis-auth/versions/1`, 300).read(),
      'ERR_KEY_SERVICE_UNAVAILABLE',
    );
    await waitFor(async () => gcp.cancelled === 1, 10_000, 'the timed-out request to be cancelled');

    gcp.inject('hang');
    const caller = new AbortController();
    const before = gcp.requests.length;
    const reading = open(`gcp-sm://${SECRETS}/redis-auth/versions/1`, 60_000).read({ signal: caller.signal });
    await waitFor(async () => gcp.requests.length > before, 10_000, 'the request to reach the server');
    caller.abort();
    const error = await rejectsWith(reading, 'ERR_KEY_SERVICE_UNAVAILABLE');
    assert.match(error.message, /abandoned by its caller/);
    await waitFor(async () => gcp.cancelled === 2, 10_000, 'the abandoned request to be cancelled');

    const aborted = AbortSignal.abort();
    await rejectsWith(
      open(`gcp-sm://${SECRETS}/redis-auth/versions/1`).read({ signal: aborted }),
      'ERR_KEY_SERVICE_UNAVAILABLE',
    );
  });

  test("the client's debug logging, switched on, never writes the payload", async () => {
    // A child process with GOOGLE_SDK_NODE_LOGGING=*: it reads the secret through gcp-sm://, then, through the
    // client's public method, a canary that proves the logging was on and shows the payloads it would write.
    const built = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
    const module = (path: string) => JSON.stringify(pathToFileURL(join(built, path)).href);
    gcp.addVersion('canary', 'canary-value-7f3a');
    const script = `
      const { openSecretSource } = await import(${module('src/secrets/open-secret-source.js')});
      const { gcpRestClientOptions } = await import(${module('src/runtime/gcp-rest-options.js')});
      const { SecretManagerServiceClient } = await import('@google-cloud/secret-manager');
      const endpoint = ${JSON.stringify(gcp.endpoint)};
      const secret = await openSecretSource(${JSON.stringify(`gcp-sm://${SECRETS}/redis-auth/versions/1`)}, { gcp: { endpoint } }).read();
      if (secret.toString() !== ${JSON.stringify(PASSWORD)}) throw new Error('wrong secret');
      const client = new SecretManagerServiceClient(gcpRestClientOptions(endpoint, { name: 'x', host: 'x' }));
      const [canary] = await client.accessSecretVersion({ name: ${JSON.stringify(`${SECRETS}/canary/versions/1`)} });
      if (canary.payload.data.toString() !== 'canary-value-7f3a') throw new Error('wrong canary');
      await client.close();
    `;
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '--eval', script],
      { cwd: built, env: { ...process.env, GOOGLE_SDK_NODE_LOGGING: '*' }, timeout: 60_000 },
    );
    const output = stdout + stderr;
    // The byte list form the logger writes for a Buffer.
    const asBytes = (text: string) => JSON.stringify([...Buffer.from(text)]).slice(1, -1);
    assert.ok(output.includes(asBytes('canary-value-7f3a')), 'the logging was on and writes payloads');
    for (const form of [PASSWORD, Buffer.from(PASSWORD).toString('base64'), asBytes(PASSWORD)]) {
      assert.ok(!output.includes(form), 'the secret read through gcp-sm:// is not in the log');
    }
  });

  test('bad references are TypeErrors that do not repeat what was given; plain http is loopback only', () => {
    for (const reference of [
      `gcp-sm://${SECRETS}/redis`,
      `gcp-sm://${SECRETS}/redis/versions/0`,
      `gcp-sm://${SECRETS}/redis/versions/current`,
      `gcp-sm://${SECRETS}/redis/versions/1/extra`,
      `gcp-sm://projects/p/locations/l/secrets/redis/versions/1`,
      `gcp-sm://${SECRETS}/redis/versions/1#`,
      `gcp-sm://${SECRETS}/${PASSWORD}!/versions/1`,
    ]) {
      assert.throws(
        () => openSecretSource(reference),
        (e: unknown) => {
          assert.ok(e instanceof TypeError, reference);
          assert.ok(!e.message.includes(PASSWORD));
          return true;
        },
      );
    }
    assert.throws(
      () =>
        openSecretSource(`gcp-sm://${SECRETS}/redis/versions/1`, {
          gcp: { endpoint: 'http://sm.example:80' },
        }),
      RangeError,
    );
    assert.throws(
      () => openSecretSource(`gcp-sm://${SECRETS}/redis/versions/1`, { gcp: { endpoint: 'nope' } }),
      TypeError,
    );
  });
});

describe('a Redis ACL password read from gcp-sm:// opens a node-redis connection (shared acl server)', () => {
  let gcp: FakeGcpSecretManager;
  before(async () => {
    gcp = await startFakeGcpSecretManager();
  });
  after(() => gcp?.close());

  test('the restricted user logs in with the password from the secret, and not without it', async () => {
    const redis = await sharedRedis('acl');
    assert.ok(redis.username !== undefined && redis.password !== undefined);
    gcp.addVersion('redis', JSON.stringify({ username: redis.username, password: redis.password }));
    const source = openSecretSource(`gcp-sm://${SECRETS}/redis/versions/latest#password`, {
      gcp: { endpoint: gcp.endpoint },
    });
    const before = gcp.requests.length;
    const commands = await nodeRedisCommands({
      url: redis.url,
      username: redis.username,
      password: source,
      connectTimeoutMs: 5_000,
    });
    try {
      const key = `phc:gcp-sm:${process.pid}`;
      assert.equal(await commands.set(key, Buffer.from('through gcp-sm'), 60_000, false), true);
      assert.equal((await commands.get(key))?.toString(), 'through gcp-sm');
    } finally {
      await commands.close();
    }
    assert.ok(gcp.requests.length > before, 'the password came from Secret Manager');

    // A newer version with another password: the handshake uses it, and the server refuses it.
    gcp.addVersion('redis', JSON.stringify({ username: redis.username, password: 'not-the-password' }));
    await assert.rejects(
      nodeRedisCommands({
        url: redis.url,
        username: redis.username,
        password: source,
        connectTimeoutMs: 2_000,
      }),
      (error: unknown) => {
        assert.ok(error instanceof PhiCacheError);
        assert.equal(error.code, 'ERR_STORE_UNAVAILABLE');
        assert.match(error.message, /WRONGPASS/);
        assert.ok(!error.message.includes('not-the-password'));
        return true;
      },
    );
  });
});

describe('opt-in: the real Google Secret Manager', () => {
  // PHICACHE_TEST_GCP_SECRET names a version (projects/P/secrets/S/versions/V, #field allowed) that Application
  // Default Credentials can access.
  const reference = process.env.PHICACHE_TEST_GCP_SECRET;
  test('reads the named version through Application Default Credentials', {
    skip:
      !reference &&
      'set PHICACHE_TEST_GCP_SECRET (and Application Default Credentials) to run against the real service',
  }, async () => {
    const bytes = await openSecretSource(`gcp-sm://${reference}`, { timeoutMs: 10_000 }).read();
    assert.ok(bytes.length > 0);
    bytes.fill(0);
  });
});
