import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import { MemoryCounters } from '../../src/rate-limit/memory-counters.js';
import { fastifyRateLimit, rateLimitMiddleware } from '../../src/rate-limit/middleware.js';
import { RateLimiter } from '../../src/rate-limit/rate-limiter.js';
import { listen } from '../session/http-client.js';

const SECRET = Buffer.alloc(32, 9);

function loginLimiter(clock: { now: number }): RateLimiter {
  return new RateLimiter({
    store: new MemoryCounters(),
    name: 'login',
    limit: 3,
    windowMs: 60_000,
    whenStoreDown: 'open',
    secret: SECRET,
    clock: () => clock.now,
  });
}

/** Three allowed requests with counting-down headers, then 429 with Retry-After; a new window allows again. */
async function expectLimit(base: string, clock: { now: number }): Promise<void> {
  for (const remaining of [2, 1, 0]) {
    const response = await fetch(`${base}/login`, { method: 'POST' });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('ratelimit-policy'), '"login";q=3;w=60');
    assert.equal(response.headers.get('ratelimit'), `"login";r=${remaining};t=60`);
  }
  clock.now += 20_000;
  const limited = await fetch(`${base}/login`, { method: 'POST' });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('retry-after'), '40');
  assert.equal(limited.headers.get('ratelimit'), '"login";r=0;t=40');
  assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'RATE_LIMITED');
  clock.now += 40_000;
  assert.equal(
    (await fetch(`${base}/login`, { method: 'POST' })).status,
    204,
    'the next window starts afresh',
  );
}

describe('rate limit middleware over HTTP', () => {
  test('Express: RateLimit-Policy, RateLimit and Retry-After per client address', async () => {
    const clock = { now: 1_000_000 };
    const app = express();
    app.post('/login', rateLimitMiddleware(loginLimiter(clock)), (_req, res) => void res.status(204).end());
    const server = createServer(app);
    const base = await listen(server);
    await expectLimit(base, clock);
    server.close();
  });

  test('Fastify: the same headers and answers from an onRequest hook', async () => {
    const clock = { now: 1_000_000 };
    const app = Fastify();
    app.post('/login', { onRequest: fastifyRateLimit(loginLimiter(clock)) }, async (_request, reply) =>
      reply.code(204).send(),
    );
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    await expectLimit(base, clock);
    await app.close();
  });
});

describe('memory counters', () => {
  test('sliding window: a slot frees when the oldest counted request is a window old, not at a boundary', async () => {
    const clock = { now: 0 };
    const limiter = new RateLimiter({
      store: new MemoryCounters(),
      name: 'sliding',
      limit: 2,
      windowMs: 10_000,
      algorithm: 'sliding',
      whenStoreDown: 'closed',
      secret: SECRET,
      clock: () => clock.now,
    });
    assert.equal((await limiter.consume('u')).outcome, 'allowed');
    clock.now = 6_000;
    assert.equal((await limiter.consume('u')).outcome, 'allowed');
    clock.now = 9_000;
    const limited = await limiter.consume('u');
    assert.equal(limited.outcome, 'limited');
    assert.equal(limited.outcome === 'limited' && limited.retryAfterMs, 1_000);
    clock.now = 10_000;
    assert.equal((await limiter.consume('u')).outcome, 'allowed', 'the first request left the window');
    assert.equal((await limiter.consume('u')).outcome, 'limited', 'the one at 6 s still counts');
  });

  test('identities are counted apart and bounded in number', async () => {
    const counters = new MemoryCounters({ maxKeys: 100 });
    const limiter = new RateLimiter({
      store: counters,
      name: 'bounded',
      limit: 1,
      windowMs: 60_000,
      whenStoreDown: 'closed',
      secret: SECRET,
    });
    for (let i = 0; i < 1_000; i += 1)
      assert.equal((await limiter.consume(`10.0.${i >> 8}.${i & 255}`)).outcome, 'allowed');
    assert.ok(counters.size <= 100);
  });

  test('options are checked once: no default for the outage choice, a short secret or a bad window is refused', () => {
    const base = { store: new MemoryCounters(), name: 'x', limit: 1, windowMs: 60_000, secret: SECRET };
    assert.throws(() => new RateLimiter({ ...base } as never), TypeError);
    assert.throws(
      () => new RateLimiter({ ...base, whenStoreDown: 'open', secret: Buffer.alloc(8) }),
      TypeError,
    );
    assert.throws(() => new RateLimiter({ ...base, whenStoreDown: 'open', windowMs: 10 }), RangeError);
    assert.throws(() => new RateLimiter({ ...base, whenStoreDown: 'open', name: 'Login{x}' }), TypeError);
  });
});
