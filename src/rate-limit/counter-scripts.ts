import { createHash } from 'node:crypto';

/** A Lua script with its SHA-1, for EVALSHA with an EVAL fallback. */
export interface CounterScript {
  readonly source: string;
  readonly sha1: string;
}

function script(source: string): CounterScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * Fixed window: count, and start the window's TTL on its first request. A counter found without a TTL (someone
 * PERSISTed it) gets one again, so no counter outlives a window. One key, so it runs on any Cluster slot.
 * ARGV: windowMs. Returns { count, ms until reset }.
 */
export const FIXED_WINDOW_SCRIPT = script(`
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`);

/**
 * Sliding window as a log in one sorted set: drop the requests older than a window, count the rest, and record
 * this one only if it fits. The set never holds more than `limit` members and lives one window past its last use.
 * ARGV: now, windowMs, limit, a unique member. Returns { count including this request, ms until a slot frees }.
 */
export const SLIDING_WINDOW_SCRIPT = script(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local held = redis.call('ZCARD', KEYS[1])
if held < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], window)
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {held + 1, reset}
`);
