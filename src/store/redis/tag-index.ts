import { createHash } from 'node:crypto';

/**
 * The tag index of RedisStore: its member format, the frame every stored value carries, and the Lua scripts that
 * keep the two consistent. Each script touches one key (so one slot); an entry and its index shards live in
 * different slots, so the write is two steps: the index first, then the entry.
 *
 * An index shard `<tag>:<n>` is a sorted set whose member is the entry key itself and whose score is that key's
 * index version: the expiry of the last write that indexed it, raised to old score + 1 when that would not grow, so
 * every index update of a member changes its score. Overwrites therefore update one member in place: an index holds
 * at most one member per key written with the tag in the last TTL + margin, however often the keys are rewritten.
 *
 * Since a member does not name a write, the entry says which tags it carries: the frame of every stored value is
 *
 *     0xF2 || n (uint16 BE) || n × (tag fingerprint, 8 bytes || index score of this write, float64 BE) || envelope
 *
 * A purge deletes a key only while its current write carries the tag's fingerprint (so an overwrite without the tag
 * is left alone), and takes the member out of the index only when that write is also the one the index last
 * recorded (its score for the tag equals the member's, and still does when it is removed). Otherwise a newer write
 * may be between its index update and its SET, and the member stays: it is checked again by the next purge and
 * leaves with its score (expiry + margin). So a write that overlaps a purge is purged or stays indexed, never
 * dropped from the index while live.
 *
 * Trade-off: 16 bytes per tag per entry (3 + 16n in all), for an index bounded by live keys rather than by write
 * rate × TTL (a member per write, the alternative, grew to ~500k members in 8 s of overwrites on 1,000 keys). Full
 * tag names in the frame would be exact but cost ~50 bytes per tag; an 8-byte fingerprint can match a different tag
 * with odds of 2^-64 per check, and such a match deletes a cache entry (a miss), never serves a stale one.
 */

const FRAME_MAGIC = 0xf2;
const HEADER_BYTES = 3;
const FINGERPRINT_BYTES = 8;
const TAG_BYTES = FINGERPRINT_BYTES + 8;
export const MAX_TAGS = 0xffff;

/** Tags already hashed: the same few (tenant, scope) are on most writes. Cleared whole when full. */
const fingerprints = new Map<string, Buffer>();
const FINGERPRINT_MEMO = 4096;

/** The first 8 bytes of SHA-256 of the (already hashed) tag name. */
export function tagFingerprint(tag: string): Buffer {
  let fingerprint = fingerprints.get(tag);
  if (fingerprint === undefined) {
    fingerprint = createHash('sha256').update(tag).digest().subarray(0, FINGERPRINT_BYTES);
    if (fingerprints.size >= FINGERPRINT_MEMO) fingerprints.clear();
    fingerprints.set(tag, fingerprint);
  }
  return fingerprint;
}

/** The index score as the frame and the delete script hold it. */
export function scoreBytes(score: number): Buffer {
  const bytes = Buffer.allocUnsafe(8);
  bytes.writeDoubleBE(score);
  return bytes;
}

/** `value` framed with the tags its write carries and the index score each tag's shard gave it. */
export function frame(value: Buffer, tags: readonly string[], scores: readonly number[]): Buffer {
  const framed = Buffer.allocUnsafe(HEADER_BYTES + TAG_BYTES * tags.length + value.length);
  framed[0] = FRAME_MAGIC;
  framed.writeUInt16BE(tags.length, 1);
  let at = HEADER_BYTES;
  for (const [i, tag] of tags.entries()) {
    tagFingerprint(tag).copy(framed, at);
    framed.writeDoubleBE(scores[i]!, at + FINGERPRINT_BYTES);
    at += TAG_BYTES;
  }
  value.copy(framed, at);
  return framed;
}

/**
 * Deletes `KEYS[1]` only while its value ends with `ARGV[1]` (the envelope a reader got, unframed): the frame before
 * it may differ, the envelope (random nonce, sealed expiry) cannot, so a newer write is never taken for it.
 * Returns 1 when deleted.
 */
