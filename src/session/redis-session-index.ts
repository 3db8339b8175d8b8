import { createHash } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import type { RedisCommands } from '../store/redis/commands.js';
import type { SessionIndex } from './session-index.js';

/**
 * Every change and read of one index key in one script, so it is atomic and runs on any Cluster slot (one key):
 * drop members expired by `now`, apply the operation, then give the key the TTL of its latest member, so the
 * index never outlives the sessions it lists. ARGV: operation (add, remove, members, clear), now, member,
 * expiresAt. Returns the live members for `members`, else 0.
 */
const INDEX_SOURCE = `
local now = tonumber(ARGV[2])
local op = ARGV[1]
if op == 'clear' then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if op == 'add' then
  redis.call('ZADD', KEYS[1], tonumber(ARGV[4]), ARGV[3])
elseif op == 'remove' then
  redis.call('ZREM', KEYS[1], ARGV[3])
end
local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if latest[2] then
  redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(latest[2]) - now))
end
if op == 'members' then
  return redis.call('ZRANGE', KEYS[1], 0, -1)
end
return 0
`;
const INDEX_SHA1 = createHash('sha1').update(INDEX_SOURCE).digest('hex');

/**
 * The session index on Redis (standalone, Sentinel or Cluster): one sorted set per store tenant, scored by expiry.
 * Any failure rejects with `ERR_STORE_UNAVAILABLE`.
 */
export class RedisSessionIndex implements SessionIndex {
  readonly #commands: RedisCommands;

  constructor(commands: RedisCommands) {
    if (typeof commands?.evalsha !== 'function')
      throw new TypeError('RedisSessionIndex needs Redis commands');
    this.#commands = commands;
  }

  async add(key: string, member: string, expiresAt: number, now: number): Promise<void> {
    await this.#run(key, ['add', String(now), member, String(expiresAt)]);
  }

  async remove(key: string, member: string, now: number): Promise<void> {
    await this.#run(key, ['remove', String(now), member, '0']);
  }

  async members(key: string, now: number): Promise<string[]> {
    const reply = await this.#run(key, ['members', String(now), '', '0']);
    if (!Array.isArray(reply)) {
      throw new PhiCacheError(
        'ERR_STORE_UNAVAILABLE',
        'redis answered the session index with something else',
      );
    }
    return reply.map((member) => (Buffer.isBuffer(member) ? member.toString('latin1') : String(member)));
  }

  async clear(key: string): Promise<void> {
    await this.#run(key, ['clear', '0', '', '0']);
  }

  async #run(key: string, args: string[]): Promise<unknown> {
    try {
      try {
        return await this.#commands.evalsha(INDEX_SHA1, [key], args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return await this.#commands.eval(INDEX_SOURCE, [key], args);
      }
    } catch (error) {
      if (error instanceof PhiCacheError) throw error;
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'redis refused the session index script', {
        cause: error,
      });
    }
  }
}
