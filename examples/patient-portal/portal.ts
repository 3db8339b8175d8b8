import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import session from 'express-session';
import {
  AuditTrail,
  type CacheStore,
  type CounterStore,
  expressSessionStore,
  FileSink,
  type KeyProvider,
  Keyset,
  LocalKeyring,
  loadDefaultPolicy,
  MemoryCounters,
  nodeRedisCommands,
  type OpenAuditKeysOptions,
  openAuditKeys,
  openSecretSource,
  PhiCache,
  RateLimiter,
  type RedisCommands,
  RedisCounters,
  RedisStore,
  readSecret,
  type SecretReferenceSource,
} from 'phicache';
import { createPortalServer, type Middleware } from './app.js';

export interface PortalSetup {
  /**
   * The clock `POST /login`'s rate limit counts by, in ms. Default `Date.now`; a fixed clock keeps every attempt in
   * one window, so the limit can be shown without depending on when a minute ends.
   */
  readonly loginClock?: () => number;
}

export interface Portal {
  readonly server: Server;
  /** Where the cache lives: `embedded` (in-process) or `redis` (REDIS_URL). */
  readonly storeName: 'embedded' | 'redis';
  /** Stops accepting requests and closes the session store, the counters and the cache. */
  close(): Promise<void>;
}

/** Builds the portal from its environment (see the variables below); `server.ts` listens with it. */
export async function openPortal(options: PortalSetup = {}): Promise<Portal> {
  // The embedded defaults: the shipped policy, the in-process store, the development keyrings (one KEK for the cache,
  // another for audit keys) and a tamper-evident audit trail, all under PHICACHE_HOME (./.phicache unless set).
  // No cloud account, and no Redis unless REDIS_URL names one (see redisFromEnvironment below). In production,
  // PHICACHE_KEYSET names the keyset file (phicache keys init) that every instance of the service shares.
  const keys = await keysFromEnvironment();
  const audit = new AuditTrail({ keys: await openAuditKeys(keys.audit), sinks: [new FileSink()] });
  const redis = await redisFromEnvironment();
  const store = redis?.store;
  const policy = await loadDefaultPolicy();
  const cache = await PhiCache.create({
    service: 'patient-portal',
    policy,
    keys: keys.cache,
    audit,
    ...(store === undefined ? {} : { store }),
  });

  // The cookie-signing secret and the rate limiter's HMAC key come from the name secret, so every instance sharing
  // the keyset agrees on them and none is configured by hand. Each is its own HMAC of the secret, for its own use.
  const nameSecret = await keys.cache.nameSecret();
  const derive = (purpose: string) =>
    createHmac('sha256', nameSecret).update(`patient-portal ${purpose}`).digest();
  const sessionStore = expressSessionStore(session.Store, { cache, tenant: 'patient-portal-sessions' });
  const sessions = session({
    store: sessionStore,
    name: 'portal.sid',
    secret: derive('session cookie').toString('base64url'),
    resave: false,
    saveUninitialized: false,
    cookie: {
      httpOnly: true,
      sameSite: 'strict',
      // Secure cookies travel over HTTPS only: on by default in production, where TLS ends before the portal.
      secure: process.env.SESSION_COOKIE_SECURE
        ? process.env.SESSION_COOKIE_SECURE === 'true'
        : process.env.NODE_ENV === 'production',
      maxAge: 1_800_000,
    },
  });
  const counters: CounterStore =
    redis === undefined ? new MemoryCounters() : new RedisCounters(redis.commands);
  const loginLimiter = new RateLimiter({
    store: counters,
    name: 'login',
    limit: loginRateLimit(),
    windowMs: 60_000,
    // Sessions live in the same store, so while it is down no login could start anyway; closed costs nothing more.
    whenStoreDown: 'closed',
    secret: derive('rate limit'),
    ...(options.loginClock === undefined ? {} : { clock: options.loginClock }),
  });

  const server = createPortalServer(cache, {
    policy,
    sessions: sessions as unknown as Middleware,
    loginLimiter,
  });
  return {
    server,
    storeName: store === undefined ? 'embedded' : 'redis',
    async close() {
      server.close();
      sessionStore.sessions.close();
      await Promise.all([counters.close(), cache.close()]);
    },
  };
}

/**
 * With PHICACHE_KEYSET set, the KEKs it names (a KMS, Vault or an HSM) unwrap the name secret and the audit keys,
 * so all instances agree on key names and sign the audit log with one key. Without it, the development keyrings.
 */
async function keysFromEnvironment(): Promise<{ cache: KeyProvider; audit: OpenAuditKeysOptions }> {
  const file = process.env.PHICACHE_KEYSET;
  if (file === undefined || file === '') {
    return {
      cache: await LocalKeyring.open(),
      audit: { provider: await LocalKeyring.open({ domain: 'audit' }) },
    };
  }
  const keyset = await Keyset.open(file);
  return { cache: keyset.cache, audit: { keyset: keyset.audit } };
}

/**
 * With REDIS_URL set, the cache lives in Redis instead of the process: `redis://host:port[/db]`, or `rediss://`
 * for TLS. REDIS_TLS_CA names a PEM file with the CA that signed the server's certificate (and implies TLS);
 * REDIS_USER and REDIS_PASSWORD are the ACL user and its password (or REDIS_PASSWORD alone for an AUTH string).
 * REDIS_PASSWORD_SECRET names where the password is instead (env:VAR, file:/path, aws-sm://…, vault-kv://…): it is
 * read before the first connection and again before every reconnection, so a rotated password needs no restart.
 * The URL is never printed: it may carry credentials.
 */
async function redisFromEnvironment(): Promise<{ store: CacheStore; commands: RedisCommands } | undefined> {
  const url = process.env.REDIS_URL;
  if (url === undefined || url === '') return undefined;
  const caFile = process.env.REDIS_TLS_CA;
  const username = process.env.REDIS_USER;
  const password = await redisPassword();
  const commands = await nodeRedisCommands({
    url,
    ...(caFile ? { tls: { ca: await readFile(caFile) } } : {}),
    ...(username ? { username } : {}),
    ...(password === undefined ? {} : { password }),
  });
  return { store: new RedisStore(commands), commands };
}

/** LOGIN_RATE_LIMIT: login attempts a minute per client address, default 10. */
function loginRateLimit(): number {
  const text = process.env.LOGIN_RATE_LIMIT;
  if (text === undefined || text === '') return 10;
  const limit = Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new Error('LOGIN_RATE_LIMIT must be a positive integer');
  return limit;
}

async function redisPassword(): Promise<string | SecretReferenceSource | undefined> {
  const reference = process.env.REDIS_PASSWORD_SECRET;
  if (reference) {
    if (process.env.REDIS_PASSWORD) throw new Error('set REDIS_PASSWORD or REDIS_PASSWORD_SECRET, not both');
    return openSecretSource(reference);
  }
  return process.env.REDIS_PASSWORD ? await readSecret({ env: 'REDIS_PASSWORD' }) : undefined;
}
