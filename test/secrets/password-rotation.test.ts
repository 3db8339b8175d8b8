/**
 * A Redis ACL password rotated through the two-password window is picked up on reconnect without a restart, on
 * both bindings: the user has the old and the new password, the secret moves to the new one, the old one is
 * removed, the connection is killed, and the client comes back on its own with the new password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSecretSource } from '../../src/secrets/open-secret-source.js';
import {
  ACL_RULES,
  connectOptions,
  type PrivateRedis,
  RespReplyError,
  respCall,
  startRedis,
  waitFor,
} from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS } from '../store/redis/bindings.js';

describe('a rotated Redis password is read again on every reconnect (private acl server)', () => {
  let redis: PrivateRedis;
  let dir: string;
  before(async () => {
    redis = await startRedis('acl');
    dir = await mkdtemp(join(tmpdir(), 'phicache-rotation-'));
  });
  after(async () => {
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const admin = (...args: string[]) => respCall(connectOptions(redis, undefined, { admin: true }), ...args);
  const canLogIn = async (user: string, password: string) => {
    try {
      await respCall({ port: redis.nodes[0]!.port, username: user, password }, 'PING');
      return true;
    } catch (error) {
      if (error instanceof RespReplyError) return false;
      throw error;
    }
  };

  for (const binding of BINDING_NAMES) {
    test(`${binding}: old password, then the new one after CLIENT KILL, with no restart`, async () => {
      const user = `rotating-${binding}`;
      const old = randomBytes(18).toString('base64url');
      const next = randomBytes(18).toString('base64url');
      const file = join(dir, `${binding}.password`);
      await writeFile(file, `${old}\n`, { mode: 0o600 });
      await admin('ACL', 'SETUSER', user, 'reset', 'on', `>${old}`, ...ACL_RULES.split(' '));

      const commands = await BINDINGS[binding]({
        url: redis.url,
        username: user,
        password: openSecretSource(`file:${file}`),
        connectTimeoutMs: 5_000,
      });
      try {
        assert.equal(await commands.set('phc:rotation', Buffer.from('before'), 60_000, false), true);

        // The two-password window: both work while the fleet moves to the new secret.
        await admin('ACL', 'SETUSER', user, `>${next}`);
        await writeFile(file, `${next}\n`, { mode: 0o600 });
        await admin('ACL', 'SETUSER', user, `<${old}`);
        assert.equal(await canLogIn(user, old), false, 'the old password is gone');
        assert.equal(await canLogIn(user, next), true);

        const killed = await admin('CLIENT', 'KILL', 'USER', user);
        assert.ok(Number(killed) >= 1, 'the client had a connection to kill');

        await waitFor(
          async () => (await commands.set('phc:rotation', Buffer.from('after'), 60_000, false)) === true,
          15_000,
          `${binding} to reconnect with the new password`,
        );
        assert.equal((await commands.get('phc:rotation'))?.toString(), 'after');
        const clients = String(await admin('CLIENT', 'LIST'));
        assert.match(
          clients,
          new RegExp(`user=${user} `),
          'the client is logged in again as the rotated user',
        );
      } finally {
        await commands.close();
      }
    });
  }

  test('a secret that cannot be read fails the start with its own error, before any connection', async () => {
    for (const binding of BINDING_NAMES) {
      await assert.rejects(
        BINDINGS[binding]({
          url: redis.url,
          username: 'phicache',
          password: openSecretSource('env:PHICACHE_TEST_UNSET_PASSWORD', { environment: {} }),
        }),
        { name: 'PhiCacheError', code: 'ERR_KEY_NOT_FOUND' },
      );
    }
  });
});
