import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('the published package', () => {
  let files: Set<string>;
  before(async () => {
    // --ignore-scripts: prepack would delete and rebuild build/ under the other tests' feet.
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: root,
      timeout: 60_000,
    });
    const [pack] = JSON.parse(stdout) as { files: { path: string }[] }[];
    files = new Set(pack!.files.map((file) => file.path));
  });

  test('ships LICENSE with the full Apache-2.0 text that package.json names', async () => {
    const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { license: string };
    assert.equal(manifest.license, 'Apache-2.0');
    assert.ok(files.has('LICENSE'));
    const license = await readFile(join(root, 'LICENSE'), 'utf8');
    assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
    assert.match(license, /9\. Accepting Warranty or Additional Liability\./);
  });

  test('every source map ships with the sources it names', async () => {
    const maps = [...files].filter((path) => path.endsWith('.js.map'));
    assert.ok(maps.length > 0, 'the build has source maps');
    for (const map of maps) assert.ok(files.has(map.replace(/\.map$/, '')), `${map} has its .js`);
    for (const map of maps) {
      const { sources } = JSON.parse(await readFile(join(root, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const path = normalize(join(dirname(map), source));
        assert.ok(files.has(path), `${map} names ${path}, which the package does not ship`);
      }
    }
  });
});
