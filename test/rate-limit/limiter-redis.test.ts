import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { rateLimitMiddleware } from '../../src/rate-limit/middleware.js';
import { RateLimiter } from '../../src/rate-limit/rate-limiter.js';
import { RedisCounters } from '../../src/rate-limit/redis-counters.js';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { scanKeys } from '../../src/store/redis/scan.js';
import { kill, type PrivateRedis, pause, resume, sharedRedis, startRedis } from '../harness/redis.js';
import { listen } from '../session/http-client.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from '../store/redis/bindings.js';

const SECRET = Buffer.alloc(32, 7);

async function counterKeys(commands: RedisCommands): Promise<{ key: string; pttl: number }[]> {
  const found: { key: string; pttl: number }[] = [];
  for await (const { key, node } of scanKeys(commands, 'phc:r:*')) {
    found.push({ key: key.toString('latin1'), pttl: await node.pttl(key) });
  }
  return found;
}

for (const binding of BINDING_NAMES)
  describe(`rate limiter on a Redis Cluster (${binding})`, () => {
    let commands: RedisCommands;
    before(async () => {
      commands = await BINDINGS[binding](connectionOptions(await sharedRedis('cluster')));
    });
    after(() => commands.close());

    for (const algorithm of ['fixed', 'sliding'] as const) {
      test(`${algorithm} window: exact under 2,000 concurrent requests on one key`, async () => {
        const limiter = new RateLimiter({
          store: new RedisCounters(commands, { commandTimeoutMs: 10_000 }),
          name: `exact-${algorithm}-${binding}`,
          limit: 500,
          windowMs: 600_000,
          algorithm,
          whenStoreDown: 'closed',
          secret: SECRET,
        });
        const identity = `203.0.113.7-${algorithm}`;
        const results = await Promise.all(Array.from({ length: 2_000 }, () => limiter.consume(identity)));
        const count = (outcome: string) => results.filter((result) => result.outcome === outcome).length;
        assert.equal(count('allowed'), 500);
        assert.equal(count('limited'), 1_500);
        assert.equal(count('store-unavailable'), 0);
        const remaining = results.flatMap((result) =>
          result.outcome === 'allowed' ? [result.remaining] : [],
        );
        assert.deepEqual(
          remaining.sort((a, b) => a - b),
          Array.from({ length: 500 }, (_, i) => i),
          'each allowed request got its own place in the window',
        );
        const keys = (await counterKeys(commands)).filter(({ key }) => key === limiter.keyOf(identity));
        assert.equal(keys.length, 1, 'one key per identity');
        assert.ok(keys[0]!.pttl > 0 && keys[0]!.pttl <= 600_000, 'the counter expires within one window');
        assert.ok(!keys[0]!.key.includes('203.0.113.7'), 'the identity is hashed');
      });
    }

    test('a counter stripped of its TTL gets it back on the next request', async () => {
      const limiter = new RateLimiter({
        store: new RedisCounters(commands),
        name: 'persisted',
        limit: 5,
        windowMs: 60_000,
        whenStoreDown: 'closed',
        secret: SECRET,
      });
      await limiter.consume('user-42');
      const key = limiter.keyOf('user-42');
      // PERSIST through a script on the key's own slot, as an operator's mistake would.
      await commands.eval("return redis.call('PERSIST', KEYS[1])", [key], []);
      assert.equal(await commands.eval("return redis.call('PTTL', KEYS[1])", [key], []), -1);
      await limiter.consume('user-42');
      const pttl = Number(await commands.eval("return redis.call('PTTL', KEYS[1])", [key], []));
      assert.ok(pttl > 0 && pttl <= 60_000);
    });
  });

describe('rate limiter when Redis stops', () => {
  let redis: PrivateRedis;
  let commands: RedisCommands;
  let server: Server;
  let base: string;
  const limiters = new Map<'open' | 'closed', RateLimiter>();

  before(async () => {
    redis = await startRedis('plain');
    commands = await nodeRedisCommands(connectionOptions(redis));
    for (const whenStoreDown of ['open', 'closed'] as const) {
      limiters.set(
        whenStoreDown,
        new RateLimiter({
          store: new RedisCounters(commands, { commandTimeoutMs: 100 }),
          name: `down-${whenStoreDown}`,
          limit: 1,
          windowMs: 60_000,
          whenStoreDown,
          secret: SECRET,
        }),
      );
    }
    const open = rateLimitMiddleware(limiters.get('open')!);
    const closed = rateLimitMiddleware(limiters.get('closed')!);
    server = createServer((request, response) => {
      const middleware = request.url === '/open' ? open : closed;
      middleware(request, response, () => response.writeHead(200).end('served'));
    });
    base = await listen(server);
  });
  after(async () => {
    server.close();
    await commands.close().catch(() => {});
    await redis.stop();
  });

  test('before the outage the limit applies: 200, then 429 with Retry-After', async () => {
    for (const path of ['/open', '/closed']) {
      assert.equal((await fetch(`${base}${path}`)).status, 200);
      const limited = await fetch(`${base}${path}`);
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    }
  });

  test('SIGSTOP: fail-open serves, fail-closed answers 503, neither answers 429', async () => {
    pause(redis.nodes[0]!);
    try {
      const open = await limiters.get('open')!.consume('198.51.100.1');
      assert.equal(open.outcome, 'store-unavailable');
      assert.equal(open.outcome === 'store-unavailable' && open.allowed, true);
      const closed = await limiters.get('closed')!.consume('198.51.100.1');
      assert.equal(closed.outcome === 'store-unavailable' && closed.allowed, false);
      // These clients were limited before the outage: a store error must not read as that limit.
      const served = await fetch(`${base}/open`);
      assert.equal(served.status, 200);
      assert.equal(served.headers.get('ratelimit'), null, 'no count is claimed when none was taken');
      const refused = await fetch(`${base}/closed`);
      assert.equal(refused.status, 503);
      assert.equal(
        ((await refused.json()) as { error: { code: string } }).error.code,
        'RATE_LIMIT_UNAVAILABLE',
      );
    } finally {
      resume(redis.nodes[0]!);
    }
  });

  test('killed: the same answers, at once', async () => {
    kill(redis.nodes[0]!);
    assert.equal((await fetch(`${base}/open`)).status, 200);
    assert.equal((await fetch(`${base}/closed`)).status, 503);
  });
});
