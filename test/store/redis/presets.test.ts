/**
 * The README's "Managed Redis" section: the Memorystore and ElastiCache presets and `readSecret`, checked for the
 * options they produce and the mistakes they refuse, then used as written to reach a TLS server that demands a
 * password, on both client bindings.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError } from '../../../src/errors.js';
import type { RedisConnectionOptions } from '../../../src/store/redis/commands.js';
import { elasticache, memorystore, readSecret } from '../../../src/store/redis/presets.js';
import { RedisStore } from '../../../src/store/redis/redis-store.js';
import {
  connectOptions,
  type PrivateRedis,
  respCall,
  startRedis,
  strangerCaCertificate,
} from '../../harness/redis.js';
import { BINDING_NAMES, BINDINGS } from './bindings.js';

/** A CA certificate, valid now, that did not sign the test server's certificate. */
const STRANGER_CA = await strangerCaCertificate();
const AUTH_STRING = '6f1c5d2e-0b7a-4c1e-9d3f-2a8b7c6d5e4f'; // shaped like a Memorystore AUTH string (a UUID)
const TOKEN = 'Correct-Horse-Battery-Staple-42';

describe('memorystore(): TLS on 6378, the server CA and the AUTH string', () => {
  test('the options: rediss:// on port 6378 by default, the CA pinned, the AUTH string as password', () => {
    const options = memorystore({ host: '10.0.0.3', serverCa: STRANGER_CA, authString: AUTH_STRING });
    assert.deepEqual(options, {
      url: 'rediss://10.0.0.3:6378',
      tls: { ca: STRANGER_CA },
      password: AUTH_STRING,
    });
    assert.ok(Object.isFrozen(options));
    const other = memorystore({
      host: 'fd00::3',
      port: 16378,
      serverCa: Buffer.from(STRANGER_CA),
      authString: AUTH_STRING,
      servername: 'redis.internal.example',
      connectTimeoutMs: 2_000,
    });
    assert.equal(other.url, 'rediss://[fd00::3]:16378');
    assert.deepEqual(other.tls, { ca: Buffer.from(STRANGER_CA), servername: 'redis.internal.example' });
    assert.equal(other.connectTimeoutMs, 2_000);
  });

  test('refuses what would weaken it: no TLS-off switch, a missing or wrong CA, no AUTH string', () => {
    const base = { host: '10.0.0.3', serverCa: STRANGER_CA, authString: AUTH_STRING };
    const refuse = (options: object, error: RegExp | (new (...args: never[]) => Error)) =>
      assert.throws(() => memorystore(options as Parameters<typeof memorystore>[0]), error);
    for (const weakener of ['tls', 'ssl', 'url', 'rejectUnauthorized', 'insecure']) {
      refuse({ ...base, [weakener]: false }, /always connects over verified TLS/);
    }
    refuse({ ...base, serverCaCerts: [] }, /has no option serverCaCerts/);
    const { serverCa: _ca, ...noCa } = base;
    refuse(noCa, /needs serverCa/);
    refuse({ ...base, serverCa: 'not a certificate' }, /holds no PEM certificate/);
    const garbled = '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n';
    refuse({ ...base, serverCa: garbled }, /certificate 1 cannot be parsed/);
    refuse({ ...base, serverCa: `${STRANGER_CA}\n-----BEGIN PRIVATE KEY-----\nx\n` }, /private key/);
    const { authString: _auth, ...noAuth } = base;
    refuse(noAuth, TypeError);
    refuse({ ...base, authString: '' }, RangeError);
    refuse({ ...base, host: 'rediss://10.0.0.3:6378' }, /without scheme, port or path/);
    refuse({ ...base, host: '' }, TypeError);
    refuse({ ...base, port: 0 }, RangeError);
    refuse({ ...base, port: 6378.5 }, RangeError);
    refuse({ ...base, connectTimeoutMs: 0 }, RangeError);
  });

  test('an AUTH string with a stray newline is refused, and the message does not quote it', () => {
    assert.throws(
      () => memorystore({ host: '10.0.0.3', serverCa: STRANGER_CA, authString: `${AUTH_STRING}\n` }),
      (error: Error) => error instanceof TypeError && !error.message.includes(AUTH_STRING.slice(0, 8)),
    );
  });
});

