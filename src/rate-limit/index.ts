export type { CounterHit, CounterRequest, CounterStore, WindowAlgorithm } from './counter-store.js';
export { rateLimitHeaders } from './headers.js';
export { MemoryCounters, type MemoryCountersOptions } from './memory-counters.js';
export {
  type FastifyLikeReply,
  type FastifyLikeRequest,
  fastifyRateLimit,
  type RateLimitMiddlewareOptions,
  rateLimitMiddleware,
} from './middleware.js';
export {
  type RateLimitAllowed,
  RateLimiter,
  type RateLimiterOptions,
  type RateLimitLimited,
  type RateLimitResult,
  type RateLimitUnavailable,
} from './rate-limiter.js';
export { RedisCounters, type RedisCountersOptions } from './redis-counters.js';
