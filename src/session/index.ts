export { type ExpressStoreClass, expressSessionStore } from './express-session-store.js';
export { type FastifySessionStore, fastifySessionStore } from './fastify-session-store.js';
export { RedisSessionIndex } from './redis-session-index.js';
export { MemorySessionIndex, type SessionIndex } from './session-index.js';
export { type SessionRuleId, sessionRules } from './session-rules.js';
export {
  PhiSessionStore,
  type PhiSessionStoreEvents,
  type PhiSessionStoreOptions,
  type SessionData,
} from './session-store.js';
