import { PhiSessionStore, type PhiSessionStoreOptions, type SessionData } from './session-store.js';

type Callback = (err?: unknown) => void;

/** The store contract of @fastify/session (`SessionStore` in its types), declared here so phicache needs no import. */
export interface FastifySessionStore<Session = SessionData> {
  set(sessionId: string, session: Session, callback: Callback): void;
  get(sessionId: string, callback: (err: unknown, result?: Session | null) => void): void;
  destroy(sessionId: string, callback: Callback): void;
}

/**
 * A @fastify/session store kept through phicache:
 *
 *   fastify.register(fastifySession, { store: fastifySessionStore({ cache, tenant: 'portal-sessions' }), ... })
 *
 * Pass @fastify/session's `Session` type as `Session` (`fastifySessionStore<Session>(...)`) to satisfy its types.
 * The session object's own fields and its cookie (through the cookie's `toJSON`) are what is stored, as with
 * express-session; the same checks, timeouts and purges apply (see PhiSessionStore).
 */
export function fastifySessionStore<Session = SessionData>(
  options: PhiSessionStoreOptions,
): FastifySessionStore<Session> & { readonly sessions: PhiSessionStore } {
  const core = new PhiSessionStore(options);
  return {
    sessions: core,
    get(sessionId, callback) {
      core.get(sessionId).then(
        // A plain object: @fastify/session builds its Session from it, copying the fields and the cookie.
        (data) => callback(null, (data as Session | undefined) ?? null),
        (error: unknown) => callback(error),
      );
    },
    set(sessionId, session, callback) {
      core.set(sessionId, session as unknown as SessionData).then(() => callback(), callback);
    },
    destroy(sessionId, callback) {
      core.destroy(sessionId).then(() => callback(), callback);
    },
  };
}
