import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readAuditLog } from '../../src/audit/read-log.js';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';

import { loginCookie } from './start-portal.js';

const server = new URL('../../examples/patient-portal/server.js', import.meta.url);

/** Starts the built example exactly as the README's first command does, on a free port and a fresh PHICACHE_HOME. */
async function startPortal(home: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [server.pathname], {
    env: { ...process.env, PORT: '0', PHICACHE_HOME: home, NODE_ENV: 'development' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`portal did not start: ${out}`)), 10_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`portal exited with ${code}`)));
  });
  return { child, url };
}

describe('examples/patient-portal: the HTTP contract on the embedded defaults', () => {
  let home: string;
  let portal: { child: ChildProcess; url: string };
  let stderr = '';
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'phicache-portal-'));
    portal = await startPortal(home);
    portal.child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
  });
  after(() => {
    if (portal.child.exitCode === null) portal.child.kill('SIGKILL');
  });

  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${portal.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  test('PUT caches (201), GET returns it (200) to that user and misses (404) for another', async () => {
    const p = fakePatients[0]!;
    const path = `/tenants/st-marys/patients/${p.mrn}/summary`;
    const summary = { name: p.name, dob: p.dateOfBirth, note: p.note, hba1c: 7.9 };
    assert.equal((await call('PUT', path, { 'x-user': 'dr.ada' }, summary)).status, 201);
    const hit = await call('GET', path, { 'x-user': 'dr.ada' });
    assert.equal(hit.status, 200);
    assert.deepEqual(await hit.json(), summary);
    assert.equal((await call('GET', path, { 'x-user': 'dr.bob' })).status, 404);
  });

  test('lab-corrected purges the patient for every user (204), other patients stay', async () => {
    const [p, q] = [fakePatients[1]!, fakePatients[2]!];
    for (const user of ['dr.ada', 'dr.bob']) {
      await call('PUT', `/tenants/st-marys/patients/${p.mrn}/summary`, { 'x-user': user }, { note: p.note });
    }
    await call(
      'PUT',
      `/tenants/st-marys/patients/${q.mrn}/summary`,
      { 'x-user': 'dr.ada' },
      { note: q.note },
    );
    const purge = await call('POST', `/tenants/st-marys/patients/${p.mrn}/events/lab-corrected`);
    assert.equal(purge.status, 204);
    for (const user of ['dr.ada', 'dr.bob']) {
      assert.equal(
        (await call('GET', `/tenants/st-marys/patients/${p.mrn}/summary`, { 'x-user': user })).status,
        404,
      );
    }
    assert.equal(
      (await call('GET', `/tenants/st-marys/patients/${q.mrn}/summary`, { 'x-user': 'dr.ada' })).status,
      200,
    );
  });

  test("DELETE /sessions/:user with that user's session purges the user's scope (204), other users stay", async () => {
    const p = fakePatients[3]!;
    const path = `/tenants/st-marys/patients/${p.mrn}/summary`;
    await call('PUT', path, { 'x-user': 'dr.carol' }, { note: p.note });
    await call('PUT', path, { 'x-user': 'dr.dan' }, { note: p.note });
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

  test('bad requests get clear errors: no x-user (400), bad JSON (400), unknown route (404)', async () => {
    const path = `/tenants/st-marys/patients/${fakePatients[4]!.mrn}/summary`;
    assert.equal((await call('PUT', path, {}, { a: 1 })).status, 400);
    const badJson = await fetch(`${portal.url}${path}`, {
      method: 'PUT',
      headers: { 'x-user': 'dr.ada' },
      body: '{"a":',
    });
    assert.equal(badJson.status, 400);
    assert.equal((await call('GET', '/nowhere')).status, 404);
  });

  test("a client's bad value is a 4xx, never a 503: not an object (400), not cacheable as JSON (422)", async () => {
    const path = `/tenants/st-marys/patients/${fakePatients[6]!.mrn}/summary`;
    for (const body of ['a string', 42, null, [1, 2]]) {
      const response = await call('PUT', path, { 'x-user': 'dr.ada' }, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
    }
    const badTtl = await call('PUT', `${path}?ttlSeconds=soon`, { 'x-user': 'dr.ada' }, { a: 1 });
    assert.equal(badTtl.status, 400);
    // Valid JSON within the body limit, nested deeper than JSON.stringify can go: the library refuses the value.
    const deep = await fetch(`${portal.url}${path}`, {
      method: 'PUT',
      headers: { 'x-user': 'dr.ada', 'content-type': 'application/json' },
      body: `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`,
    });
    assert.equal(deep.status, 422);
    const { error } = (await deep.json()) as { error: { code: string; hint: string } };
    assert.equal(error.code, 'ERR_VALUE_NOT_SERIALIZABLE');
    assert.ok(error.hint.length > 0);
    // A user name the cache cannot bound (too long, a line break) is the client's error too, named without its value.
    const longUser = 'u'.repeat(129);
    const refused = await call('GET', path, { 'x-user': longUser });
    assert.equal(refused.status, 400);
    assert.ok(!(await refused.text()).includes(longUser), 'the value is not echoed');
    const tenant = await call('GET', `/tenants/st%0Amarys/patients/${fakePatients[6]!.mrn}/summary`, {
      'x-user': 'dr.ada',
    });
    assert.equal(tenant.status, 400);
  });

  test('a TTL over the class cap is refused (403) with the rule id', async () => {
    const path = `/tenants/st-marys/patients/${fakePatients[5]!.mrn}/summary?ttlSeconds=3600`;
    const response = await call('PUT', path, { 'x-user': 'dr.ada' }, { note: fakePatients[5]!.note });
    assert.equal(response.status, 403);
    const body = (await response.json()) as { error: { code: string; rule: string } };
    assert.deepEqual([body.error.code, body.error.rule], ['ERR_POLICY_TTL_EXCEEDED', 'PHI-TTL-01']);
  });

  test('after shutdown the audit log verifies with the public key alone, and holds no patient data', async () => {
    portal.child.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => portal.child.once('exit', resolve)), 0);
    const dir = join(home, 'audit');
    const verify = await runBin(
      ['audit', 'verify', dir, '--pubkey', join(home, 'audit-signing.pub'), '--json'],
      home,
    );
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const report = JSON.parse(verify.stdout) as { records: number; vouched: number; findings: unknown[] };
    assert.deepEqual(report.findings, []);
    assert.equal(report.vouched, report.records);

    const files = await readAuditLog(dir);
    const text = files.map((f) => ('text' in f ? f.text : '')).join('');
    const events = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { action?: string; type?: string; outcome?: { result: string } });
    const seen = new Set(events.map((e) => `${e.action}:${e.outcome?.result}`));
    for (const kind of [
      'set:ok',
      'get:hit',
      'get:miss',
      'set:denied',
      'purge.tag:ok',
      'purge.scope:ok',
      'key.create:ok',
    ]) {
      assert.ok(seen.has(kind), `the session left a ${kind} record`);
    }
    assert.deepEqual(findLeaks(text), []);
    assert.equal(stderr, '');

    // An auditor finds one patient's records by the key hash, without the log holding the id.
    const hash = await runBin(
      [
        'audit',
        'hash',
        '--tenant',
        'st-marys',
        '--class',
        'encrypted-phi',
        '--resource',
        'lab-summary',
        '--id',
        fakePatients[0]!.mrn,
      ],
      home,
    );
    assert.equal(hash.code, 0, hash.stderr);
    const key = hash.stdout.trim();
    assert.match(key, /^hmac-sha256:[A-Za-z0-9_-]{43}$/);
    const hers = events.filter((e) => (e as { key?: string }).key === key);
    assert.ok(hers.length >= 3, `found ${hers.length} records of the patient`);
  });
});

function runBin(
  args: string[],
  home: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = new URL('../../src/cli/main.js', import.meta.url).pathname;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env: { ...process.env, PHICACHE_HOME: home } },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
