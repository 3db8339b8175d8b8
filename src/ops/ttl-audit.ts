import type { Policy } from '../policy/policy.js';
import type { RedisCommands } from '../store/redis/commands.js';
import { scanKeys } from '../store/redis/scan.js';

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
  readonly findings: readonly TtlFinding[];
}

/** Slack for clock skew and the grace a data-key record gets past its last entry (see DataKeys). */
const RECORD_GRACE_MS = 60_000;
const PHICACHE_KEY = /^phc:([ekp]):([a-z][a-z0-9-]{0,62}):[A-Za-z0-9_-]{43}$/;

/**
 * Scans every master (SCAN, never KEYS) and reports keys without a TTL and phicache keys whose TTL exceeds what
 * their data class allows: the class cap (raised by an active exception) for entries, and one DEK epoch plus that
 * cap for data-key records. Works on any Redis: keys phicache did not write are checked for a TTL only.
 */
export async function ttlAudit(commands: RedisCommands, options: TtlAuditOptions): Promise<TtlAuditReport> {
  const now = options.now ?? Date.now();
  const epochMs = options.dekEpochMs ?? 3_600_000;
  const findings: TtlFinding[] = [];
  let scanned = 0;
  for await (const { key, node } of scanKeys(commands, options.match ?? '*', 1000)) {
    scanned += 1;
    if (scanned % 1000 === 0) options.onProgress?.(scanned);
    const ttlMs = await node.pttl(key);
    const name = printable(key);
    if (ttlMs === -1) {
      findings.push({ kind: 'no-ttl', key: name });
      continue;
    }
    const match = PHICACHE_KEY.exec(name);
    if (ttlMs < 0 || match === null) continue;
    const [, kind, className] = match as unknown as [string, string, string];
    const dataClass = options.policy.dataClass(className);
    if (dataClass === undefined) {
      findings.push({ kind: 'unknown-class', key: name, className });
      continue;
    }
    const exceptionMs = options.policy.activeException(className, now)?.maxTtlMs ?? 0;
    const entryCapMs = Math.max(dataClass.maxTtlMs, exceptionMs);
    const capMs = kind === 'e' ? entryCapMs : epochMs + entryCapMs + RECORD_GRACE_MS;
    if (ttlMs > capMs) findings.push({ kind: 'over-cap', key: name, className, ttlMs, capMs });
  }
  return { ok: findings.length === 0, masters: commands.masters().length, scanned, findings };
}

/** Keys may hold any bytes; show them as text when they are printable UTF-8, else as hex. */
function printable(key: Buffer): string {
  const text = key.toString('utf8');
  return /^[\x20-\x7e]*$/.test(text) ? text : `hex:${key.toString('hex')}`;
}
