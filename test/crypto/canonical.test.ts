import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CanonicalPart, canonicalEncode } from '../../src/crypto/canonical.js';

const hex = (parts: readonly CanonicalPart[]): string => canonicalEncode(parts).toString('hex');
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('canonicalEncode', () => {
  it('has a pinned layout: count, then tag + uint32 BE length + bytes per part', () => {
    // The encoding is persisted inside AAD and key names: changing it makes every stored entry unreadable.
    assert.equal(
      hex(['a', 1, bytes(0xff)]),
      [
        '00000003',
        '01' + '00000001' + '61',
        '03' + '00000008' + '0000000000000001',
        '02' + '00000001' + 'ff',
      ].join(''),
    );
    assert.equal(hex([]), '00000000');
    assert.equal(hex([2 ** 53 - 1]), `00000001030000000800${'1fffffffffffff'}`);
  });

  it('is injective on tricky pairs', () => {
    const pairs: [CanonicalPart[], CanonicalPart[]][] = [
      [
        ['ab', 'c'],
        ['a', 'bc'],
      ],
      [['a:b'], ['a', 'b']],
      [['a', ''], ['a']],
      [[''], []],
      [['', ''], ['']],
      [['{tenant}x'], ['tenant', 'x']],
      [['a\0b'], ['a', 'b']],
      [['a\0'], ['a']],
      [['1'], [1]],
      [['a'], [bytes(0x61)]],
      [[0], ['']],
      [[0], [bytes(0, 0, 0, 0, 0, 0, 0, 0)]],
      [[256], [1, 0]],
      [['\u00e9'], ['e\u0301']],
      [['\u{1f600}'], ['\ufffd']],
      [[bytes(1, 0x61)], ['\u0001a']],
      [['\u0001\u0000\u0000\u0000\u0001a'], ['a']],
    ];
    for (const [a, b] of pairs) {
      assert.notEqual(hex(a), hex(b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });

  it('gives every list of up to three small parts its own encoding, and no encoding is a prefix of another', () => {
    const atoms: CanonicalPart[] = [
      '',
      'a',
      'b',
      'ab',
      ':',
      '{',
      0,
      1,
      97,
      bytes(),
      bytes(0x61),
      bytes(0, 0x61),
    ];
    const lists: CanonicalPart[][] = [[]];
    for (const x of atoms) {
      lists.push([x]);
      for (const y of atoms) {
        lists.push([x, y]);
        for (const z of atoms) lists.push([x, y, z]);
      }
    }
    const encodings = lists.map(hex);
    assert.equal(new Set(encodings).size, lists.length);
    // Prefix-freeness keeps `canonical(x) || anything` unambiguous, as in the envelope AAD.
    const sorted = [...encodings].sort();
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(!sorted[i]!.startsWith(sorted[i - 1]!), `${sorted[i - 1]} is a prefix of ${sorted[i]}`);
    }
  });

  it('refuses numbers that are not safe non-negative integers with RangeError', () => {
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, -(2 ** 31)]) {
      assert.throws(() => canonicalEncode([n]), RangeError, String(n));
    }
  });

  it('refuses parts of other types, and strings with lone surrogates, with TypeError', () => {
    for (const p of [null, undefined, true, 1n, {}, ['a']]) {
      assert.throws(() => canonicalEncode([p as unknown as CanonicalPart]), TypeError, String(p));
    }
    // Both would encode to U+FFFD and collide.
    assert.throws(() => canonicalEncode(['\ud800']), TypeError);
    assert.throws(() => canonicalEncode(['x\udc00']), TypeError);
    assert.throws(() => canonicalEncode('ab' as unknown as CanonicalPart[]), TypeError);
  });
});
