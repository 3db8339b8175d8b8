import type { IncomingMessage, ServerResponse } from 'node:http';
import { rateLimitHeaders } from './headers.js';
import type { RateLimiter, RateLimitResult } from './rate-limiter.js';

export interface RateLimitMiddlewareOptions<Request> {
  /**
   * The identity a request is counted under. Default: the client address (`req.ip` where the framework sets it,
   * which honours Express's and Fastify's `trust proxy`; else the socket's remote address).
   */
  readonly identify?: (request: Request) => string | undefined;
}

const LIMITED_BODY = JSON.stringify({
  error: { code: 'RATE_LIMITED', message: 'too many requests; retry after the Retry-After delay' },
});
const UNAVAILABLE_BODY = JSON.stringify({
  error: { code: 'RATE_LIMIT_UNAVAILABLE', message: 'the rate limit cannot be checked right now' },
});

function clientAddress(request: IncomingMessage & { ip?: string }): string {
  return request.ip ?? request.socket.remoteAddress ?? 'unknown';
}

/** How a result is answered: 429 only when the limiter counted and refused; 503 when a closed limit cannot count. */
function verdict(result: RateLimitResult): { status: 429 | 503; body: string } | undefined {
  if (result.outcome === 'limited') return { status: 429, body: LIMITED_BODY };
  if (result.outcome === 'store-unavailable' && !result.allowed)
    return { status: 503, body: UNAVAILABLE_BODY };
  return undefined;
}

/**
 * Connect-style middleware, for Express and for a plain `node:http` handler: sets the RateLimit headers on every
 * response it counts and answers a refused request itself.
 */
export function rateLimitMiddleware<Request extends IncomingMessage = IncomingMessage>(
  limiter: RateLimiter,
  options: RateLimitMiddlewareOptions<Request> = {},
): (request: Request, response: ServerResponse, next: (error?: unknown) => void) => void {
  const identify = options.identify ?? clientAddress;
  return (request, response, next) => {
    limiter.consume(identify(request) ?? 'unknown').then((result) => {
      for (const [name, value] of Object.entries(rateLimitHeaders(limiter.name, result)))
        response.setHeader(name, value);
      const refusal = verdict(result);
      if (refusal === undefined) return next();
      response.writeHead(refusal.status, { 'content-type': 'application/json' }).end(refusal.body);
    }, next);
  };
}

/** The parts of a Fastify request and reply the hook uses, so phicache needs no import of fastify. */
export interface FastifyLikeRequest {
  readonly ip: string;
}
export interface FastifyLikeReply {
  header(name: string, value: string): unknown;
  code(status: number): unknown;
  type(contentType: string): unknown;
  send(payload: string): unknown;
}

/**
 * A Fastify `onRequest` hook: `fastify.addHook('onRequest', fastifyRateLimit(limiter))`, or in a route's own
 * `onRequest`. Same headers and answers as the connect middleware.
 */
export function fastifyRateLimit(
  limiter: RateLimiter,
  options: RateLimitMiddlewareOptions<FastifyLikeRequest> = {},
): (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<FastifyLikeReply | undefined> {
  const identify = options.identify ?? ((request: FastifyLikeRequest) => request.ip);
  return async (request, reply) => {
    const result = await limiter.consume(identify(request) ?? 'unknown');
    for (const [name, value] of Object.entries(rateLimitHeaders(limiter.name, result)))
      reply.header(name, value);
    const refusal = verdict(result);
    if (refusal === undefined) return undefined;
    reply.code(refusal.status);
    reply.type('application/json');
    reply.send(refusal.body);
    // Fastify's rule for an async hook that answers early: return the reply.
    return reply;
  };
}
