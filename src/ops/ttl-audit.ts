import type { Policy } from '../policy/policy.js';
import { type RedisCommands, RedisReplyError } from '../store/redis/commands.js';
import { checkDeadlineMs, withinDeadline } from './deadline.js';
import { KeyDisplay } from './key-display.js';
import { judgeTtl } from './ttl-caps.js';

export interface TtlAuditOptions {
  /** SCAN MATCH pattern. Default `*`: the audit covers every key, not only phicache's. */
  readonly match?: string;
  /** Caps for phicache keys (`phc:e:<class>:...`, `phc:k:<class>:...`, `phc:p:<class>:...`). */
  readonly policy: Policy;
  /** The DEK epoch the writers use (PhiCache `dekEpochMs`), which bounds data-key records. Default 1 hour. */
  readonly dekEpochMs?: number;
  /** Called every 1,000 keys, for progress on a terminal. */
  readonly onProgress?: (scanned: number) => void;
  /** Milliseconds since the epoch, for exceptions' expiry. Default `Date.now`. */
  readonly now?: number;
  /**
   * How long one SCAN page, or the PTTLs of its keys, may take before the audit gives up with
   * ERR_STORE_UNAVAILABLE. Default 5,000 ms; 1..600,000.
   */
  readonly deadlineMs?: number;
  /** Keys per SCAN page, and so per pipelined batch of PTTLs. Default 1,000. */
  readonly pageSize?: number;
  /**
   * How names of keys phicache did not write are shown: `redacted` (default: namespace and a per-report HMAC, as
   * they may hold PHI) or `verbatim`, for an operator who asks.
   */
  readonly keyNames?: 'redacted' | 'verbatim';
}

export type TtlFinding =
  | { readonly kind: 'no-ttl'; readonly key: string }
  | {
      readonly kind: 'over-cap';
      readonly key: string;
      readonly className: string;
      readonly ttlMs: number;
      readonly capMs: number;
    }
  | { readonly kind: 'unknown-class'; readonly key: string; readonly className: string };

export interface TtlAuditReport {
  readonly ok: boolean;
  readonly masters: number;
  readonly scanned: number;
  /** `redacted`: names of other applications' keys are shown as `redacted:<namespace>:…#<hmac>`. */
  readonly keyNames: 'redacted' | 'verbatim';
  readonly findings: readonly TtlFinding[];
}

const DEFAULT_DEADLINE_MS = 5_000;

/**
 * Scans every master (SCAN, never KEYS) and reports keys without a TTL and phicache keys whose TTL exceeds what
 * their data class allows: the class cap (raised by an active exception) for entries, and one DEK epoch plus that
 * cap for data-key records. Works on any Redis: keys phicache did not write are checked for a TTL only.
 *
 * Each page is one script call that runs SCAN and the PTTLs on the server and returns only the keys worth judging;
 * where the user may not run scripts, the client scans and sends each page's PTTLs together while it asks for the
 * next page. Either way the audit costs about one round trip per page rather than one per key. Every page and every batch
 * has a deadline: a server paused mid-scan makes the audit fail, never hang.
 */
