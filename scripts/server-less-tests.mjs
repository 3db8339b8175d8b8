// Prints the compiled test files that start no Redis server, one path a line, relative to the working directory.
// A test file starts servers only through test/harness/redis.ts, so a file is server-less when nothing it imports,
// directly or through other test modules, is that harness. Reads the build (what `node --test` runs), where type-only
// imports are already gone. Exits 1 when the build is missing or nothing is selected, so a broken selection cannot
// pass as a green run.
//
//   node scripts/server-less-tests.mjs [build/test]
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const testRoot = resolve(process.argv[2] ?? join('build', 'test'));
const harness = join(testRoot, 'harness', 'redis.js');

if (!existsSync(harness)) {
  process.stderr.write(
    `server-less-tests: ${relative('.', harness)} not found: run \`npm run build\` first\n`,
  );
  process.exit(1);
}

/** Relative specifiers of `import ... from '…'`, `export ... from '…'`, `import '…'` and `import('…')`. */
function relativeImports(file) {
  const source = readFileSync(file, 'utf8');
  const specifiers = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;
  for (const match of source.matchAll(pattern)) specifiers.push(resolve(dirname(file), match[2]));
  return specifiers;
}

const reachesHarness = new Map();
function needsRedis(file) {
  if (file === harness) return true;
  const known = reachesHarness.get(file);
  if (known !== undefined) return known;
  reachesHarness.set(file, false); // an import cycle adds nothing new
  const verdict = existsSync(file) && relativeImports(file).some(needsRedis);
  reachesHarness.set(file, verdict);
  return verdict;
}

const testFiles = readdirSync(testRoot, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith('.test.js'))
  .map((entry) => join(entry.parentPath ?? entry.path, entry.name))
  .sort();
const selected = testFiles.filter((file) => !needsRedis(file));

if (selected.length === 0) {
  process.stderr.write(
    `server-less-tests: none of the ${testFiles.length} test files under ${relative('.', testRoot)} is server-less\n`,
  );
  process.exit(1);
}
process.stderr.write(
  `server-less-tests: ${selected.length} of ${testFiles.length} test files start no Redis server\n`,
);
process.stdout.write(`${selected.map((file) => relative('.', file)).join('\n')}\n`);
