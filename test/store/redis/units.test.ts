import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeadlineTracker } from '../../../src/runtime/deadlines.js';
import { CircuitBreaker, resolveBreakerOptions } from '../../../src/store/redis/circuit-breaker.js';
import { checkConnectionOptions, type RedisCommands } from '../../../src/store/redis/commands.js';
import { RedisStore } from '../../../src/store/redis/redis-store.js';
import { frame, tagFingerprint, unframe } from '../../../src/store/redis/tag-index.js';

describe('CircuitBreaker', () => {
  const make = (failureThreshold: number, cooldownMs: number) => {
    const clock = { now: 0 };
    const events: string[] = [];
    const breaker = new CircuitBreaker(
      resolveBreakerOptions({ failureThreshold, cooldownMs }),
      () => clock.now,
      {
        opened: (failures) => events.push(`open ${failures}`),
        closed: (openMs) => events.push(`close ${openMs}`),
      },
    );
    return { breaker, clock, events };
  };

  test('opens after N consecutive failures; a success in between resets the count', () => {
    const { breaker, events } = make(3, 1000);
    breaker.failure();
    breaker.failure();
    breaker.success();
    breaker.failure();
    breaker.failure();
    assert.equal(breaker.state, 'closed');
    breaker.failure();
    assert.equal(breaker.state, 'open');
    assert.equal(breaker.allow(), false);
    assert.deepEqual(events, ['open 3']);
  });

  test('after the cool-down exactly one probe passes; its failure reopens, its success closes', () => {
    const { breaker, clock, events } = make(1, 1000);
    breaker.failure();
    clock.now = 999;
    assert.equal(breaker.allow(), false);
    clock.now = 1000;
    assert.equal(breaker.allow(), true);
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.allow(), false, 'a second caller waits for the probe');
    breaker.failure();
    assert.equal(breaker.state, 'open');
    clock.now = 1500;
    assert.equal(breaker.allow(), false, 'the cool-down starts again from the failed probe');
    clock.now = 2000;
    assert.equal(breaker.allow(), true);
    breaker.success();
    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.allow(), true);
    assert.deepEqual(events, ['open 1', 'close 2000']);
  });

  test('options are validated and frozen', () => {
    for (const bad of [
      { failureThreshold: 0 },
      { failureThreshold: 1.5 },
      { cooldownMs: 5 },
      { cooldownMs: Number.NaN },
    ]) {
      assert.throws(() => resolveBreakerOptions(bad), RangeError);
    }
    assert.ok(Object.isFrozen(resolveBreakerOptions()));
  });
});

describe('DeadlineTracker', () => {
  test('one sweep rejects exactly the commands past their deadline; settled ones are forgotten', async () => {
    const clock = { now: 0 };
    const tracker = new DeadlineTracker(
      100,
      60_000,
      ({ command, elapsedMs }) => new Error(`${command} ${elapsedMs}`),
      () => clock.now,
    );
    const never = new Promise<never>(() => {});
    const first = tracker.track('GET', never);
    clock.now = 50;
    const second = tracker.track('SET', never);
    const answered = tracker.track('DEL', Promise.resolve(1));
    assert.equal(await answered, 1);
    assert.equal(tracker.size, 2);
    clock.now = 100;
    tracker.sweep();
    await assert.rejects(first, /^Error: GET 100$/);
    assert.equal(tracker.size, 1);
    clock.now = 149;
    tracker.sweep();
    assert.equal(tracker.size, 1);
    clock.now = 150;
    tracker.sweep();
    await assert.rejects(second, /^Error: SET 100$/);
    assert.equal(tracker.size, 0);
  });

  test('a late answer after the deadline changes nothing; the timer stops when nothing is in flight', async () => {
    let answer: (value: string) => void = () => {};
    const late = new Promise<string>((resolve) => {
      answer = resolve;
    });
    const tracker = new DeadlineTracker(20, 5, () => new Error('late'));
    await assert.rejects(tracker.track('GET', late), /late/);
    answer('too late');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(tracker.size, 0);
  });
});

describe('RedisStore options', () => {
  const commands = { get: async () => null } as unknown as RedisCommands;

  test('validated once with RangeError or TypeError, then frozen', () => {
    assert.throws(() => new RedisStore(undefined as unknown as RedisCommands), TypeError);
    for (const bad of [
      { commandTimeoutMs: 0 },
      { commandTimeoutMs: 60_001 },
      { commandTimeoutMs: 100, sweepIntervalMs: 101 },
      { tagIndexShards: 0 },
      { tagIndexShards: 1025 },
      { maxEntryBytes: -1 },
      { purgeConcurrency: 2.5 },
      { breaker: { failureThreshold: 0 } },
    ]) {
      assert.throws(() => new RedisStore(commands, bad), RangeError, JSON.stringify(bad));
    }
    const store = new RedisStore(commands, { commandTimeoutMs: 300 });
    assert.ok(Object.isFrozen(store.options));
    assert.equal(store.options.sweepIntervalMs, 30);
    assert.equal(store.options.tagIndexShards, 8);
  });

  test('a value over maxEntryBytes is refused with ERR_VALUE_TOO_LARGE before any command', async () => {
    const store = new RedisStore(commands, { maxEntryBytes: 10 });
    await assert.rejects(store.set('phc:e:k', Buffer.alloc(11), { ttlMs: 1000 }), {
      code: 'ERR_VALUE_TOO_LARGE',
    });
  });

  test('connection options: exactly one of url, cluster and sentinel, with valid addresses', () => {
    assert.throws(() => checkConnectionOptions({}), TypeError);
    assert.throws(
      () => checkConnectionOptions({ url: 'redis://a', cluster: { seeds: [{ host: 'a', port: 1 }] } }),
      TypeError,
    );
    assert.throws(() => checkConnectionOptions({ url: 'http://a' }), TypeError);
    assert.throws(
      () => checkConnectionOptions({ cluster: { seeds: [{ host: 'a', port: 70_000 }] } }),
      RangeError,
    );
    assert.throws(
      () => checkConnectionOptions({ sentinel: { name: '', sentinels: [{ host: 'a', port: 1 }] } }),
      TypeError,
    );
    assert.throws(() => checkConnectionOptions({ url: 'redis://a', connectTimeoutMs: 0 }), RangeError);
    assert.deepEqual(checkConnectionOptions({ url: 'rediss://a' }), { connectTimeoutMs: 5_000 });
  });
});

describe('RedisStore frame', () => {
  test('a value framed with its tags and scores unframes to the same bytes; foreign values pass whole', () => {
    const value = Buffer.from('sealed envelope');
    for (const tags of [[], ['phc:t:a'], ['phc:t:a', 'phc:t:b', 'phc:t:c']]) {
      const framed = frame(
        value,
        tags,
        [1_700_000_060_000, 1_700_000_060_001, 2 ** 52].slice(0, tags.length),
      );
      assert.equal(framed.length, 3 + 16 * tags.length + value.length);
      assert.deepEqual(unframe(framed), value);
      for (const [i, tag] of tags.entries()) {
        assert.deepEqual(framed.subarray(3 + 16 * i, 11 + 16 * i), tagFingerprint(tag));
      }
    }
    const foreign = Buffer.from('not ours');
    assert.equal(unframe(foreign), foreign);
    const truncated = Buffer.from([0xf2, 0, 2, 1, 2, 3]);
    assert.equal(unframe(truncated), truncated);
  });
});
