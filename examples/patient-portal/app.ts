import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  type AccessContext,
  isPhiCacheError,
  type PhiCache,
  type PhiCacheErrorCode,
  PolicyDeniedError,
} from 'phicache';

/**
 * The patient portal's HTTP contract, kept stable:
 *   PUT    /tenants/:tenant/patients/:id/summary              cache a lab summary (201), header x-user;
 *                                                              ?ttlSeconds=N asks for a TTL (403 over the cap)
 *   GET    /tenants/:tenant/patients/:id/summary              the cached summary (200) or 404, header x-user
 *   POST   /tenants/:tenant/patients/:id/events/lab-corrected purge that patient's cached views (204)
 *   DELETE /sessions/:user                                    purge that user's scope (204)
 * The portal only uses phicache as any application would; every rule lives in the policy. A client's bad request
 * or value is a 4xx; 503 is kept for what the client cannot fix (key service, store or audit down).
 */
const SUMMARY = /^\/tenants\/([^/]+)\/patients\/([^/]+)\/summary$/;
const LAB_CORRECTED = /^\/tenants\/([^/]+)\/patients\/([^/]+)\/events\/lab-corrected$/;
const SESSION = /^\/sessions\/([^/]+)$/;
const MAX_BODY_BYTES = 64 * 1024;

/** The library's refusals of the value itself: the client sent something that cannot be cached, so retrying is futile. */
const VALUE_REFUSALS: Partial<Record<PhiCacheErrorCode, number>> = {
  ERR_VALUE_TOO_LARGE: 413,
  ERR_VALUE_NOT_SERIALIZABLE: 422,
};

export function createPortalServer(cache: PhiCache): Server {
  // DELETE /sessions/:user names no tenant, so the portal remembers the tenants it served to purge in each.
  const tenants = new Set<string>();

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://portal');
    const path = url.pathname;
    const user = header(request, 'x-user');
    const summaryPath = SUMMARY.exec(path);
    const labCorrected = LAB_CORRECTED.exec(path);
    const session = SESSION.exec(path);

    if (summaryPath !== null && (request.method === 'PUT' || request.method === 'GET')) {
      const [tenant, patientId] = [decode(summaryPath[1]!), decode(summaryPath[2]!)];
      if (user === undefined)
        return reply(response, 400, { error: { code: 'MISSING_USER', message: 'x-user header required' } });
      tenants.add(tenant);
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
      const ctx = { tenant, principal: user ?? 'lab-system', purpose: 'lab-result-corrected' };
      await cache.purgeTag(ctx, 'patient', patientId);
      return reply(response, 204);
    }

    if (session !== null && request.method === 'DELETE') {
      const sessionUser = decode(session[1]!);
      const only = header(request, 'x-tenant');
      for (const tenant of only === undefined ? tenants : [only]) {
        await cache.purgeScope({ tenant, principal: sessionUser, purpose: 'logout' }, { user: sessionUser });
      }
      return reply(response, 204);
    }

    return reply(response, 404, { error: { code: 'NOT_FOUND' } });
  }

  return createServer((request, response) => {
    route(request, response).catch((error: unknown) => {
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
