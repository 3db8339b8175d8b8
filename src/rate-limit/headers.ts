import type { RateLimitResult } from './rate-limiter.js';

/**
 * Response headers of the IETF HTTPAPI draft "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers):
 * `RateLimit-Policy: "<name>";q=<limit>;w=<window s>` and `RateLimit: "<name>";r=<remaining>;t=<s until reset>`,
 * plus `Retry-After` (RFC 9110, seconds) on a refusal. Seconds round up, so a client that waits them is not early.
 * A store failure gets neither counter header: the limiter does not know the count.
 */
export function rateLimitHeaders(name: string, result: RateLimitResult): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Policy': `"${name}";q=${result.limit};w=${Math.ceil(result.windowMs / 1000)}`,
  };
  if (result.outcome === 'store-unavailable') {
    if (!result.allowed) headers['Retry-After'] = '1';
    return headers;
  }
  headers.RateLimit = `"${name}";r=${result.remaining};t=${Math.ceil(result.resetMs / 1000)}`;
  if (result.outcome === 'limited')
    headers['Retry-After'] = String(Math.max(1, Math.ceil(result.retryAfterMs / 1000)));
  return headers;
}
