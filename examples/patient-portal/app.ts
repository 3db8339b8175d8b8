import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Session, SessionData } from 'express-session';
import {
  type AccessContext,
  isPhiCacheError,
  markResponseClass,
  type PhiCache,
  type PhiCacheErrorCode,
  type Policy,
  PolicyDeniedError,
  type RateLimiter,
  rateLimitMiddleware,
} from 'phicache';

declare module 'express-session' {
  interface SessionData {
    tenant: string;
    subject: string;
  }
}

/**
 * The patient portal's HTTP contract, kept stable:
 *   POST   /login                                             {"tenant","user"}: a demonstration login (no password)
 *                                                              starts a session, 204 with an HttpOnly SameSite
 *                                                              cookie; LOGIN_RATE_LIMIT attempts a minute per client
 *                                                              address, then 429 with RateLimit headers
 *   GET    /session                                           {"tenant","user"} of the session (200), else 401
 *   POST   /logout                                            ends the session and purges the user's scope (204)
 *   PUT    /tenants/:tenant/patients/:id/summary              cache a lab summary (201) as the session's user, or
 *                                                              header x-user (an identity a trusted gateway asserts);
 *                                                              ?ttlSeconds=N asks for a TTL (403 over the cap)
 *   GET    /tenants/:tenant/patients/:id/summary              the cached summary (200) or 404, same identity
 *   POST   /tenants/:tenant/patients/:id/events/lab-corrected purge that patient's cached views (204)
 *   DELETE /sessions/:user                                    the user's own session purges their scope in the
 *                                                              session's tenant (204); 401 without, 403 for another
 * The portal only uses phicache as any application would; every rule lives in the policy. A client's bad request
 * or value is a 4xx; 503 is kept for what the client cannot fix (key service, store or audit down). Responses of
 * the summary routes carry `Cache-Control: no-store`.
 */
const SUMMARY = /^\/tenants\/([^/]+)\/patients\/([^/]+)\/summary$/;
const LAB_CORRECTED = /^\/tenants\/([^/]+)\/patients\/([^/]+)\/events\/lab-corrected$/;
const SESSION = /^\/sessions\/([^/]+)$/;
/** A login's tenant and user: internal ids, as a session may hold no PHI (an email address is refused). */
const LOGIN_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_BODY_BYTES = 64 * 1024;

/** The library's refusals of the value itself: the client sent something that cannot be cached, so retrying is futile. */
const VALUE_REFUSALS: Partial<Record<PhiCacheErrorCode, number>> = {
  ERR_VALUE_TOO_LARGE: 413,
  ERR_VALUE_NOT_SERIALIZABLE: 422,
  ERR_SESSION_DATA_PHI: 422,
};

/** Connect-style middleware, as express-session's `session(...)` returns it. */
export type Middleware = (
  request: IncomingMessage,
  response: ServerResponse,
  next: (error?: unknown) => void,
) => void;

export interface PortalOptions {
  readonly policy: Policy;
  /** express-session's middleware over phicache's session store. */
  readonly sessions: Middleware;
  /** Counts `POST /login` per client address. */
  readonly loginLimiter: RateLimiter;
}

type SessionRequest = IncomingMessage & { session?: Session & Partial<SessionData> };

/** Runs a connect middleware; resolves false when it answered the request itself instead of calling next. */
function run(middleware: Middleware, request: IncomingMessage, response: ServerResponse): Promise<boolean> {
  return new Promise((resolve, reject) => {
    response.once('finish', () => resolve(false));
    middleware(request, response, (error) => (error === undefined ? resolve(true) : reject(error)));
  });
}

/** Promisifies one of express-session's callback methods. */
function sessionCall(call: (done: (error?: unknown) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => call((error) => (error ? reject(error) : resolve())));
}

