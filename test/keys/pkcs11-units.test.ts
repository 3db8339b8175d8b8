import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { SerialQueue } from '../../src/keys/providers/pkcs11-serial.js';
import { kidOf, parsePkcs11Uri, versionOfKid } from '../../src/keys/providers/pkcs11-uri.js';

describe('PKCS#11 key URIs', () => {
  test('parses token, object, module path and an env or file PIN source', () => {
    const parsed = parsePkcs11Uri(
      'pkcs11:token=My%20HSM;object=phicache-cache?module-path=/opt/hsm/lib.so&pin-source=file:///run/pin',
    );
    assert.deepEqual(parsed, {
      token: 'My HSM',
      object: 'phicache-cache',
      modulePath: '/opt/hsm/lib.so',
      pinSource: { kind: 'file', path: '/run/pin' },
    });
  });

  test('refuses a PIN value, a relative module path, unknown or repeated attributes', () => {
    for (const uri of [
      'pkcs11:token=t;object=o?module-path=/m.so&pin-value=1234',
      'pkcs11:token=t;object=o?module-path=m.so&pin-source=env:PIN',
      'pkcs11:token=t;object=o;color=red?module-path=/m.so&pin-source=env:PIN',
      'pkcs11:token=t;token=u;object=o?module-path=/m.so&pin-source=env:PIN',
      'pkcs11:token=t;object=o?module-path=/m.so&pin-source=https://pin',
      'pkcs11:token=t?module-path=/m.so&pin-source=env:PIN',
    ]) {
      assert.throws(() => parsePkcs11Uri(uri), TypeError, uri);
    }
  });

  test('a kid names its token, object and version, and nothing else matches', () => {
    const kid = kidOf('tok;en', 'cache', 3);
    assert.equal(versionOfKid('tok;en', 'cache', kid), 3);
    assert.equal(versionOfKid('tok', 'cache', kid), undefined);
    assert.equal(versionOfKid('tok;en', 'cache-2', kid), undefined);
  });
});

describe('SerialQueue', () => {
  test('a result that arrives after its caller gave up goes to discard (a late data key is zeroed)', async () => {
    const queue = new SerialQueue();
    const controller = new AbortController();
    let rejected: unknown;
    let finish: (key: Buffer) => void = () => undefined;
    const started = new Promise<void>((resolveStarted) => {
      void queue
        .run(
          () =>
            new Promise<Buffer>((resolve) => {
              finish = resolve;
              resolveStarted();
            }),
          controller.signal,
          (late) => late.fill(0),
        )
        .catch((error: unknown) => {
          rejected = error;
        });
    });
    await started;
    controller.abort();
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(rejected instanceof PhiCacheError && rejected.code === 'ERR_KEY_SERVICE_UNAVAILABLE');
    const key = Buffer.alloc(32, 0xab);
    finish(key);
    await queue.drained();
    assert.deepEqual(key, Buffer.alloc(32), 'the late key was zeroed');
  });

  test('tasks run one at a time, in order', async () => {
    const queue = new SerialQueue();
    const log: string[] = [];
    const task = (name: string) => async () => {
      log.push(`${name}:start`);
      await new Promise((resolve) => setImmediate(resolve));
      log.push(`${name}:end`);
    };
    await Promise.all([queue.run(task('a')), queue.run(task('b'))]);
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end']);
  });
});
