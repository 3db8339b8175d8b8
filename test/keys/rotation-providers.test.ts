import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { type AccessContext, type EntryRef, PhiCache } from '../../src/cache.js';
import { Keyset, type KeysetOpenOptions } from '../../src/keys/keyset.js';
import { createPkcs11Kek } from '../../src/keys/providers/pkcs11.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type FakeVault, startFakeVault } from '../harness/fake-vault.js';
import { sharedRedis } from '../harness/redis.js';
import { type SoftHsm, startSoftHsm, withAdminSession } from '../harness/softhsm.js';
import { connectionOptions } from '../store/redis/bindings.js';

const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const ref = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'lab-summary', id });
const admin = { principal: 'ops:key-rotation' };
const REFRESH_MS = 50;

interface KeyService {
  readonly name: string;
  /** A keyset on this service and how to open it. */
  make(): Promise<{ keyset: Keyset; open: KeysetOpenOptions }>;
  /** Takes the old KEK version away in the service itself (disabled or archived): nothing may need it any more. */
  disable(kid: string): Promise<void>;
  close(): Promise<void>;
}

function softHsm(): KeyService {
  let hsm: SoftHsm | undefined;
  let token: Awaited<ReturnType<SoftHsm['createToken']>>;
  return {
    name: 'PKCS#11 (SoftHSM2)',
    async make() {
      hsm = await startSoftHsm();
      token = await hsm.createToken('phicache-rotation');
      await createPkcs11Kek(token.uri('rotation-cache'), { env: token.env });
      await createPkcs11Kek(token.uri('rotation-audit'), { env: token.env });
      const open = { env: token.env };
      const keyset = await Keyset.create({
        keks: { cache: token.uri('rotation-cache'), audit: token.uri('rotation-audit') },
        ...open,
      });
      return { keyset, open };
    },
    async disable(kid) {
      const label = /object=([^;?]+)/.exec(kid)?.[1];
      const version = /\/v(\d+)$/.exec(decodeURIComponent(label ?? ''))?.[1] ?? /v(\d+)$/.exec(kid)?.[1];
      assert.ok(version, `a version in ${kid}`);
      await withAdminSession(token, ({ binding, pkcs11, session, find }) => {
        pkcs11.C_SetAttributeValue(session, find(`rotation-cache/v${version}`), [
          { type: binding.CKA_DECRYPT, value: false },
        ]);
      });
    },
    async close() {
      await hsm?.stop();
    },
  };
}

function vault(): KeyService {
  let server: FakeVault | undefined;
  return {
    name: 'Vault Transit',
    async make() {
      server = await startFakeVault();
      server.createKey('rotation-cache', { derived: true });
      server.createKey('rotation-audit', { derived: true });
      const open = {
        env: { VAULT_TOKEN: server.rootToken },
        endpoints: { cache: server.endpoint, audit: server.endpoint },
      };
      const keyset = await Keyset.create({
        keks: {
          cache: 'hcvault://vault.internal:8200/transit/keys/rotation-cache',
          audit: 'hcvault://vault.internal:8200/transit/keys/rotation-audit',
        },
        ...open,
      });
      return { keyset, open };
    },
    async disable(kid) {
      const version = Number(/(\d+)$/.exec(kid)?.[1]);
      assert.ok(version > 0, `a version in ${kid}`);
      server!.setMinDecryptionVersion('rotation-cache', version + 1);
    },
    async close() {
      await server?.close();
    },
  };
}

for (const service of [softHsm(), vault()]) {
  describe(`PHI-ROTATE-01 a rotation through a keyset on ${service.name}, on Redis`, () => {
    let made: Awaited<ReturnType<KeyService['make']>>;
    before(async () => {
      made = await service.make();
    });
    after(() => service.close());

    /** An instance of the service: its own key provider session and store connection, as a separate process has. */
    const instance = async (keyset: Keyset = made.keyset, store?: CacheStore) =>
      PhiCache.create({
        service: 'rotation-test',
        policy: await loadDefaultPolicy(),
        keys: await keyset.openCache(made.open),
        store:
          store ??
          new RedisStore(await nodeRedisCommands(connectionOptions(await sharedRedis('plain'))), {
            commandTimeoutMs: 5_000,
          }),
        audit: new MemoryAuditSink(),
        keyStateRefreshMs: REFRESH_MS,
      });

    test('publish in the service, promote, rewrap, deploy the rewrapped keyset, retire; with the old version disabled in the service itself, a new instance reads every entry', async () => {
      const a = await instance();
      const b = await instance();
      try {
        for (let i = 0; i < 4; i += 1) await a.set(ref(`e${i}`), { i }, ada);
        const { from, to } = await a.rotation.rotate(admin);
        assert.notEqual(from, to);
        await new Promise((resolve) => setTimeout(resolve, REFRESH_MS + 10));
        await b.set(ref('after'), { after: true }, ada);
        for (let i = 0; i < 4; i += 1) assert.deepEqual(await b.get(ref(`e${i}`), ada), { i }, 'dual-read');
        const rewrap = await b.rotation.rewrap(admin);
        assert.equal(rewrap.failed, 0);
        assert.ok(rewrap.rewrapped >= 1);
        const listing = await a.rotation.list();
        assert.equal(listing.dekRecords[from] ?? 0, 0);
        assert.equal(
          listing.nameSecretKid,
          from,
          'the keyset still wraps its name secret under the old version',
        );

        // The keyset in use still needs the old version at every start: retiring it is refused, even forced.
        await new Promise((resolve) => setTimeout(resolve, a.rotation.boundMs));
        await assert.rejects(a.rotation.retire({ ...admin, force: true }, from), /wraps its name secret/);
        const next = await made.keyset.withNameSecretUnder(to, made.open);
        assert.equal(next.id, made.keyset.id, 'the same keyset: same key names, same audit key');
        assert.equal(next.nameSecretKid, to);
        const c = await instance(next);
        try {
          await c.rotation.retire(admin, from);
          await service.disable(from);
          const store = new RedisStore(
            await nodeRedisCommands(connectionOptions(await sharedRedis('plain'))),
          );
          try {
            await assert.rejects(
              instance(made.keyset, store),
              'an instance on the old keyset cannot start any more',
            );
          } finally {
            await store.close();
          }
          for (let i = 0; i < 4; i += 1) {
            assert.deepEqual(await c.get(ref(`e${i}`), ada), { i }, 'read with the old version disabled');
          }
          assert.deepEqual(await c.get(ref('after'), ada), { after: true });
        } finally {
          await c.close();
        }
      } finally {
        await a.close();
        await b.close();
      }
    });
  });
}
