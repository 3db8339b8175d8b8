import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Keyset } from '../../src/keys/keyset.js';
import { runCli } from '../cli/run-cli.js';
import { fakePatients } from '../fixtures/fake-patients.js';
import { connectOptions, type RedisEndpoint, RespConnection, sharedRedis } from '../harness/redis.js';
import { startPortal } from './start-portal.js';

/** A database of its own on the shared server, apart from the other portal tests. */
const DB = 11;

async function stop(child: ChildProcess): Promise<unknown> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  return exited;
}

describe('examples/patient-portal with PHICACHE_KEYSET', () => {
  let endpoint: RedisEndpoint;
  let redis: RespConnection;
  let dir: string;
  let env: Record<string, string>;
  let portal: { child: ChildProcess; url: string } | undefined;

  before(async () => {
    endpoint = await sharedRedis('plain');
    redis = await RespConnection.open(connectOptions(endpoint, endpoint.nodes[0]!, { admin: false }));
    await redis.call('SELECT', DB);
    dir = await mkdtemp(join(tmpdir(), 'phicache-portal-keyset-'));
    const home = join(dir, 'home');
    const keyset = join(dir, 'keyset.json');
    await (
      await Keyset.create({ keks: { cache: 'local:', audit: 'local:' }, env: { PHICACHE_HOME: home } })
    ).writeTo(keyset);
    env = { PHICACHE_HOME: home, PHICACHE_KEYSET: keyset, REDIS_URL: `${endpoint.url}/${DB}` };
  });
  after(async () => {
    if (portal?.child.exitCode === null) portal.child.kill('SIGKILL');
    const keys = (await redis.call('KEYS', 'phc:*').catch(() => [])) as string[];
    for (const key of keys) await redis.call('DEL', key);
    redis?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const summary = {
    name: fakePatients[0]!.name,
    dob: fakePatients[0]!.dateOfBirth,
    note: fakePatients[0]!.note,
  };
  const path = `/tenants/st-marys/patients/${fakePatients[0]!.mrn}/summary`;
  const call = (method: string, body?: unknown) =>
    fetch(`${portal!.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', 'x-user': 'dr.ada' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  test('serves a PUT and a GET, and after a restart with the same keyset reads what it wrote', async () => {
    portal = await startPortal(env);
    assert.equal((await call('PUT', summary)).status, 201);
    assert.equal((await call('GET')).status, 200);
    assert.equal(await stop(portal.child), 0);

    portal = await startPortal(env);
    const again = await call('GET');
    assert.equal(again.status, 200);
    assert.deepEqual(await again.json(), summary);
    assert.equal(await stop(portal.child), 0);
  });

  test('the audit log is signed with the keyset key: audit verify --keyset passes, no local audit keys were made', async () => {
    await assert.rejects(access(join(env.PHICACHE_HOME!, 'keyring', 'audit-keys.json')));
    const run = await runCli([
      'audit',
      'verify',
      join(env.PHICACHE_HOME!, 'audit'),
      '--keyset',
      env.PHICACHE_KEYSET!,
    ]);
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /intact/);
  });
});
