import { integerOption } from '../options.js';
import type { AuditStream } from './audit-event.js';

/**
 * How far a record must have gone before the operation it records answers, as PostgreSQL's
 * `synchronous_commit` says it for transactions:
 * - `durable`: on disk; the operation answers after the fdatasync that carried its record (group commit).
 * - `written`: handed to the operating system (write(2) returned); an fdatasync follows within `syncEveryMs`,
 *   and always before a checkpoint that covers the record. A power loss can cost the records of those last
 *   milliseconds; the checkpoint written at the next start shows where the log ended, so it reads as a crash.
 */
export type AuditDurability = 'durable' | 'written';

export type AuditDurabilityOption =
  | AuditDurability
  | { readonly access?: AuditDurability; readonly admin?: AuditDurability };

/**
 * Access records are every PHI read and write: they answer once written, so an audited read costs microseconds of
 * CPU rather than a disk sync. Admin actions (keys, purges, policy) are rare and matter most: they wait for the disk.
 */
export const DEFAULT_DURABILITY: Readonly<Record<AuditStream, AuditDurability>> = {
  access: 'written',
  admin: 'durable',
};

export function resolveDurability(
  option: AuditDurabilityOption | undefined,
): Record<AuditStream, AuditDurability> {
  if (option === undefined) return { ...DEFAULT_DURABILITY };
  if (typeof option === 'string') return { access: level(option), admin: level(option) };
  if (typeof option !== 'object' || option === null)
    throw new TypeError("audit trail durability is 'durable', 'written' or { access?, admin? }");
  for (const key of Object.keys(option)) {
    if (key !== 'access' && key !== 'admin')
      throw new TypeError(`audit trail durability has no stream ${key}`);
  }
  return {
    access: option.access === undefined ? DEFAULT_DURABILITY.access : level(option.access),
    admin: option.admin === undefined ? DEFAULT_DURABILITY.admin : level(option.admin),
  };
}

function level(value: unknown): AuditDurability {
  if (value !== 'durable' && value !== 'written')
    throw new TypeError("an audit durability level is 'durable' or 'written'");
  return value;
}

/** The longest a `written` record waits for its fdatasync, in ms. Default 5; 1 to 1,000. */
export function resolveSyncEveryMs(value: number | undefined): number {
  return integerOption('audit trail', 'syncEveryMs', value ?? 5, 1, 1000);
}
