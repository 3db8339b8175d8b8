import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { type AccessContext, type EntryRef, PhiCache } from '../../src/cache.js';
import { Keyset } from '../../src/keys/keyset.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type PrivateRedis, startRedis } from '../harness/redis.js';
import { connectionOptions } from '../store/redis/bindings.js';
import { runCli } from './run-cli.js';

const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const ref = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'Observation', id });
const REFRESH = '50';

let redis: PrivateRedis;
let dir: string;
let env: Record<string, string>;

async function openService(keysetFile: string): Promise<PhiCache> {
  const keyset = await Keyset.read(keysetFile);
  return PhiCache.create({
    service: 'clinic-api',
    policy: await loadDefaultPolicy(),
    keys: await keyset.openCache({ env }),
    store: new RedisStore(await nodeRedisCommands(connectionOptions(redis))),
    audit: new MemoryAuditSink(),
    keyStateRefreshMs: Number(REFRESH),
  });
}

const keys = (args: readonly string[]) =>
  runCli(['keys', ...args, '--redis', redis.url, '--key-state-refresh-ms', REFRESH], env);

before(async () => {
  redis = await startRedis('plain');
  dir = await mkdtemp(join(tmpdir(), 'phicache-keyset-rewrap-'));
  env = { PHICACHE_HOME: join(dir, 'home') };
});

after(async () => {
  await redis?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('PHI-ROTATE-01 phicache keys rewrap --keyset-out: the keyset after a rotation', () => {
  test('the keyset in use keeps the old version needed until a rewrapped keyset replaces it; then the old version retires and every entry reads', async () => {
    const keyset = join(dir, 'keyset.json');
    const init = await runCli(
      ['keys', 'init', '--kek', 'local:cache', '--audit-kek', 'local:audit', '--out', keyset],
      env,
    );
    assert.equal(init.exitCode, 0, init.stderr);
    const service = await openService(keyset);
    try {
      for (const id of ['a', 'b', 'c']) await service.set(ref(id), { id }, ada);
      const rotate = await keys(['rotate', '--keyset', keyset]);
      assert.equal(rotate.exitCode, 0, rotate.stderr);
      const rewrap = await keys(['rewrap', '--keyset', keyset]);
      assert.equal(rewrap.exitCode, 0, rewrap.stderr);
      assert.match(rewrap.stdout, /name secret is still wrapped under local:cache:v1/);

      const refused = await keys(['retire', 'local:cache:v1', '--keyset', keyset]);
      assert.equal(refused.exitCode, 2);
      assert.match(refused.stderr, /wraps its name secret under local:cache:v1/);

      const next = join(dir, 'keyset-v2.json');
      const written = await keys(['rewrap', '--keyset', keyset, '--keyset-out', next, '--json']);
      assert.equal(written.exitCode, 0, written.stderr);
      assert.equal(JSON.parse(written.stdout).keysetWritten, next);
      const rewrapped = await Keyset.read(next);
      assert.equal(rewrapped.id, (await Keyset.read(keyset)).id, 'the same keyset: same key names');
      assert.equal(rewrapped.nameSecretKid, 'local:cache:v2');
      const again = await keys(['rewrap', '--keyset', keyset, '--keyset-out', next]);
      assert.equal(again.exitCode, 2, 'an existing keyset file is never overwritten');

      // Past the fleet bound since the promotion (2 × refresh + 1 s), whatever the speed of this machine.
      await new Promise((resolve) => setTimeout(resolve, 2 * Number(REFRESH) + 1000));
      const retired = await keys(['retire', 'local:cache:v1', '--keyset', next]);
      assert.equal(retired.exitCode, 0, retired.stderr);
    } finally {
      await service.close();
    }
    const deployed = await openService(join(dir, 'keyset-v2.json'));
    try {
      for (const id of ['a', 'b', 'c']) assert.deepEqual(await deployed.get(ref(id), ada), { id });
    } finally {
      await deployed.close();
    }
  });
});