export const DELETE_IF_SAME_SCRIPT = `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local want = ARGV[1]
if #v < #want or string.sub(v, #v - #want + 1) ~= want then return 0 end
return redis.call('DEL', KEYS[1])`;

/**
 * Replaces the envelope at the end of `KEYS[1]` (`ARGV[1]`, as a reader got it) with `ARGV[2]`, keeping the frame
 * before it and the TTL (KEEPTTL; or `ARGV[3]` ms when given): the entry stays in the same tag index shards, with the
 * same scores. Returns 1 when replaced, 0 when the key is gone or holds another write.
 */
export const REPLACE_IF_SAME_SCRIPT = `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local seen = ARGV[1]
if #v < #seen or string.sub(v, #v - #seen + 1) ~= seen then return 0 end
if ARGV[3] then
  redis.call('SET', KEYS[1], string.sub(v, 1, #v - #seen) .. ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[1], string.sub(v, 1, #v - #seen) .. ARGV[2], 'KEEPTTL')
end
return 1`;

/**
 * Whether the frame's tags are exactly the fingerprints of `tags`. An unframed value carries no tags. A frame edited
 * by someone with write access to Redis (a fingerprint flipped so a purge passes the entry by) fails this check.
 */
export function frameCarries(raw: Buffer, tags: readonly string[]): boolean {
  const wanted = distinctCount(tags);
  if (raw.length < HEADER_BYTES || raw[0] !== FRAME_MAGIC) return wanted === 0;
  const count = raw.readUInt16BE(1);
  if (count !== wanted || raw.length < HEADER_BYTES + TAG_BYTES * count) return false;
  // As many framed fingerprints as distinct tags, and every tag's among them: the two sets are equal (each tag's
  // takes a slot of its own). Compared in place, since this runs on every read: no sets, no hex strings.
  for (const tag of tags) {
    const fingerprint = tagFingerprint(tag);
    let found = false;
    for (let at = HEADER_BYTES; at < HEADER_BYTES + TAG_BYTES * count && !found; at += TAG_BYTES) {
      found = raw.compare(fingerprint, 0, FINGERPRINT_BYTES, at, at + FINGERPRINT_BYTES) === 0;
    }
    if (!found) return false;
  }
  return true;
}

/** How many different strings `tags` holds (a handful: compared pairwise). */
function distinctCount(tags: readonly string[]): number {
  let distinct = 0;
  for (let i = 0; i < tags.length; i++) if (tags.indexOf(tags[i]!) === i) distinct += 1;
  return distinct;
}

/** A value not framed by this store (written by something else) is passed on whole: the envelope parser refuses it. */
export function unframe(raw: Buffer): Buffer {
  if (raw.length >= HEADER_BYTES && raw[0] === FRAME_MAGIC) {
    const start = HEADER_BYTES + TAG_BYTES * raw.readUInt16BE(1);
    if (raw.length >= start) return raw.subarray(start);
  }
  return raw;
}

/** Scores stay integers below 2^53 (exact as doubles) even for absurd TTLs, so `old + 1` always moves. */
const MAX_SCORE = 2 ** 52;

/**
 * The index step of a write, as a Lua function: indexes entry key `member` in `shard` for a write of TTL `ttl` made at
 * `now`, after dropping members whose score passed more than `margin` ago; returns the member's new score. The add
 * and the PEXPIRE are one atomic step, so no index exists without a TTL, and the index lives at least as long as its
 * newest entry.
 */
const INDEX_FUNCTION = `local function index(shard, member, ttl, margin, now)
  redis.call('ZREMRANGEBYSCORE', shard, '-inf', now - margin)
  local score = math.min(now + ttl, ${MAX_SCORE})
  local old = redis.call('ZSCORE', shard, member)
  if old then
    old = tonumber(old)
    if old >= score then score = old + 1 end
  end
  redis.call('ZADD', shard, score, member)
  if redis.call('PTTL', shard) < ttl + margin then redis.call('PEXPIRE', shard, ttl + margin) end
  return score
end`;

/** The index step alone, for shard `KEYS[1]`: `ARGV` is member, TTL, margin, time of the write. */
export const INDEX_SCRIPT = `${INDEX_FUNCTION}
return index(KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))`;

