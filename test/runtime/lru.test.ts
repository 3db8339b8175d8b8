import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Lru } from '../../src/runtime/lru.js';

describe('Lru', () => {
  test('holds at most max entries and drops an entry not used since it was added first', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(3, (key) => evicted.push(key));
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3);
    assert.equal(lru.get('a'), 1, 'a read makes a the most recently used');
    lru.set('d', 4);
    assert.deepEqual(evicted, ['b']);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.size, 3);
    assert.deepEqual([...lru.values()].sort(), [1, 3, 4]);
  });

  test('a set of a held key replaces its value, marks it used and evicts nothing', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(2, (key) => evicted.push(key));
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('a', 10);
    assert.deepEqual(evicted, []);
    lru.set('c', 3);
    assert.deepEqual(evicted, ['b']);
    assert.equal(lru.get('a'), 10);
  });

  test('hot keys keep hitting while a stream of cold keys passes through', () => {
    const lru = new Lru<number, number>(1_000);
    let hits = 0;
    // Cold keys alone overflow the bound within three rounds; a memo cleared whole when full would drop the hot keys too.
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 900; i++) {
        if (lru.get(i) !== undefined) hits += 1;
        else lru.set(i, i);
      }
      for (let i = 0; i < 50; i++) lru.set(100_000 + round * 50 + i, i);
    }
    assert.equal(lru.size, 1_000);
    assert.equal(hits, 9 * 900, 'every hot read after the first round hits');
  });

  test('delete and clear drop entries without calling evicted', () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>(2, (key) => evicted.push(key));
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.delete('a'), true);
    assert.equal(lru.delete('a'), false);
    lru.clear();
    assert.equal(lru.size, 0);
    assert.deepEqual(evicted, []);
  });

  test('a hit costs no reordering: a hot key read a million times stays, and so does the order of the rest', () => {
    const lru = new Lru<string, number>(3);
    lru.set('hot', 0);
    lru.set('b', 1);
    lru.set('c', 2);
    for (let i = 0; i < 1_000_000; i++) lru.get('hot');
    assert.deepEqual(
      [...lru.entries()].map(([key]) => key),
      ['hot', 'b', 'c'],
    );
    lru.set('d', 3);
    assert.equal(lru.get('hot'), 0, 'the used key got its second chance');
    assert.equal(lru.get('b'), undefined, 'the oldest unused key went');
  });

  test('the bound is validated at construction', () => {
    for (const max of [0, -1, 1.5, Number.NaN]) assert.throws(() => new Lru(max), RangeError);
  });
});
