import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AccessContext, MAX_CONTEXT_FIELD_LENGTH } from '../../src/access.js';
import type { PhiCache } from '../../src/cache.js';
import { PolicyDeniedError } from '../../src/errors.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const summary = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
const fields = ['tenant', 'user', 'session', 'principal', 'purpose'] as const;
type Field = (typeof fields)[number];

/** A marker that must never show in an error: the value is caller input and could be anything. */
const marker = 'MRN77001234';

/**
 * Characters a context field may not hold, by name: line breaks and other controls (C0, DEL, C1), format characters
 * (bidi override, zero-width space, byte order mark), line and paragraph separators, an unpaired surrogate.
 */
const forbidden: Record<string, string> = {
  'line feed': '\n',
  'carriage return': '\r',
  tab: '\t',
  nul: '\0',
  escape: '\x1b',
  delete: '\x7f',
  'next line (C1)': '\u0085',
  'line separator': '\u2028',
  'paragraph separator': '\u2029',
  'right-to-left override': '\u202e',
  'zero-width space': '\u200b',
  'byte order mark': '\ufeff',
  'lone high surrogate': '\ud800',
  'lone low surrogate': '\udc00',
};

/** Every public entry point that takes a context, with a context the test chooses. */
const operations: Record<string, (cache: PhiCache, ctx: AccessContext) => Promise<unknown>> = {
  get: (cache, ctx) => cache.get(summary, ctx),
  set: (cache, ctx) => cache.set(summary, { hba1c: 7.9 }, ctx),
  getOrSet: (cache, ctx) => cache.getOrSet(summary, ctx, () => ({ hba1c: 7.9 })),
  delete: (cache, ctx) => cache.delete(summary, ctx),
  purgeTag: (cache, ctx) => cache.purgeTag(ctx, 'patient', 'MRN00482913'),
  purgeScope: (cache, ctx) => cache.purgeScope(ctx, { user: 'dr.ada' }),
  purgeTenant: (cache, ctx) => cache.purgeTenant(ctx),
};

const withField = (field: Field, value: string): AccessContext => ({
  ...clinician,
  session: 's-1',
  [field]: value,
});

/** A RangeError that names the field and nothing of the value. */
function refusedFor(field: Field, value: string) {
  return (error: unknown) => {
    assert.ok(error instanceof RangeError, `expected a RangeError, got ${String(error)}`);
    assert.match(error.message, new RegExp(`\\bfield ${field}\\b`));
    assert.ok(!error.message.includes(marker), 'the message does not echo the value');
    assert.ok(!error.message.includes(value), 'the message does not echo the value');
    return true;
  };
}

describe('tenant, user, session, principal and purpose are bounded before they reach a record or a name', () => {
  for (const field of fields) {
    test(`${field}: over ${MAX_CONTEXT_FIELD_LENGTH} characters is a RangeError naming the field, on every operation, and nothing is recorded or stored`, async () => {
      const t = await makeCache();
      const value = marker + 'x'.repeat(MAX_CONTEXT_FIELD_LENGTH + 1 - marker.length);
      assert.equal(value.length, MAX_CONTEXT_FIELD_LENGTH + 1);
      const before = t.audit.events.length;
      for (const [name, run] of Object.entries(operations)) {
        await assert.rejects(run(t.cache, withField(field, value)), refusedFor(field, value), name);
      }
      assert.equal(t.audit.events.length, before, 'caller misuse is thrown before anything is audited');
      assert.equal(t.store.writes.length, 0, 'and before anything is stored');
      await t.cache.close();
    });

    test(`${field}: a control, format or separator character is a RangeError naming the field`, async () => {
      const t = await makeCache();
      const before = t.audit.events.length;
      for (const [name, character] of Object.entries(forbidden)) {
        const value = `dr${character}${marker}`;
        for (const run of [operations.get!, operations.set!, operations.purgeTenant!]) {
          await assert.rejects(run(t.cache, withField(field, value)), refusedFor(field, value), name);
        }
      }
      assert.equal(t.audit.events.length, before);
      assert.equal(t.store.writes.length, 0);
      await t.cache.close();
    });

    test(`${field}: a value that is not a string is a TypeError naming the field`, async () => {
      const t = await makeCache();
      for (const value of [42, { toString: () => 'st-marys' }, ['st-marys'], null]) {
        const ctx = { ...clinician, [field]: value } as unknown as AccessContext;
        await assert.rejects(t.cache.get(summary, ctx), (error: unknown) => {
          assert.ok(error instanceof TypeError, `expected a TypeError, got ${String(error)}`);
          assert.match(error.message, new RegExp(`\\b${field}\\b`));
          return true;
        });
      }
      await t.cache.close();
    });
  }

  test(`exactly ${MAX_CONTEXT_FIELD_LENGTH} characters of printable Unicode pass in every field`, async () => {
    const t = await makeCache();
    const long = (prefix: string) => prefix + 'é'.repeat(MAX_CONTEXT_FIELD_LENGTH - prefix.length);
    const ctx = {
      tenant: long('st-marys-'),
      user: long('dr.ada@st-marys.org '),
      session: long('😀|'),
      principal: long('spiffe://st-marys/portal/'),
      purpose: 'treatment',
    };
    for (const field of ['tenant', 'user', 'session', 'principal'] as const) {
      assert.equal(ctx[field].length, MAX_CONTEXT_FIELD_LENGTH);
    }
    await t.cache.set(summary, { hba1c: 7.9 }, ctx);
    assert.deepEqual(await t.cache.get(summary, ctx), { hba1c: 7.9 });
    const recorded = t.audit.events.at(-1);
    assert.equal(recorded?.tenant, ctx.tenant);
    assert.equal(recorded?.actor.principal, ctx.principal);
    // A purpose of the full length passes the bound, and is then refused by the policy, which does not declare it.
    const purpose = 'p'.repeat(MAX_CONTEXT_FIELD_LENGTH);
    await assert.rejects(t.cache.get(summary, { ...ctx, purpose }), PolicyDeniedError);
    await t.cache.close();
  });

  test('an empty optional field passes the bound and counts as absent: POL-CTX-01 for a PHI class', async () => {
    const t = await makeCache();
    await assert.rejects(t.cache.get(summary, { ...clinician, principal: '' }), (error: unknown) => {
      assert.ok(error instanceof PolicyDeniedError);
      assert.equal(error.rule, 'POL-CTX-01');
      return true;
    });
    await t.cache.close();
  });

  test('an empty or missing tenant is a TypeError', async () => {
    const t = await makeCache();
    for (const ctx of [{ ...clinician, tenant: '' }, { user: 'dr.ada' }, null, 'st-marys']) {
      await assert.rejects(t.cache.get(summary, ctx as unknown as AccessContext), TypeError);
    }
    await t.cache.close();
  });

  test('referenceHash bounds its tenant as a context does', async () => {
    const t = await makeCache();
    assert.match(t.cache.referenceHash(summary, 'st-marys'), /^hmac-sha256:/);
    assert.throws(() => t.cache.referenceHash(summary, `st-marys\n${marker}`), refusedFor('tenant', marker));
    assert.throws(
      () => t.cache.referenceHash(summary, 'x'.repeat(MAX_CONTEXT_FIELD_LENGTH + 1)),
      refusedFor('tenant', 'x'.repeat(MAX_CONTEXT_FIELD_LENGTH + 1)),
    );
    assert.throws(() => t.cache.referenceHash(summary, ''), TypeError);
    await t.cache.close();
  });
});
