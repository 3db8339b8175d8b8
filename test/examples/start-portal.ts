import { type ChildProcess, spawn } from 'node:child_process';

const server = new URL('../../examples/patient-portal/server.js', import.meta.url);

export interface Portal {
  child: ChildProcess;
  url: string;
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
}

/**
 * Starts the built example on Redis with `env` added (NODE_ENV=development unless `env` says otherwise), on a free
 * port; resolves with its URL once it listens, rejects with its output if it exits or does not start in 10 s.
 */
export async function startPortal(
  env: Record<string, string>,
  from: { script: URL; args: readonly string[]; store: string } = {
    script: server,
    args: [],
    store: 'redis',
  },
): Promise<Portal> {
  const child = spawn(process.execPath, [from.script.pathname, ...from.args], {
    env: { ...process.env, PORT: '0', NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`portal did not start: ${out}`)), 10_000);
    const collect = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/\S+) \(cache store: (\w+)\)/.exec(out);
      if (match && match[2] === from.store) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`portal exited with ${code}: ${out}`));
    });
  });
  return { child, url, output: () => out };
}

/** Logs in through `POST /login` and returns the session cookie (`name=value`) to send back. */
export async function loginCookie(url: string, tenant: string, user: string): Promise<string> {
  const response = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant, user }),
  });
  if (response.status !== 204) throw new Error(`login answered ${response.status}`);
  const cookie = response.headers
    .getSetCookie()
    .map((line) => line.split(';')[0]!)
    .find((pair) => pair.startsWith('portal.sid='));
  if (cookie === undefined) throw new Error('login set no session cookie');
  return cookie;
}
