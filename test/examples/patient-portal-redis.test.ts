import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';
import {
  connectOptions,
  type RedisEndpoint,
  type RedisTopology,
  RespConnection,
  sharedRedis,
} from '../harness/redis.js';
import { loginCookie, startPortal } from './start-portal.js';

/**
 * The portal gets a database of its own on the shared server, so that its keys can be told apart from those of
 * the tests running beside it.
 */
const DB = 9;
/** An HMAC name (`phc:<kind>:[<class>:]<43 base64url chars>`), with `:<n>` on a tag index shard; `r` is a rate-limit counter. */
const HMAC_NAME = /^phc:[ekmprstv]:(?:[a-z][a-z0-9-]*:)?[A-Za-z0-9_-]{43}(?::\d+)?$/;

/**
 * The portal's environment for one harness server: what an operator would set. With `passwordSecret` the password
 * is in a file (a mounted secret) that REDIS_PASSWORD_SECRET names, instead of in REDIS_PASSWORD.
 */
async function environment(
  endpoint: RedisEndpoint,
  dir: string,
  passwordSecret = false,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {
    PHICACHE_HOME: join(dir, 'home'),
    REDIS_URL: `${endpoint.url}/${DB}`,
  };
  if (endpoint.tls !== undefined) {
    env.REDIS_TLS_CA = join(dir, 'redis-ca.pem');
    await writeFile(env.REDIS_TLS_CA, endpoint.tls.ca);
  }
  if (endpoint.username !== undefined) env.REDIS_USER = endpoint.username;
  if (endpoint.password !== undefined && passwordSecret) {
    const file = join(dir, 'redis-password');
    await writeFile(file, `${endpoint.password}\n`, { mode: 0o600 });
    env.REDIS_PASSWORD_SECRET = `file:${file}`;
  } else if (endpoint.password !== undefined) {
    env.REDIS_PASSWORD = `${endpoint.password}\n`; // as `echo` leaves it
  }
  return env;
}

/** A raw connection to the portal's database, as an unrestricted user: the test's own view of the server. */
async function inspect(endpoint: RedisEndpoint): Promise<RespConnection> {
  const connection = await RespConnection.open(
    connectOptions(endpoint, endpoint.nodes[0]!, { admin: endpoint.admin !== undefined }),
  );
  await connection.call('SELECT', DB);
  return connection;
}

async function keysIn(connection: RespConnection): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = (await connection.call('SCAN', cursor, 'COUNT', 1000)) as [string, string[]];
    cursor = next;
    keys.push(...page);
  } while (cursor !== '0');
  return keys;
}

const VARIANTS: readonly { topology: RedisTopology; what: string; passwordSecret?: boolean }[] = [
  { topology: 'plain', what: 'REDIS_URL' },
  { topology: 'tls', what: 'REDIS_URL=rediss:// and REDIS_TLS_CA' },
  { topology: 'acl', what: 'REDIS_URL, REDIS_USER and REDIS_PASSWORD' },
  { topology: 'acl', what: 'REDIS_URL, REDIS_USER and REDIS_PASSWORD_SECRET=file:', passwordSecret: true },
];