/**
 * A whole write where every key is on one server (standalone, Sentinel; never a Cluster, whose slots a script must
 * not cross): the index step for each shard `KEYS[2..]`, then the framed SET of entry `KEYS[1]`, in one script. The
 * same steps in the same order as the index scripts followed by a SET, with the same frame, but one command rather
 * than one per tag plus one, and no moment at which the index is written and the entry not yet. `ARGV` is TTL,
 * margin, time of the write, `NX` or empty, the envelope, then the fingerprint of each shard's tag. Returns 1 when
 * the entry was written (0: NX found it present).
 */
export const WRITE_SCRIPT = `${INDEX_FUNCTION}
local ttl = tonumber(ARGV[1])
local margin = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local n = #KEYS - 1
local parts = { string.char(${FRAME_MAGIC}), struct.pack('>H', n) }
for i = 1, n do
  local score = index(KEYS[i + 1], KEYS[1], ttl, margin, now)
  parts[#parts + 1] = ARGV[5 + i] .. struct.pack('>d', score)
end
parts[#parts + 1] = ARGV[5]
local framed = table.concat(parts)
local written
if ARGV[4] == 'NX' then
  written = redis.call('SET', KEYS[1], framed, 'PX', ttl, 'NX')
else
  written = redis.call('SET', KEYS[1], framed, 'PX', ttl)
end
if written then return 1 end
return 0`;

/**
 * One page of shard `KEYS[1]` in score order, as `member, score, ...`: `ARGV[2]` members from the first score above
 * `ARGV[1]` (from the start when empty), plus every further member sharing the page's last score, so the next page
 * can start strictly above it. Members removed or re-scored meanwhile do not shift the next page: it starts by
 * score, not by rank. Drops members whose score passed before `ARGV[3]` first.
 */
export const READ_SCRIPT = `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local limit = tonumber(ARGV[2])
local start = 0
if ARGV[1] ~= '' then start = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) end
local page = redis.call('ZRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')
if #page == 2 * limit then
  local through = redis.call('ZCOUNT', KEYS[1], '-inf', page[#page])
  if through > start + limit then
    local ties = redis.call('ZRANGE', KEYS[1], start + limit, through - 1, 'WITHSCORES')
    for i = 1, #ties do page[#page + 1] = ties[i] end
  end
end
return page`;

/** Tag entries read at once by the delete script; an entry with more takes a second GETRANGE. */
const TAGS_READ_AHEAD = 8;

/**
 * Deletes entry `KEYS[1]` when its current write carries tag fingerprint `ARGV[1]`: 0 when it does not (or is
 * absent, or not framed by this store), 2 when deleted and that write holds index score `ARGV[2]` for the tag (the
 * write the member stands for), 1 when deleted but indexed at another score (a newer index update may be in flight).
 */
export const DELETE_IF_TAGGED_SCRIPT = `local head = redis.call('GETRANGE', KEYS[1], 0, ${HEADER_BYTES + TAG_BYTES * TAGS_READ_AHEAD - 1})
if string.len(head) < ${HEADER_BYTES} or string.byte(head, 1) ~= ${FRAME_MAGIC} then return 0 end
local n = string.byte(head, 2) * 256 + string.byte(head, 3)
local stop = ${HEADER_BYTES} + ${TAG_BYTES} * n
if stop > string.len(head) then head = redis.call('GETRANGE', KEYS[1], 0, stop - 1) end
for at = ${HEADER_BYTES + 1}, math.min(stop, string.len(head)) - ${TAG_BYTES - 1}, ${TAG_BYTES} do
  if string.sub(head, at, at + ${FINGERPRINT_BYTES - 1}) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    if string.sub(head, at + ${FINGERPRINT_BYTES}, at + ${TAG_BYTES - 1}) == ARGV[2] then return 2 end
    return 1
  end
end
return 0`;

/**
 * Removes from shard `KEYS[1]` each member of the pairs `member, score` in `ARGV` whose score is still the one read:
 * a member indexed again since keeps its place. Returns how many it removed.
 */
export const RETIRE_SCRIPT = `local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed`;
