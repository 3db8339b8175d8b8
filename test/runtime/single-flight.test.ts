import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SingleFlight } from '../../src/runtime/single-flight.js';

describe('single flight', () => {
  test('callers of one key share one call; the key is free once it settles', async () => {
    const flights = new SingleFlight<number>();
    let calls = 0;
    const call = async () => {
      calls += 1;
      const mine = calls;
      await new Promise((resolve) => setImmediate(resolve));
      return mine;
    };
    const results = await Promise.all([
      flights.run('k', call),
      flights.run('k', call),
      flights.run('j', call),
    ]);
    assert.deepEqual(results.slice(0, 2), [1, 1]);
    assert.equal(calls, 2, 'one call per key');
    assert.equal(flights.size, 0);
    assert.equal(await flights.run('k', call), 3, 'a later caller starts a new call');
  });

  test('a call past its deadline fails every caller and frees the key; its late result goes nowhere', async () => {
    const flights = new SingleFlight<string>();
    let finish!: (value: string) => void;
    const stuck = () =>
      new Promise<string>((resolve) => {
        finish = resolve;
      });
    const deadline = { ms: 20, expired: () => new RangeError('too slow') };
    const first = flights.run('k', stuck, deadline);
    const second = flights.run('k', stuck, deadline);
    await assert.rejects(first, RangeError);
    await assert.rejects(second, RangeError);
    assert.equal(flights.has('k'), false);
    assert.equal(await flights.run('k', async () => 'fresh'), 'fresh');
    finish('late');
  });

  test('a failing call fails every caller with its error', async () => {
    const flights = new SingleFlight<number>();
    const failure = new Error('source down');
    const failing = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      throw failure;
    };
    const outcomes = await Promise.allSettled([flights.run('k', failing), flights.run('k', failing)]);
    for (const outcome of outcomes) assert.equal((outcome as PromiseRejectedResult).reason, failure);
  });
});
