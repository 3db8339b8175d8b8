import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Policy } from '../policy/policy.js';

/**
 * Responses that carry PHI must stay out of browser caches, shared caches and CDNs (HIPAA's minimum necessary and the
 * second source document's "no-store"). `Cache-Control: no-store` tells every cache to keep nothing (RFC 9111
 * 5.2.2.5); `Pragma: no-cache` covers HTTP/1.0 intermediaries; `private` is not enough, since a browser's own cache
 * on a shared workstation is a cache too.
 */
export const NO_STORE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cache-Control': 'no-store',
  Pragma: 'no-cache',
});

/** Anything with `setHeader`: node's ServerResponse, Express's response. */
export interface HeaderTarget {
  setHeader(name: string, value: string): unknown;
}

/**
 * The cache headers for a response carrying data of `className`: no-store for a PHI class, and for a class the
 * policy does not know (an unknown class is treated as the worst case); none for a non-PHI class.
 */
export function cacheHeadersFor(policy: Policy, className: string): Readonly<Record<string, string>> {
  const dataClass = policy.dataClass(className);
  return dataClass === undefined || dataClass.phi ? NO_STORE_HEADERS : {};
}

/** Marks a response no-store (with Pragma: no-cache). Call it before the headers are sent. */
export function setNoStore(response: HeaderTarget): void {
  for (const [name, value] of Object.entries(NO_STORE_HEADERS)) response.setHeader(name, value);
}

/** Sets the headers `cacheHeadersFor` gives for the class. */
export function markResponseClass(policy: Policy, response: HeaderTarget, className: string): void {
  for (const [name, value] of Object.entries(cacheHeadersFor(policy, className)))
    response.setHeader(name, value);
}

/**
 * Express (or connect) middleware for routes that return data of `className`:
 * `app.get('/patients/:id/summary', phiResponse(policy, 'encrypted-phi'), handler)`, or `app.use(...)` for a whole
 * router. The headers are set before the handler runs, so every answer of the route has them, errors included.
 */
export function phiResponse(
  policy: Policy,
  className: string,
): (request: IncomingMessage, response: ServerResponse, next: () => void) => void {
  const headers = Object.entries(cacheHeadersFor(policy, className));
  return (_request, response, next) => {
    for (const [name, value] of headers) response.setHeader(name, value);
    next();
  };
}

/** The parts of Fastify the plugin hook uses, so phicache needs no import of fastify. */
export interface FastifyLikeRoute {
  readonly routeOptions: { readonly config?: unknown };
}
export interface FastifyLikeHeaders {
  header(name: string, value: string): unknown;
}

/**
 * A Fastify `onRequest` hook: routes declare what they return with `config: { phiClass: 'encrypted-phi' }`, and
 * their responses get the class's headers. `fastify.addHook('onRequest', fastifyPhiResponses(policy))`.
 */
export function fastifyPhiResponses(
  policy: Policy,
): (request: FastifyLikeRoute, reply: FastifyLikeHeaders) => Promise<void> {
  return async (request, reply) => {
    const config = request.routeOptions.config as { phiClass?: unknown } | undefined;
    if (typeof config?.phiClass !== 'string') return;
    for (const [name, value] of Object.entries(cacheHeadersFor(policy, config.phiClass)))
      reply.header(name, value);
  };
}
