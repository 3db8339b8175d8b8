import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakePatients } from '../fixtures/fake-patients.js';
import { sharedRedis } from '../harness/redis.js';
import { startPortal } from './start-portal.js';

/** The example portal with its login limit counting by a fixed clock, so the limit test meets no window's end. */
const server = new URL('./fixed-clock-portal.js', import.meta.url);
/** The portal's own database on the shared server, apart from the other portal tests' (9). */
const DB = 10;

for (const variant of ['embedded defaults', 'REDIS_URL'] as const) {
  describe(`examples/patient-portal sessions, login limit and no-store (${variant})`, () => {
    let dir: string;
    let portal: { child: ChildProcess; url: string };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'phicache-portal-sessions-'));
      const env: Record<string, string> = { PHICACHE_HOME: join(dir, 'home'), LOGIN_RATE_LIMIT: '8' };
      if (variant === 'REDIS_URL') env.REDIS_URL = `${(await sharedRedis('plain')).url}/${DB}`;
      portal = await startPortal(env, {
        script: server,
        args: ['serve'],
        store: variant === 'REDIS_URL' ? 'redis' : 'embedded',
      });
    });
    after(async () => {
      if (portal?.child.exitCode === null) portal.child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    });

    const call = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
      fetch(`${portal.url}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    /** Every login attempt of this file comes from 127.0.0.1, so the limit test counts the earlier ones. */
    let logins = 0;
    const login = async (tenant: string, user: string): Promise<string> => {
      logins += 1;
      const response = await call('POST', '/login', {}, { tenant, user });
      assert.equal(response.status, 204);
      const line = response.headers.getSetCookie().find((cookie) => cookie.startsWith('portal.sid='))!;
      assert.match(line, /HttpOnly/);
      assert.match(line, /SameSite=Strict/);
      return line.split(';')[0]!;
    };
    const summaryPath = (p: (typeof fakePatients)[number], tenant = 'st-marys') =>
      `/tenants/${tenant}/patients/${p.mrn}/summary`;

    test('login, GET /session (200 with tenant and user), logout, then 401', async () => {
      assert.equal((await call('GET', '/session')).status, 401);
      const cookie = await login('st-marys', 'dr.ada');
      const current = await call('GET', '/session', { cookie });
      assert.equal(current.status, 200);
      assert.deepEqual(await current.json(), { tenant: 'st-marys', user: 'dr.ada' });
      assert.equal((await call('POST', '/logout', { cookie })).status, 204);
      assert.equal((await call('GET', '/session', { cookie })).status, 401);
    });

    test('summary routes take the session as identity, answer no-store, and logout purges the user', async () => {
      const p = fakePatients[0]!;
      const cookie = await login('st-marys', 'dr.bea');
      const put = await call('PUT', summaryPath(p), { cookie }, { note: p.note });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('cache-control'), 'no-store');
      const hit = await call('GET', summaryPath(p), { cookie });
      assert.equal(hit.status, 200);
      assert.equal(hit.headers.get('cache-control'), 'no-store');
      assert.equal(hit.headers.get('pragma'), 'no-cache');
      assert.equal(
        (await call('GET', summaryPath(p), { 'x-user': 'dr.bea' })).status,
        200,
        'the same user by header',
      );
      assert.equal(
        (await call('GET', summaryPath(p, 'other-clinic'), { cookie })).status,
        403,
        'not another tenant',
      );
      assert.equal(
        (await call('GET', summaryPath(p), { 'x-user': 'dr.zed' })).headers.get('cache-control'),
        'no-store',
      );
      assert.equal((await call('POST', '/logout', { cookie })).status, 204);
      assert.equal(
        (await call('GET', summaryPath(p), { 'x-user': 'dr.bea' })).status,
        404,
        'logout purged the scope',
      );
    });

    test("DELETE /sessions/:user needs that user's session and purges only the caller's tenant", async () => {
      const p = fakePatients[1]!;
      await call('PUT', summaryPath(p), { 'x-user': 'dr.cy' }, { note: p.note });
      await call('PUT', summaryPath(p, 'north-clinic'), { 'x-user': 'dr.cy' }, { note: p.note });
      assert.equal((await call('DELETE', '/sessions/dr.cy')).status, 401, 'anonymous callers purge nothing');
      const other = await login('st-marys', 'dr.eve');
      assert.equal(
        (await call('DELETE', '/sessions/dr.cy', { cookie: other })).status,
        403,
        'nor other users',
      );
      assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.cy' })).status, 200);
      const own = await login('st-marys', 'dr.cy');
      assert.equal((await call('DELETE', '/sessions/dr.cy', { cookie: own })).status, 204);
      assert.equal((await call('GET', summaryPath(p), { 'x-user': 'dr.cy' })).status, 404);
      assert.equal(
        (await call('GET', summaryPath(p, 'north-clinic'), { 'x-user': 'dr.cy' })).status,
        200,
        'the other tenant is untouched',
      );
    });

    test('a login with an email address or without a user is refused (400)', async () => {
      logins += 2;
      assert.equal(
        (await call('POST', '/login', {}, { tenant: 'st-marys', user: 'jane@example' })).status,
        400,
      );
      assert.equal((await call('POST', '/login', {}, { tenant: 'st-marys' })).status, 400);
    });

    test('POST /login is limited per client address: LOGIN_RATE_LIMIT a minute, then 429 with the headers', async () => {
      let response: Response | undefined;
      // Every earlier login of this file came from this address and counts: the portal's login clock stands still.
      for (let attempt = logins; attempt < 8; attempt += 1) {
        response = await call('POST', '/login', {}, { tenant: 'st-marys', user: 'dr.flo' });
        assert.equal(response.status, 204);
      }
      const limited = await call('POST', '/login', {}, { tenant: 'st-marys', user: 'dr.flo' });
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('ratelimit-policy'), '"login";q=8;w=60');
      assert.match(limited.headers.get('ratelimit') ?? '', /^"login";r=0;t=\d+$/);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      assert.equal(limited.headers.getSetCookie().length, 0, 'a refused login starts no session');
    });
  });
}
