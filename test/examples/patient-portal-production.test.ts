import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createPkcs11Kek } from '../../src/keys/providers/pkcs11.js';
import { runCli } from '../cli/run-cli.js';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';
import { connectOptions, type RedisEndpoint, RespConnection, sharedRedis } from '../harness/redis.js';
import { assertKekStaysInToken, type SoftHsm, type SoftHsmToken, startSoftHsm } from '../harness/softhsm.js';
import { loginCookie, type Portal, startPortal } from './start-portal.js';

/**
 * The production path end to end: NODE_ENV=production, a keyset made by `phicache keys init` whose cache and audit
 * KEKs are two key objects inside a SoftHSM2 token, the example app on the shared Redis, a restart, and the
 * auditor's `audit verify --keyset`. Nothing here opens the development keyring.
 */

const server = new URL('../../examples/patient-portal/server.js', import.meta.url);
/** A database of its own on the shared server, apart from the other portal tests. */
const DB = 12;
/** An HMAC name (`phc:<kind>:[<class>:]<43 base64url chars>`), with `:<n>` on a tag index shard. */
const HMAC_NAME = /^phc:[ekmprstv]:(?:[a-z][a-z0-9-]*:)?[A-Za-z0-9_-]{43}(?::\d+)?$/;

/** Runs the portal expecting it to refuse to start: its exit code and everything it printed. */
async function startRefused(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [server.pathname], {
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

async function stop(child: ChildProcess): Promise<unknown> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
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

/** Every file under `dir`, as one text. */
async function readTree(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const texts = await Promise.all(
    entries.filter((e) => e.isFile()).map((e) => readFile(join(e.parentPath, e.name), 'utf8')),
  );
  return texts.join('\n');
}

describe('examples/patient-portal in production: keyset KEKs in an HSM (SoftHSM2), Redis', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let endpoint: RedisEndpoint;
  let redis: RespConnection;
  let dir: string;
  let home: string;
  let keysetFile: string;
  let env: Record<string, string>;
  let portal: Portal | undefined;
  const cacheKek = 'portal-cache';
  const auditKek = 'portal-audit';

  before(async () => {
    hsm = await startSoftHsm();
    token = await hsm.createToken('phicache-portal');
    // Two KEK objects, one per domain: a grant on the audit key opens no cached PHI. Made inside the token.
    await createPkcs11Kek(token.uri(cacheKek), { env: token.env });
    await createPkcs11Kek(token.uri(auditKek), { env: token.env });
    endpoint = await sharedRedis('plain');
    redis = await RespConnection.open(connectOptions(endpoint, endpoint.nodes[0]!, { admin: false }));
    await redis.call('SELECT', DB);
    assert.deepEqual(await keysIn(redis), [], 'the portal starts on an empty database');
    dir = await mkdtemp(join(tmpdir(), 'phicache-portal-production-'));
    home = join(dir, 'home');
    keysetFile = join(dir, 'keyset.json');
    // What an operator sets: the HSM PIN comes from the variable the key URIs name (pin-source=env:…).
    env = {
      NODE_ENV: 'production',
      PHICACHE_HOME: home,
      PHICACHE_KEYSET: keysetFile,
      REDIS_URL: `${endpoint.url}/${DB}`,
      // The test speaks plain HTTP to the portal; in production TLS ends in front of it and cookies stay Secure.
      SESSION_COOKIE_SECURE: 'false',
      ...token.env,
    };
  });
  after(async () => {
    if (portal?.child.exitCode === null) portal.child.kill('SIGKILL');
    const keys = redis === undefined ? [] : await keysIn(redis).catch(() => []);
    for (const key of keys) await redis.call('DEL', key);
    redis?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    await hsm?.stop();
  });

  const summary = (p: (typeof fakePatients)[number]) => ({ name: p.name, dob: p.dateOfBirth, note: p.note });
  const summaryPath = (p: (typeof fakePatients)[number]) => `/tenants/st-marys/patients/${p.mrn}/summary`;
  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${portal!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  test('keys init under NODE_ENV=production writes a keyset naming the two HSM KEKs', async () => {
    const run = await runCli(
      ['keys', 'init', '--kek', token.uri(cacheKek), '--audit-kek', token.uri(auditKek), '--out', keysetFile],
      { NODE_ENV: 'production', PHICACHE_HOME: home, ...token.env },
    );
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    const keyset = JSON.parse(await readFile(keysetFile, 'utf8')) as { keks: Record<string, string> };
    assert.deepEqual(keyset.keks, { cache: token.uri(cacheKek), audit: token.uri(auditKek) });
    assert.equal((await readFile(keysetFile, 'utf8')).includes(token.pin), false, 'no PIN in the keyset');
  });

  test('serves PUT (201) and GET (200), and misses (404) for another user', async () => {
    portal = await startPortal(env);
    const p = fakePatients[0]!;
    const put = await call('PUT', summaryPath(p), { 'x-user': 'dr.ada' }, summary(p));
    assert.equal(put.status, 201);
    assert.equal(((await put.json()) as { stored: boolean }).stored, true, 'stored, not dropped');
    const hit = await call('GET', summaryPath(p), { 'x-user': 'dr.ada' });
    assert.equal(hit.status, 200);
    assert.deepEqual(await hit.json(), summary(p));
    assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.bob' })).status, 404);
  });

  test('lab-corrected purges the patient (204), then GET misses (404)', async () => {
    const p = fakePatients[1]!;
    assert.equal((await call('PUT', summaryPath(p), { 'x-user': 'dr.ada' }, summary(p))).status, 201);
    assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.ada' })).status, 200);
    const purge = await call('POST', `/tenants/st-marys/patients/${p.mrn}/events/lab-corrected`);
    assert.equal(purge.status, 204);
    assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.ada' })).status, 404);
  });

  test("DELETE /sessions/:user with that user's session purges the user's scope (204), other users stay", async () => {
    const p = fakePatients[2]!;
    assert.equal((await call('PUT', summaryPath(p), { 'x-user': 'dr.carol' }, summary(p))).status, 201);
    assert.equal((await call('PUT', summaryPath(p), { 'x-user': 'dr.dan' }, summary(p))).status, 201);
    assert.equal(
      (
        await call('DELETE', '/sessions/dr.carol', {
          cookie: await loginCookie(portal!.url, 'st-marys', 'dr.carol'),
        })
      ).status,
      204,
    );
    assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.carol' })).status, 404);
    assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.dan' })).status, 200);
  });

  test('after SIGTERM and a start with the same keyset and token, it reads what it wrote, and purges hold', async () => {
    assert.equal(await stop(portal!.child), 0);
    assert.equal(
      portal!.output().replace(/^patient-portal listening on .*\n/, ''),
      '',
      'nothing else printed',
    );

    portal = await startPortal(env);
    const [first, purged, scoped] = [fakePatients[0]!, fakePatients[1]!, fakePatients[2]!];
    const again = await call('GET', summaryPath(first), { 'x-user': 'dr.ada' });
    assert.equal(again.status, 200, 'the new process derives the same key names and unwraps the data key');
    assert.deepEqual(await again.json(), summary(first));
    assert.equal((await call('GET', summaryPath(purged), { 'x-user': 'dr.ada' })).status, 404);
    assert.equal((await call('GET', summaryPath(scoped), { 'x-user': 'dr.carol' })).status, 404);
    assert.equal((await call('GET', summaryPath(scoped), { 'x-user': 'dr.dan' })).status, 200);

    const p = fakePatients[3]!;
    assert.equal((await call('PUT', summaryPath(p), { 'x-user': 'dr.ada' }, summary(p))).status, 201);
    assert.deepEqual(await (await call('GET', summaryPath(p), { 'x-user': 'dr.ada' })).json(), summary(p));
    assert.equal(await stop(portal.child), 0);
    assert.equal(
      portal.output().replace(/^patient-portal listening on .*\n/, ''),
      '',
      'nothing else printed',
    );
  });

  test('Redis holds only HMAC names with a TTL and ciphertext: no value written is found in it', async () => {
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
      assert.ok(((await redis.call('PTTL', key)) as number) > 0, `${key} has a TTL`);
      const type = await redis.call('TYPE', key);
      const value = type === 'zset' ? await redis.call('ZRANGE', key, 0, -1) : await redis.call('GET', key);
      dump.push(key, JSON.stringify(value));
    }
    const text = dump.join('\n');
    assert.deepEqual(findLeaks(text, fakePatients.slice(0, 4)), []);
    for (const user of ['dr.ada', 'dr.carol', 'dr.dan', 'st-marys'])
      assert.equal(text.includes(user), false, user);
  });

  test('the KEKs never leave the token: CKA_VALUE cannot be read, both are sensitive and never extractable', async () => {
    await assertKekStaysInToken(token, `${cacheKek}/v1`);
    await assertKekStaysInToken(token, `${auditKek}/v1`);
  });

  test('no development keyring was opened: PHICACHE_HOME holds the audit log only', async () => {
    await assert.rejects(access(join(home, 'keyring')), { code: 'ENOENT' });
    assert.deepEqual(await readdir(home), ['audit']);
  });

  test('audit verify --keyset passes on the log of both runs, whose records name the HSM KEK', async () => {
    const audit = join(home, 'audit');
    const chains = (await readdir(audit, { withFileTypes: true })).filter((e) => e.isDirectory());
    assert.equal(chains.length, 2, 'one chain per process');
    const log = await readTree(audit);
    assert.ok(
      log.includes(`"kid":"pkcs11:token=phicache-portal;object=${cacheKek}/v1"`),
      'data keys under the HSM KEK',
    );
    assert.deepEqual(findLeaks(log, fakePatients.slice(0, 4)), []);

    const run = await runCli(['audit', 'verify', audit, '--keyset', keysetFile], {
      NODE_ENV: 'production',
      PHICACHE_HOME: join(dir, 'auditor-home'),
    });
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /intact/);
  });

  test('it fails closed: no start without the keyset under NODE_ENV=production, nor with a wrong PIN', async () => {
    const { PHICACHE_KEYSET: _keyset, ...withoutKeyset } = env;
    const development = await startRefused(withoutKeyset);
    assert.notEqual(development.code, 0);
    assert.match(development.output, /NODE_ENV=production/);
    assert.doesNotMatch(development.output, /listening/);

    const wrongPin = 'not-the-pin-4711';
    const refused = await startRefused({
      ...env,
      ...Object.fromEntries(Object.keys(token.env).map((k) => [k, wrongPin])),
    });
    assert.notEqual(refused.code, 0);
    assert.match(refused.output, /ERR_KEY_ACCESS_DENIED/);
    assert.doesNotMatch(refused.output, /listening/);
    assert.equal(refused.output.includes(wrongPin), false, 'the PIN is not printed');
  });
});
