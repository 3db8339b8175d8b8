import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on a free port; resolves with the base URL. */
export function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

/** A tiny cookie jar over fetch: keeps the one session cookie it is told about. */
export class Browser {
  cookie: string | undefined;
  readonly setCookies: string[] = [];

  constructor(
    readonly base: string,
    readonly cookieName: string,
  ) {}

  async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.cookie !== undefined) headers.cookie = this.cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.base}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    for (const line of response.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair] = line.split(';');
      if (pair?.startsWith(`${this.cookieName}=`)) this.cookie = pair;
    }
    return response;
  }

  /** The raw session id inside the signed cookie (`s:<id>.<signature>` for express-session, `<id>.<signature>` for Fastify). */
  sessionId(): string {
    const value = decodeURIComponent(this.cookie!.slice(this.cookieName.length + 1));
    return value.replace(/^s:/, '').replace(/\.[^.]+$/, '');
  }
}
