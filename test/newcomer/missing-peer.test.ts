import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const builtSrc = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * The built library copied to a directory with no node_modules on its path: `import('redis')` and
 * `import('ioredis')` fail to resolve there exactly as in an application that did not install them.
 */
describe('a missing optional peer dependency', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-no-peers-'));
    await cp(builtSrc, join(dir, 'src'), { recursive: true });
    await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Runs one binding in the copy and returns what it threw. */
  function tryBinding(module: string, factory: string): Promise<Record<string, string>> {
    const script = [
      `const { ${factory} } = await import('./src/store/redis/${module}');`,
      `try { await ${factory}({ url: 'redis://127.0.0.1:6379' }); console.log('{}'); }`,
      'catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, hint: e.hint })); }',
    ].join('\n');
    return new Promise((resolve, reject) => {
      execFile(
        process.execPath,
        ['--input-type=module', '-e', script],
        { cwd: dir, timeout: 20_000 },
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(JSON.parse(stdout))),
      );
    });
  }

  for (const [peer, module, factory] of [
    ['redis', 'node-redis.js', 'nodeRedisCommands'],
    ['ioredis', 'ioredis.js', 'ioredisCommands'],
  ] as const) {
    test(`${factory} without ${peer}: ERR_PEER_MISSING names the package to install`, async () => {
      const thrown = await tryBinding(module, factory);
      assert.equal(thrown.name, 'PhiCacheError');
      assert.equal(thrown.code, 'ERR_PEER_MISSING');
      assert.equal(thrown.message, `the optional peer dependency ${peer} is not installed`);
      assert.match(thrown.hint!, new RegExp(`npm install ${peer}\\b`));
      assert.doesNotMatch(thrown.hint!, /bug in phicache/);
    });
  }
});
