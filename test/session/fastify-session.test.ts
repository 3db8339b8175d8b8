import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fastifyCookie from '@fastify/cookie';
import fastifySession, { type SessionStore } from '@fastify/session';
import Fastify, { type FastifyInstance } from 'fastify';
import { fastifySessionStore } from '../../src/session/fastify-session-store.js';
import { BACKENDS, type Backend, openBackend } from './backends.js';
import { Browser } from './http-client.js';

declare module 'fastify' {
  interface Session {
    subject?: string;
    tenant?: string;
    diagnosis?: string;
  }
}

const COOKIE = 'portal.sid';
/** The session type @fastify/session's store contract speaks of. */
type StoredSession = NonNullable<Parameters<Parameters<SessionStore['get']>[1]>[1]>;

for (const backend of BACKENDS) {
  describe(`@fastify/session through phicache (${backend})`, () => {
    let opened: Backend;
    let app: FastifyInstance;
    let base: string;
    let store: ReturnType<typeof fastifySessionStore<StoredSession>>;

    before(async () => {
      opened = await openBackend(backend);
      store = fastifySessionStore<StoredSession>({ cache: opened.cache, tenant: 'portal-sessions' });
      app = Fastify();
      await app.register(fastifyCookie);
      await app.register(fastifySession, {
        store,
        cookieName: COOKIE,
        secret: 'a test secret that is long enough to sign the cookies',
        saveUninitialized: false,
        cookie: { secure: false, httpOnly: true, sameSite: 'strict', maxAge: 600_000 },
      });
      app.post<{ Body: { user: string } }>('/login', async (request, reply) => {
        request.session.set('subject', request.body.user);
        request.session.set('tenant', 'st-marys');
        return reply.code(204).send();
      });
      app.get('/me', async (request, reply) => {
        const subject = request.session.get('subject');
        if (subject === undefined) return reply.code(401).send();
        return { subject, tenant: request.session.get('tenant') };
      });
      app.post<{ Body: { diagnosis: string } }>('/note', async (request, reply) => {
        request.session.set('diagnosis', request.body.diagnosis);
        try {
          await request.session.save();
        } catch (error) {
          // @fastify/session saves a changed session again after the response: take the refused field back out.
          request.session.set('diagnosis', undefined);
          throw error;
        }
        return reply.code(204).send();
      });
      app.post('/logout', async (request, reply) => {
        await request.session.destroy();
        return reply.code(204).send();
      });
      app.setErrorHandler((error: { code?: string }, _request, reply) => {
        void reply.code(500).send({ code: error.code ?? 'UNKNOWN' });
      });
      base = await app.listen({ port: 0, host: '127.0.0.1' });
    });
    after(async () => {
      await app.close();
      store.sessions.close();
      await opened.close();
    });

    test('a login keeps its session across requests; logout destroys it', async () => {
      const browser = new Browser(base, COOKIE);
      assert.equal((await browser.request('GET', '/me')).status, 401);
      assert.equal((await browser.request('POST', '/login', { user: 'dr.ada' })).status, 204);
      assert.match(
        browser.setCookies.find((line) => line.startsWith(`${COOKIE}=`))!,
        /HttpOnly.*SameSite=Strict/,
      );
      const me = await browser.request('GET', '/me');
      assert.equal(me.status, 200);
      assert.deepEqual(await me.json(), { subject: 'dr.ada', tenant: 'st-marys' });
      const sid = browser.sessionId();
      assert.equal((await store.sessions.get(sid))?.subject, 'dr.ada');
      assert.equal((await browser.request('POST', '/logout')).status, 204);
      assert.equal(await store.sessions.get(sid), undefined);
      assert.equal((await browser.request('GET', '/me')).status, 401);
    });

    test('PHI-SESSION-01 a diagnosis in the session is refused with ERR_SESSION_DATA_PHI', async () => {
      const browser = new Browser(base, COOKIE);
      await browser.request('POST', '/login', { user: 'dr.grace' });
      const refused = await browser.request('POST', '/note', { diagnosis: 'J45.909' });
      assert.equal(refused.status, 500);
      assert.deepEqual(await refused.json(), { code: 'ERR_SESSION_DATA_PHI' });
      const stored = await store.sessions.get(browser.sessionId());
      assert.equal(stored?.diagnosis, undefined);
      assert.equal(stored?.subject, 'dr.grace');
    });

    if (backend !== 'embedded') {
      test('PHI-SESSION-06 Redis holds no raw session id and every key has a TTL within the cookie and the class cap', async () => {
        const browser = new Browser(base, COOKIE);
        await browser.request('POST', '/login', { user: 'dr.lin' });
        const sid = browser.sessionId();
        const keys = await opened.keys!();
        for (const { key, pttl } of keys) {
          assert.ok(!key.includes(sid));
          assert.ok(pttl > 0);
        }
        const sessions = keys.filter(({ key }) => key.startsWith('phc:e:session-token:'));
        assert.ok(sessions.length > 0);
        for (const { pttl } of sessions) assert.ok(pttl <= 600_000);
      });
    }
  });
}
