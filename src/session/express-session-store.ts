import type { SessionData as ExpressSessionData, Store } from 'express-session';
import { PhiSessionStore, type PhiSessionStoreOptions, type SessionData } from './session-store.js';

/** express-session's `Store` class, as `import session from 'express-session'` gives it (`session.Store`). */
export type ExpressStoreClass = typeof Store;

/**
 * An express-session store kept through phicache. express-session is passed in rather than imported, so phicache
 * does not need it installed unless this is called:
 *
 *   app.use(session({ store: expressSessionStore(session.Store, { cache, tenant: 'portal-sessions' }), ... }))
 *
 * It extends the given `Store` (which supplies `regenerate`, `load` and `createSession`) and forwards the core
 * store's `connect` and `disconnect`, so the middleware stops loading sessions while the store is down. `all` answers
 * with an array of session data without ids (the store holds only HMACs of them), `length` with their count.
 */
export function expressSessionStore(
  StoreBase: ExpressStoreClass,
  options: PhiSessionStoreOptions,
): Store & { readonly sessions: PhiSessionStore } {
  const core = new PhiSessionStore(options);
  const Base = StoreBase as unknown as new () => Store;

  class PhiExpressSessionStore extends Base {
    readonly sessions = core;

    constructor() {
      super();
      core.on('connect', () => this.emit('connect'));
      core.on('disconnect', () => this.emit('disconnect'));
    }

    override get(sid: string, callback: (err: unknown, session?: ExpressSessionData | null) => void): void {
      core.get(sid).then(
        (data) => callback(null, (data as ExpressSessionData | undefined) ?? null),
        (error: unknown) => callback(error),
      );
    }

    override set(sid: string, session: ExpressSessionData, callback?: (err?: unknown) => void): void {
      settle(core.set(sid, session as unknown as SessionData), callback);
    }

    override touch(sid: string, session: ExpressSessionData, callback?: (err?: unknown) => void): void {
      settle(core.touch(sid, session as unknown as SessionData), callback);
    }

    override destroy(sid: string, callback?: (err?: unknown) => void): void {
      settle(core.destroy(sid), callback);
    }

    override all(callback: (err: unknown, sessions?: ExpressSessionData[] | null) => void): void {
      core.all().then(
        (sessions) => callback(null, sessions as unknown as ExpressSessionData[]),
        (error: unknown) => callback(error),
      );
    }

    override length(callback: (err: unknown, length?: number) => void): void {
      core.length().then(
        (count) => callback(null, count),
        (error: unknown) => callback(error),
      );
    }

    override clear(callback?: (err?: unknown) => void): void {
      settle(core.clear(), callback);
    }
  }

  return new PhiExpressSessionStore();
}

function settle(work: Promise<void>, callback: ((err?: unknown) => void) | undefined): void {
  work.then(
    () => callback?.(),
    (error: unknown) => callback?.(error),
  );
}
