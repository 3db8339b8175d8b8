import { INSTANCE_ID, type Invalidation, type InvalidationNotice } from './invalidation-bus.js';

/**
 * A notice on the wire is one JSON object, `{"v":1,"from":..,"kind":..,"name":..,"shard":..,"gen":N}`: store
 * names and ids only, and readable by anyone inspecting the channel, which is the point (PHI-LEAK-01). The
 * publishing script appends the generation it just took and the closing brace, so this side writes the head.
 */
export function noticeHead(from: string, invalidation: Invalidation, shard: number): string {
  return `{"v":1,"from":${JSON.stringify(from)},"kind":"${invalidation.kind}","name":${JSON.stringify(invalidation.name)},"shard":${shard},"gen":`;
}

/** Far above any store name phicache makes; a longer message is not ours. */
export const MAX_NOTICE_BYTES = 4096;
const MAX_NAME_CHARS = 1024;

/** A notice, or undefined for anything else on the channel: a bus drops what it cannot vouch for. */
export function parseNotice(message: Buffer, shards: number): InvalidationNotice | undefined {
  if (message.length > MAX_NOTICE_BYTES) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(message.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { v, from, kind, name, shard, gen } = parsed as Record<string, unknown>;
  if (v !== 1 || Object.keys(parsed).length !== 6) return undefined;
  if (typeof from !== 'string' || !INSTANCE_ID.test(from)) return undefined;
  if (kind !== 'key' && kind !== 'tag') return undefined;
  if (typeof name !== 'string' || !name.startsWith('phc:') || name.length > MAX_NAME_CHARS) return undefined;
  if (!Number.isSafeInteger(shard) || (shard as number) < 0 || (shard as number) >= shards) return undefined;
  if (!Number.isSafeInteger(gen) || (gen as number) < 1) return undefined;
  return { from, kind, name, shard: shard as number, generation: gen as number };
}