export function createPortalServer(cache: PhiCache, options: PortalOptions): Server {
  const { policy, sessions, loginLimiter } = options;
  const limitLogin = rateLimitMiddleware(loginLimiter);

  async function route(request: SessionRequest, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://portal');
    const path = url.pathname;
    const summaryPath = SUMMARY.exec(path);
    const labCorrected = LAB_CORRECTED.exec(path);
    const session = SESSION.exec(path);

    if (path === '/login' && request.method === 'POST') {
      if (!(await run(limitLogin, request, response))) return;
      const body = await readJson(request);
      const { tenant, user } = (typeof body === 'object' && body !== null ? body : {}) as Record<
        string,
        unknown
      >;
      if (
        typeof tenant !== 'string' ||
        typeof user !== 'string' ||
        !LOGIN_ID.test(tenant) ||
        !LOGIN_ID.test(user)
      )
        throw new BadRequest(
          'a login is {"tenant", "user"}: internal ids of 1-64 letters, digits, ".", "_" or "-"',
        );
      await run(sessions, request, response);
      const current = request.session;
      if (current === undefined) return storeDown(response);
      // A new id at login, so a session id planted before it (session fixation) is worth nothing after.
      await sessionCall((done) => current.regenerate(done));
      request.session!.tenant = tenant;
      request.session!.subject = user;
      await sessionCall((done) => request.session!.save(done));
      return reply(response, 204);
    }

    if (path === '/session' && request.method === 'GET') {
      const login = await sessionOf(request, response);
      if (login === undefined) return reply(response, 401, { error: { code: 'NO_SESSION' } });
      return reply(response, 200, { tenant: login.tenant, user: login.user });
    }

    if (path === '/logout' && request.method === 'POST') {
      const login = await sessionOf(request, response);
      if (login !== undefined) {
        await cache.purgeScope(
          { tenant: login.tenant, principal: login.user, purpose: 'logout' },
          { user: login.user },
        );
        await sessionCall((done) => request.session!.destroy(done));
      }
      return reply(response, 204);
    }

    if (summaryPath !== null && (request.method === 'PUT' || request.method === 'GET')) {
      const [tenant, patientId] = [decode(summaryPath[1]!), decode(summaryPath[2]!)];
      // Set before anything can answer, so that every response of the route, errors included, is no-store.
      markResponseClass(policy, response, 'encrypted-phi');
      const login = await sessionOf(request, response);
      if (login !== undefined && login.tenant !== tenant)
        return reply(response, 403, {
          error: { code: 'OTHER_TENANT', message: 'the session is for another tenant' },
        });
      const user = login?.user ?? header(request, 'x-user');
      if (user === undefined)
        return reply(response, 400, {
          error: { code: 'MISSING_USER', message: 'a session or x-user header required' },
        });
      const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: patientId };
      const ctx: AccessContext = { tenant, user, principal: user, purpose: 'treatment' };
      if (request.method === 'PUT') {
        const body = await readJson(request);
        if (typeof body !== 'object' || body === null || Array.isArray(body))
          throw new BadRequest('a lab summary is a JSON object');
        const ttlSeconds = url.searchParams.get('ttlSeconds');
        const ttlMs = ttlSeconds === null ? undefined : Number(ttlSeconds) * 1000;
        if (ttlMs !== undefined && !(Number.isSafeInteger(ttlMs) && ttlMs > 0))
          throw new BadRequest('bad ttlSeconds');
        const options = { tags: { patient: patientId }, ...(ttlMs === undefined ? {} : { ttlMs }) };
        const receipt = await cache.set(ref, body, ctx, options);
        return reply(response, 201, { stored: receipt.stored, ttlMs: receipt.ttlMs, key: receipt.key });
      }
      const summary = await cache.get(ref, ctx);
      return summary === undefined
        ? reply(response, 404, { error: { code: 'MISS' } })
        : reply(response, 200, summary);
    }

    if (labCorrected !== null && request.method === 'POST') {
      const [tenant, patientId] = [decode(labCorrected[1]!), decode(labCorrected[2]!)];
      const ctx = {
        tenant,
        principal: header(request, 'x-user') ?? 'lab-system',
        purpose: 'lab-result-corrected',
      };
      await cache.purgeTag(ctx, 'patient', patientId);
      return reply(response, 204);
    }

    if (session !== null && request.method === 'DELETE') {
      const target = decode(session[1]!);
      const login = await sessionOf(request, response);
      if (login === undefined) return reply(response, 401, { error: { code: 'NO_SESSION' } });
      if (login.user !== target)
        return reply(response, 403, { error: { code: 'NOT_YOUR_SESSION', message: 'only your own scope' } });
      // The caller is the principal, and only the caller's own tenant is purged.
      await cache.purgeScope(
        { tenant: login.tenant, principal: login.user, purpose: 'logout' },
        { user: target },
      );
      return reply(response, 204);
    }

    return reply(response, 404, { error: { code: 'NOT_FOUND' } });
  }

  /** The session's login, or undefined when there is none (no cookie, expired, or the store is down). */
  async function sessionOf(
    request: SessionRequest,
    response: ServerResponse,
  ): Promise<{ tenant: string; user: string } | undefined> {
    if (request.headers.cookie === undefined) return undefined;
    await run(sessions, request, response);
    const { tenant, subject } = request.session ?? {};
    return typeof tenant === 'string' && typeof subject === 'string' ? { tenant, user: subject } : undefined;
  }

  return createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
      if (response.headersSent) return;
      if (error instanceof BadRequest)
        return reply(response, 400, { error: { code: 'BAD_REQUEST', message: error.message } });
      // The cache refuses a tenant, user or purpose it cannot bound (too long, a control character) as the caller's
      // misuse; its message names the field, never the value, so it is safe to return.
      if (error instanceof RangeError || error instanceof TypeError)
        return reply(response, 400, { error: { code: 'BAD_REQUEST', message: error.message } });
      if (error instanceof PolicyDeniedError) {
        const { code, rule, message, hint } = error;
        return reply(response, VALUE_REFUSALS[code] ?? 403, { error: { code, rule, message, hint } });
      }
      if (isPhiCacheError(error)) {
        const { code, message, hint } = error;
        return reply(response, VALUE_REFUSALS[code] ?? 503, { error: { code, message, hint } });
      }
      // Unknown errors may quote request data: log only their type, answer generically.
      console.error(`patient-portal: unexpected ${(error as Error)?.name ?? 'error'}`);
      return reply(response, 500, { error: { code: 'INTERNAL' } });
    });
  });
}

class BadRequest extends Error {}

/** express-session skips a store that announced `disconnect`: no session can start or be read meanwhile. */
function storeDown(response: ServerResponse): void {
  reply(response, 503, { error: { code: 'ERR_STORE_UNAVAILABLE', message: 'sessions are unavailable' } });
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequest('malformed path');
  }
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BadRequest('body too large');
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body is not JSON');
  }
}

function reply(response: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    response.writeHead(status).end();
    return;
  }
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
