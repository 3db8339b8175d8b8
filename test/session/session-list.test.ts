import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import { expressSessionStore } from '../../src/session/express-session-store.js';
import { RedisSessionIndex } from '../../src/session/redis-session-index.js';
import { BACKENDS, type Backend, openBackend } from './backends.js';
import { Browser, listen } from './http-client.js';

declare module 'express-session' {
  interface SessionData {
    subject: string;
  }
}

const COOKIE = 'listed.sid';
const TENANT = 'listed-sessions';
const IDLE_MS = 300_000;

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
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: 3_600_000 },
    }),
  );
  portal.post('/login', (req, res) => {
    req.session.subject = String(req.body.user);
    res.status(204).end();
  });
  // Reading the session and leaving it unchanged makes express-session touch it.
  portal.get('/me', (req, res) => {
    res.status(req.session.subject === undefined ? 401 : 200).end();
  });
  portal.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.status(204).end()));
  });
  return createServer(portal);
}

/** express-session's own callback API, as a session admin page would call it. */
function all(store: session.Store): Promise<{ subject?: string }[]> {
  return new Promise((resolve, reject) => {
    store.all!((error, sessions) => (error ? reject(error) : resolve(Object.values(sessions ?? {}))));
  });
}

function length(store: session.Store): Promise<number> {
  return new Promise((resolve, reject) => {
    store.length!((error, count) => (error ? reject(error) : resolve(count!)));
  });
}

async function subjects(store: session.Store): Promise<string[]> {
  return (await all(store)).map((data) => String(data.subject)).sort();
}

for (const backend of BACKENDS) {
  describe(`express-session all and length through phicache (${backend})`, () => {
    let opened: Backend;
    let server: Server;
    let base: string;
    let store: ReturnType<typeof expressSessionStore>;
    // The store's clock starts at the real time (express-session dates cookies by it) and moves only when told.
    let now = Date.now();

    before(async () => {
      opened = await openBackend(backend);
      store = expressSessionStore(session.Store, {
        cache: opened.cache,
        tenant: TENANT,
        idleTimeoutMs: IDLE_MS,
        clock: () => now,
        ...(opened.commands === undefined ? {} : { index: new RedisSessionIndex(opened.commands) }),
      });
      // A shared Redis may hold this tenant's sessions from an earlier run.
      await store.sessions.clear();
      server = app(store);
      base = await listen(server);
    });
    after(async () => {
      server.close();
      store.sessions.close();
      await opened.close();
    });

    test('all and length list live sessions; an idle-expired, a destroyed and a purged one drop out', async () => {
      assert.deepEqual(await subjects(store), []);
      assert.equal(await length(store), 0);

      const early = new Browser(base, COOKIE);
      assert.equal((await early.request('POST', '/login', { user: 'dr.early' })).status, 204);
      now += IDLE_MS - 60_000;
      const late = new Browser(base, COOKIE);
      assert.equal((await late.request('POST', '/login', { user: 'dr.late' })).status, 204);
      const leaving = new Browser(base, COOKIE);
      assert.equal((await leaving.request('POST', '/login', { user: 'dr.leaving' })).status, 204);
      const purged = new Browser(base, COOKIE);
      assert.equal((await purged.request('POST', '/login', { user: 'dr.purged' })).status, 204);
      assert.deepEqual(await subjects(store), ['dr.early', 'dr.late', 'dr.leaving', 'dr.purged']);
      assert.equal(await length(store), 4);

      // The first session's idle timeout passes on the store's clock; the others have a minute of it used.
      now += 120_000;
      assert.deepEqual(await subjects(store), ['dr.late', 'dr.leaving', 'dr.purged']);

      assert.equal((await leaving.request('POST', '/logout')).status, 204);
      assert.deepEqual(await subjects(store), ['dr.late', 'dr.purged']);

      // An entry removed behind the index's back (a purge of its scope through the cache) is dropped when listed.
      const hash = opened.cache.referenceHash(
        { class: 'session-token', resource: 'session', id: purged.sessionId() },
        TENANT,
      );
      await opened.cache.purgeScope({ tenant: TENANT, principal: 'ops' }, { session: hash });
      assert.deepEqual(await subjects(store), ['dr.late']);
      assert.equal(await length(store), 1);

      await new Promise<void>((resolve, reject) =>
        store.clear!((error) => (error ? reject(error) : resolve())),
      );
      assert.equal(await length(store), 0);
    });

    test('a touch keeps a session listed past the idle timeout of its login', async () => {
      const busy = new Browser(base, COOKIE);
      assert.equal((await busy.request('POST', '/login', { user: 'dr.busy' })).status, 204);
      now += IDLE_MS - 60_000;
      assert.equal((await busy.request('GET', '/me')).status, 200);
      now += 120_000;
      assert.deepEqual(await subjects(store), ['dr.busy']);
      now += IDLE_MS;
      assert.deepEqual(await subjects(store), [], 'untouched for an idle timeout, it drops out');
    });

    if (backend !== 'embedded') {
      test('on a shared store without a shared index, all and length reject rather than list one process only', async () => {
        const unindexed = expressSessionStore(session.Store, { cache: opened.cache, tenant: TENANT });
        try {
          await assert.rejects(all(unindexed), /needs a shared index/);
          await assert.rejects(length(unindexed), /needs a shared index/);
        } finally {
          unindexed.sessions.close();
        }
      });

      test('PHI-SESSION-06 the index key holds only reference hashes of session ids, and has a TTL', async () => {
        const browsers = [new Browser(base, COOKIE), new Browser(base, COOKIE)];
        for (const browser of browsers) await browser.request('POST', '/login', { user: 'dr.indexed' });
        const sids = browsers.map((browser) => browser.sessionId());
        const indexKeys = (await opened.keys!()).filter(({ key }) => key.startsWith('phc:x:'));
        assert.equal(indexKeys.length, 1, 'one index key for the tenant');
        const [{ key, pttl }] = indexKeys as [{ key: string; pttl: number }];
        assert.ok(pttl > 0 && pttl <= IDLE_MS, `the index key expires with its latest session (${pttl})`);
        for (const sid of sids) assert.ok(!key.includes(sid));
        const members = (await opened.commands!.zrange(key, 0, -1)).map((member) =>
          member.toString('latin1'),
        );
        const expected = sids.map((sid) =>
          opened.cache.referenceHash({ class: 'session-token', resource: 'session', id: sid }, TENANT),
        );
        assert.deepEqual(members.sort(), expected.sort());
        for (const member of members) {
          assert.match(member, /^hmac-sha256:/);
          for (const sid of sids) assert.ok(!member.includes(sid), 'no member holds a raw session id');
        }
      });
    }
  });
}
