import { readFile } from 'node:fs/promises';

/** The installed package's version. package.json always ships; it sits three levels above build/src/cli/. */
export async function packageVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version?: unknown;
  };
  if (typeof manifest.version !== 'string') throw new TypeError('package.json has no version');
  return manifest.version;
}