describe('elasticache(): in-transit encryption with an AUTH token or an RBAC user', () => {
  test('the options: rediss:// on 6379, an AUTH token as the default user password', () => {
    assert.deepEqual(elasticache({ host: 'master.phi.abc123.use1.cache.amazonaws.com', authToken: TOKEN }), {
      url: 'rediss://master.phi.abc123.use1.cache.amazonaws.com:6379',
      tls: {},
      password: TOKEN,
    });
  });

  test('an RBAC user, a pinned CA, and cluster mode through the configuration endpoint', () => {
    const options = elasticache({
      host: 'clustercfg.phi.abc123.use1.cache.amazonaws.com',
      username: 'phicache-app',
      password: TOKEN,
      ca: STRANGER_CA,
      cluster: true,
    });
    assert.deepEqual(options, {
      cluster: { seeds: [{ host: 'clustercfg.phi.abc123.use1.cache.amazonaws.com', port: 6379 }] },
      tls: { ca: STRANGER_CA },
      username: 'phicache-app',
      password: TOKEN,
    });
  });

  test('refuses no authentication, both kinds at once, half an RBAC user, and a token ElastiCache would refuse', () => {
    const host = 'master.phi.abc123.use1.cache.amazonaws.com';
    const refuse = (options: object, error: RegExp | (new (...args: never[]) => Error)) =>
      assert.throws(() => elasticache(options as Parameters<typeof elasticache>[0]), error);
    refuse({ host }, /needs authToken, or username and password/);
    refuse({ host, authToken: TOKEN, username: 'u', password: TOKEN }, /not both/);
    refuse({ host, username: 'phicache-app' }, /needs both username and password/);
    refuse({ host, password: TOKEN }, /needs both username and password/);
    refuse({ host, authToken: 'short' }, RangeError);
    refuse({ host, authToken: 'x'.repeat(129) }, RangeError);
    refuse({ host, authToken: TOKEN, tls: false }, /always connects over verified TLS/);
    refuse({ host, authToken: TOKEN, cluster: 'yes' }, TypeError);
    refuse({ host, authToken: TOKEN, ca: 'nope' }, /holds no PEM certificate/);
    refuse({ host, username: 'a b', password: TOKEN }, TypeError);
  });
});

describe('readSecret(): the AUTH string from an environment variable or a file', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-secret-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('drops the trailing newline of a variable or a file', async () => {
    assert.equal(
      await readSecret({ env: 'REDIS_AUTH', environment: { REDIS_AUTH: `${AUTH_STRING}\n` } }),
      AUTH_STRING,
    );
    const file = join(dir, 'redis-auth');
    await writeFile(file, `${AUTH_STRING}\r\n`, { mode: 0o600 });
    assert.equal(await readSecret({ file }), AUTH_STRING);
  });

  test('an unset variable, a missing or empty file fail naming the source, never a value', async () => {
    await assert.rejects(
      readSecret({ env: 'REDIS_AUTH', environment: {} }),
      /environment variable REDIS_AUTH is not set/,
    );
    await assert.rejects(readSecret({ env: 'REDIS_AUTH', environment: { REDIS_AUTH: '\n' } }), /is empty/);
    await assert.rejects(readSecret({ file: join(dir, 'absent') }), /cannot be read/);
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    await assert.rejects(readSecret({ file: empty }), /is empty/);
    await assert.rejects(readSecret({ env: 'not a name' }), TypeError);
    await assert.rejects(readSecret({ env: 'A', file: empty } as never), /exactly one/);
  });
});

describe('the presets as written reach a TLS server that demands a password (private server)', () => {
  let redis: PrivateRedis;
  let port: number;
  const rbac = { username: 'phicache-app', password: 'Rbac-Password-For-The-Test-1' };

  before(async () => {
    redis = await startRedis('tls');
    port = redis.nodes[0]!.port;
    // What Memorystore's --auth-enabled and an ElastiCache RBAC user amount to, on our own TLS server.
    const admin = connectOptions(redis);
    await respCall(admin, 'ACL', 'SETUSER', rbac.username, 'on', `>${rbac.password}`, '~phc:*', '+@all');
    await respCall(admin, 'CONFIG', 'SET', 'requirepass', AUTH_STRING);
  });
  after(async () => {
    await redis?.stop();
  });

  const roundTrip = async (binding: (typeof BINDING_NAMES)[number], options: RedisConnectionOptions) => {
    const store = new RedisStore(await BINDINGS[binding](options));
    try {
      const key = `phc:e:preset-${binding}-${Math.random().toString(36).slice(2)}`;
      await store.set(key, Buffer.from('sealed bytes'), { ttlMs: 10_000 });
      assert.deepEqual(await store.get(key), Buffer.from('sealed bytes'));
    } finally {
      await store.close();
    }
  };
  const refused = (error: unknown) =>
    error instanceof PhiCacheError && error.code === 'ERR_STORE_UNAVAILABLE';

  for (const binding of BINDING_NAMES) {
    test(`${binding}: memorystore() with the server CA and the AUTH string`, async () => {
      const ca = redis.tls!.ca;
      await roundTrip(
        binding,
        memorystore({
          host: '127.0.0.1',
          port,
          serverCa: ca,
          authString: AUTH_STRING,
          connectTimeoutMs: 2_000,
        }),
      );
    });

    test(`${binding}: elasticache() with an RBAC user and a pinned CA`, async () => {
      await roundTrip(
        binding,
        elasticache({ host: '127.0.0.1', port, ...rbac, ca: redis.tls!.ca, connectTimeoutMs: 2_000 }),
      );
    });

    test(`${binding}: a CA that did not sign the server certificate, or a wrong AUTH string, gets no connection`, async () => {
      const options = { host: '127.0.0.1', port, connectTimeoutMs: 1_000 };
      await assert.rejects(
        BINDINGS[binding](memorystore({ ...options, serverCa: STRANGER_CA, authString: AUTH_STRING })),
        refused,
      );
      await assert.rejects(
        BINDINGS[binding](
          memorystore({ ...options, serverCa: redis.tls!.ca, authString: `x${AUTH_STRING}` }),
        ),
        (error: unknown) => refused(error) || /WRONGPASS|invalid password/i.test(String(error)),
      );
    });
  }
});
