import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built binary, as `npx phicache` runs it: build/test/cli/ -> build/src/cli/main.js. */
const mainPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    // The timeout only stops a CLI that hangs; it is no measure of speed (a loaded machine starts node slowly).
    const options = { timeout: 60_000, env: { ...process.env, ...env } };
    execFile(process.execPath, [mainPath, ...args], options, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ exitCode: error === null ? 0 : (error.code as number), stdout, stderr });
    });
  });
}
