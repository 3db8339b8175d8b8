import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import { expressSessionStore } from '../../src/session/express-session-store.js';
import { BACKENDS, type Backend, openBackend } from './backends.js';
import { Browser, listen } from './http-client.js';

declare module 'express-session' {
  interface SessionData {
    subject: string;
    tenant: string;
    name: string;
    roles: string[];
  }
}

const COOKIE = 'portal.sid';
const SESSION_CAP_MS = 1_800_000;

function app(store: session.Store): Server {
  const portal = express();
  portal.use(express.json());
  portal.use(
    session({
      store,
      name: COOKIE,
      secret: 'a test secret that is long enough to sign cookies',
      resave: false,
      saveUninitialized: false,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 600_000 },
    }),
  );
  portal.post('/login', (req, res) => {
    req.session.subject = String(req.body.user);
    req.session.tenant = 'st-marys';
    req.session.roles = ['clinician'];
    res.status(204).end();
  });
  portal.get('/me', (req, res) => {
    if (req.session?.subject === undefined) return void res.status(401).end();
    res.json({ subject: req.session.subject, tenant: req.session.tenant });
  });
  // express-session saves after the response has been sent and reports a failed save too late to change it, so a
  // route that writes to the session saves explicitly: a refusal then becomes the response.
  portal.post('/remember-patient', (req, res, next) => {
    req.session.name = String(req.body.name);
    req.session.save((error) => (error ? next(error) : res.status(204).end()));
  });
  portal.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.status(204).end()));
  });
  portal.use(
    (error: { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).json({ code: error.code ?? 'UNKNOWN' });
    },
  );
  return createServer(portal);
}

for (const backend of BACKENDS) {
  describe(`express-session through phicache (${backend})`, () => {
    let opened: Backend;
    let server: Server;
    let base: string;
    let store: ReturnType<typeof expressSessionStore>;

    before(async () => {
      opened = await openBackend(backend);
      store = expressSessionStore(session.Store, { cache: opened.cache, tenant: 'portal-sessions' });
      server = app(store);
      base = await listen(server);
    });
    after(async () => {
      server.close();
      store.sessions.close();
      await opened.close();
    });

    test('a login keeps its session across requests; logout destroys it', async () => {
      const browser = new Browser(base, COOKIE);
      assert.equal((await browser.request('GET', '/me')).status, 401);
      assert.equal((await browser.request('POST', '/login', { user: 'dr.ada' })).status, 204);
      const cookieLine = browser.setCookies.find((line) => line.startsWith(`${COOKIE}=`))!;
      assert.match(cookieLine, /HttpOnly/);
      assert.match(cookieLine, /SameSite=Lax/);
      const me = await browser.request('GET', '/me');
      assert.equal(me.status, 200);
      assert.deepEqual(await me.json(), { subject: 'dr.ada', tenant: 'st-marys' });

      const sid = browser.sessionId();
      assert.ok((await store.sessions.get(sid)) !== undefined, 'the store holds the session');
      assert.equal((await browser.request('POST', '/logout')).status, 204);
      assert.equal(await store.sessions.get(sid), undefined, 'destroy removed it');
      assert.equal((await browser.request('GET', '/me')).status, 401, 'the old cookie opens nothing');
    });

    test('PHI-SESSION-01 session data with PHI is refused with ERR_SESSION_DATA_PHI and never stored', async () => {
      const browser = new Browser(base, COOKIE);
      await browser.request('POST', '/login', { user: 'dr.grace' });
      const refused = await browser.request('POST', '/remember-patient', { name: 'Jane Q. Patient' });
      assert.equal(refused.status, 500);
      assert.deepEqual(await refused.json(), { code: 'ERR_SESSION_DATA_PHI' });
      const stored = await store.sessions.get(browser.sessionId());
      assert.equal(stored?.name, undefined, 'the stored session is the one before the refused change');
      assert.equal(stored?.subject, 'dr.grace');
    });

    if (backend !== 'embedded') {
      test('PHI-SESSION-06 Redis holds no raw session id, and every session key has a TTL within the class cap', async () => {
        const browser = new Browser(base, COOKIE);
        await browser.request('POST', '/login', { user: 'dr.lin' });
        const sid = browser.sessionId();
        const keys = await opened.keys!();
        assert.ok(keys.length > 0);
        for (const { key, pttl } of keys) {
          assert.ok(!key.includes(sid), 'no key name holds the session id');
          assert.ok(pttl > 0, `every key has a TTL (${key})`);
        }
        const sessions = keys.filter(({ key }) => key.startsWith('phc:e:session-token:'));
        assert.ok(sessions.length > 0);
        for (const { pttl } of sessions) assert.ok(pttl <= 600_000 && pttl <= SESSION_CAP_MS);
        for (const node of opened.commands!.masters()) {
          for (const { key } of keys) {
            const value = await node.get(key).catch(() => null);
            if (value !== null)
              assert.ok(!value.includes(sid), 'no stored value holds the session id in clear');
          }
        }
      });

      test('PHI-SESSION-04 a destroyed session copied back into Redis by an attacker is refused', async () => {
        const browser = new Browser(base, COOKIE);
        await browser.request('POST', '/login', { user: 'dr.mallory-victim' });
        const sid = browser.sessionId();
        const before = new Set((await opened.keys!()).map(({ key }) => key));
        const sessionKeys = [...before].filter((key) => key.startsWith('phc:e:session-token:'));
        const saved = new Map<string, Buffer>();
        for (const key of sessionKeys) {
          const value = await opened.commands!.get(key);
          if (value !== null) saved.set(key, value);
        }
        assert.ok(saved.size > 0, 'the ciphertext was copied before logout');
        assert.equal((await browser.request('POST', '/logout')).status, 204);
        for (const [key, value] of saved) await opened.commands!.set(key, value, 600_000, false);
        assert.equal(
          await store.sessions.get(sid),
          undefined,
          'the purge marker refuses the replayed ciphertext',
        );
        assert.equal((await browser.request('GET', '/me')).status, 401);
      });

      test('PHI-SESSION-02 touch extends the TTL, never past the class cap', async () => {
        const sid = `touch-${backend}-session`;
        const shortCookie = { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000).toISOString() };
        await store.sessions.set(sid, { subject: 'dr.touch', cookie: shortCookie });
        const sessionKeys = async () =>
          (await opened.keys!()).filter(({ key }) => key.startsWith('phc:e:session-token:'));
        const before = new Map((await sessionKeys()).map(({ key, pttl }) => [key, pttl]));
        const longCookie = {
          originalMaxAge: 86_400_000,
          expires: new Date(Date.now() + 86_400_000).toISOString(),
        };
        await store.sessions.touch(sid, { subject: 'ignored', cookie: longCookie });
        const touched = (await sessionKeys()).filter(
          ({ key }) => (before.get(key) ?? 0) <= 60_000 && before.has(key),
        );
        const grown = touched.filter(({ key, pttl }) => pttl > before.get(key)!);
        assert.equal(grown.length, 1, 'exactly the touched session got a longer TTL');
        assert.ok(
          grown[0]!.pttl > 60_000 && grown[0]!.pttl <= SESSION_CAP_MS,
          'capped by the idle timeout and class',
        );
        assert.equal((await store.sessions.get(sid))?.subject, 'dr.touch', 'a touch saves no changes');
      });
    }
  });
}