export async function ttlAudit(commands: RedisCommands, options: TtlAuditOptions): Promise<TtlAuditReport> {
  const now = options.now ?? Date.now();
  const dekEpochMs = options.dekEpochMs ?? 3_600_000;
  const deadlineMs = checkDeadlineMs(options.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs');
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > 100_000) {
    throw new RangeError('pageSize must be an integer in 1..100000');
  }
  const keyNames = options.keyNames ?? 'redacted';
  const display = new KeyDisplay(keyNames);
  const findings: TtlFinding[] = [];
  let scanned = 0;
  let reported = 0;

  /** `count` keys were scanned; `keys` and `ttls` are those of them worth judging (all of them, or a script's pick). */
  const judge = (count: number, keys: readonly Buffer[], ttls: readonly number[]) => {
    for (const [i, key] of keys.entries()) {
      const ttlMs = ttls[i]!;
      const verdict = judgeTtl(key.toString('latin1'), ttlMs, { policy: options.policy, dekEpochMs, now });
      if (verdict.kind === 'no-ttl') findings.push({ kind: 'no-ttl', key: display.show(key) });
      else if (verdict.kind === 'over-cap') findings.push({ ...verdict, key: display.show(key) });
      else if (verdict.kind === 'unknown-class') findings.push({ ...verdict, key: display.show(key) });
    }
    scanned += count;
    if (options.onProgress !== undefined && Math.floor(scanned / 1000) > Math.floor(reported / 1000)) {
      options.onProgress(scanned);
    }
    reported = scanned;
  };

  const match = options.match ?? '*';
  const batch = new PttlBatch();
  /** The client scans from `from` and sends each page's PTTLs together while it asks for the next page. */
  const clientScan = async (node: RedisCommands, from: string) => {
    const scan = (at: string) => withinDeadline(node.scan(at, match, pageSize), deadlineMs, 'SCAN');
    let page: { cursor: string; keys: Buffer[] } = await scan(from);
    for (;;) {
      const keys = page.keys;
      const ttls = withinDeadline(batch.pttls(node, keys), deadlineMs, `PTTL of ${keys.length} keys`);
      const next = page.cursor === '0' ? undefined : scan(page.cursor);
      next?.catch(() => undefined); // awaited below; a failure of the PTTLs first must not leave it unhandled
      judge(keys.length, keys, await ttls);
      if (next === undefined) return;
      page = await next;
    }
  };
  for (const node of commands.masters()) {
    // Server-side first: SCAN and PTTL in one script call per page, which returns only the keys worth judging.
    let cursor = '0';
    let refused = false;
    do {
      const page = await withinDeadline(scriptedPage(node, cursor, match, pageSize), deadlineMs, 'SCAN');
      refused = page === undefined;
      if (page === undefined) break; // the client scans on from this cursor
      judge(page.count, page.keys, page.ttls);
      cursor = page.cursor;
    } while (cursor !== '0');
    if (refused) await clientScan(node, cursor);
  }
  return { ok: findings.length === 0, masters: commands.masters().length, scanned, keyNames, findings };
}

/**
 * The PTTLs of one page of keys in one command: a script that runs PTTL on each, so a page costs the server well
 * under a millisecond and the client one reply instead of a thousand. The keys go in ARGV (they are all on the node
 * SCAN found them on, so a Cluster node serves every one). A server or user that refuses the script (no EVAL in the
 * user's ACL, scripting disabled) gets the PTTLs pipelined instead, from then on.
 */
class PttlBatch {
  static readonly SCRIPT =
    "local r = {}\nfor i, k in ipairs(ARGV) do r[i] = redis.call('PTTL', k) end\nreturn r";
  #scripted = true;

  async pttls(node: RedisCommands, keys: readonly Buffer[]): Promise<number[]> {
    if (keys.length === 0) return [];
    if (this.#scripted) {
      try {
        const reply = await node.eval(PttlBatch.SCRIPT, [], keys);
        if (Array.isArray(reply) && reply.length === keys.length) return reply.map(Number);
      } catch (error) {
        if (!(error instanceof RedisReplyError)) throw error;
      }
      this.#scripted = false;
    }
    return Promise.all(keys.map((key) => node.pttl(key)));
  }
}

/**
 * One SCAN page and the PTTL of each of its keys, run by the server, returning only the keys worth judging: those
 * without a TTL and phicache's own (whose TTL a class caps). A page costs one round trip, a few hundred microseconds
 * of server time, and a reply of the findings rather than of every key. The keys are all local to the node that
 * scanned them, so a Cluster node serves every PTTL. Undefined when the user may not run it (no EVAL, or SCAN/PTTL
 * refused inside scripts), so the caller scans from the client.
 */
const SCAN_PAGE_SCRIPT = `local page = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
local out = {}
for _, k in ipairs(page[2]) do
  local t = redis.call('PTTL', k)
  if t == -1 or string.sub(k, 1, 4) == 'phc:' then
    out[#out + 1] = k
    out[#out + 1] = t
  end
end
return {page[1], #page[2], out}`;

async function scriptedPage(
  node: RedisCommands,
  cursor: string,
  match: string,
  count: number,
): Promise<{ cursor: string; count: number; keys: Buffer[]; ttls: number[] } | undefined> {
  let reply: unknown;
  try {
    reply = await node.eval(SCAN_PAGE_SCRIPT, [], [cursor, match, String(count)]);
  } catch (error) {
    if (error instanceof RedisReplyError) return undefined;
    throw error;
  }
  const [next, scanned, flat] = reply as [Buffer | string, number, (Buffer | number)[]];
  const keys: Buffer[] = [];
  const ttls: number[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    keys.push(flat[i] as Buffer);
    ttls.push(Number(flat[i + 1]));
  }
  return { cursor: next.toString(), count: Number(scanned), keys, ttls };
}