for (const { topology, what, passwordSecret } of VARIANTS) {
  describe(`examples/patient-portal on Redis (${topology}: ${what})`, () => {
    let endpoint: RedisEndpoint;
    let dir: string;
    let portal: { child: ChildProcess; url: string };
    let redis: RespConnection;
    let stderr = '';

    before(async () => {
      endpoint = await sharedRedis(topology);
      dir = await mkdtemp(join(tmpdir(), `phicache-portal-${topology}-`));
      redis = await inspect(endpoint);
      assert.deepEqual(await keysIn(redis), [], 'the portal starts on an empty database');
      portal = await startPortal(await environment(endpoint, dir, passwordSecret));
      portal.child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
    });
    after(async () => {
      if (portal?.child.exitCode === null) portal.child.kill('SIGKILL');
      // Leave the shared server as found: delete only the keys of the portal's own database.
      const keys = redis === undefined ? [] : await keysIn(redis).catch(() => []);
      for (const key of keys) await redis.call('DEL', key);
      redis?.close();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
      fetch(`${portal.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const summary = (p: (typeof fakePatients)[number]) => ({
      name: p.name,
      dob: p.dateOfBirth,
      note: p.note,
    });

    test('PUT stores in Redis (201), GET returns it (200) to that user and misses (404) for another', async () => {
      const p = fakePatients[0]!;
      const path = `/tenants/st-marys/patients/${p.mrn}/summary`;
      const put = await call('PUT', path, { 'x-user': 'dr.ada' }, summary(p));
      assert.equal(put.status, 201);
      assert.equal(((await put.json()) as { stored: boolean }).stored, true, 'stored, not dropped');
      const hit = await call('GET', path, { 'x-user': 'dr.ada' });
      assert.equal(hit.status, 200);
      assert.deepEqual(await hit.json(), summary(p));
      assert.equal((await call('GET', path, { 'x-user': 'dr.bob' })).status, 404);
    });

    test('lab-corrected purges the patient (204), then GET misses (404)', async () => {
      const p = fakePatients[1]!;
      const path = `/tenants/st-marys/patients/${p.mrn}/summary`;
      assert.equal((await call('PUT', path, { 'x-user': 'dr.ada' }, summary(p))).status, 201);
      assert.equal((await call('GET', path, { 'x-user': 'dr.ada' })).status, 200);
      const purge = await call('POST', `/tenants/st-marys/patients/${p.mrn}/events/lab-corrected`);
      assert.equal(purge.status, 204);
      assert.equal((await call('GET', path, { 'x-user': 'dr.ada' })).status, 404);
    });

    test("DELETE /sessions/:user with that user's session purges the user's scope (204), other users stay", async () => {
      const p = fakePatients[2]!;
      const path = `/tenants/st-marys/patients/${p.mrn}/summary`;
      await call('PUT', path, { 'x-user': 'dr.carol' }, summary(p));
      await call('PUT', path, { 'x-user': 'dr.dan' }, summary(p));
      assert.equal(
        (
          await call('DELETE', '/sessions/dr.carol', {
            cookie: await loginCookie(portal.url, 'st-marys', 'dr.carol'),
          })
        ).status,
        204,
      );
      assert.equal((await call('GET', path, { 'x-user': 'dr.carol' })).status, 404);
      assert.equal((await call('GET', path, { 'x-user': 'dr.dan' })).status, 200);
    });

    test('Redis holds only HMAC names with a TTL, and no patient data in any key or value', async () => {
      const keys = await keysIn(redis);
      assert.ok(
        keys.some((key) => key.startsWith('phc:e:encrypted-phi:')),
        'entries are in Redis',
      );
      assert.ok(
        keys.some((key) => key.startsWith('phc:k:encrypted-phi:')),
        'so are wrapped data keys',
      );
      assert.deepEqual(
        keys.filter((key) => !HMAC_NAME.test(key)),
        [],
      );
      const dump: string[] = [];
      for (const key of keys) {
        const ttl = (await redis.call('PTTL', key)) as number;
        assert.ok(ttl > 0, `${key} has a TTL`);
        const type = await redis.call('TYPE', key);
        const value = type === 'zset' ? await redis.call('ZRANGE', key, 0, -1) : await redis.call('GET', key);
        dump.push(key, JSON.stringify(value));
      }
      assert.deepEqual(findLeaks(dump.join('\n')), []);
    });

    test('SIGTERM closes the Redis connection and exits 0, with nothing on stderr', async () => {
      portal.child.kill('SIGTERM');
      assert.equal(await new Promise((resolve) => portal.child.once('exit', resolve)), 0);
      assert.equal(stderr, '');
    });
  });
}
