/**
 * One error hierarchy for everything phicache refuses or cannot do.
 *
 * Messages name things by id (class names, rule ids, key hashes, key ids), never by value: a message must be
 * safe to log in a system that is not allowed to hold PHI. Misuse of the API by the caller (a wrong type, a
 * negative duration) throws the platform's TypeError or RangeError instead.
 */

/** Every code with the hint shown when the thrower has nothing more specific to say. `docs/errors.md` mirrors it. */
export const errorHints = {
  ERR_POLICY_INVALID:
    'Fix the policy file at the path and line shown, then run `phicache policy lint <file>`.',
  ERR_POLICY_UNKNOWN_CLASS:
    'Declare the data class in the policy file, or use one of the classes it declares.',
  ERR_POLICY_NOT_CACHEABLE: 'This data class may not be cached. Read it from the system of record instead.',
  ERR_POLICY_TTL_EXCEEDED:
    'Ask for a TTL no larger than the class maximum, or leave it out to get the class default.',
  ERR_POLICY_SCOPE_MISSING:
    'Pass the scope the class requires (tenant, user, session) in the access context.',
  ERR_POLICY_CONTEXT_MISSING: 'PHI classes need a principal (who) and a purpose (why) in the access context.',
  ERR_POLICY_PURPOSE_UNKNOWN:
    'Give one of the purposes of use the policy declares under `purposes`, or declare this one there.',
  ERR_POLICY_FIELD_FORBIDDEN:
    'Remove the fields the class does not allow, or add them to its field allow list.',
  ERR_POLICY_TAG_NOT_ALLOWED: 'Use only the tag kinds the class declares under `tags`.',
  ERR_POLICY_EXCEPTION_EXPIRED:
    'The policy exception that allowed this has expired. Renew it with a new expiry date, or stop caching.',
  ERR_VALUE_NOT_SERIALIZABLE:
    'Cache plain JSON values: objects, arrays, strings, finite numbers, booleans, null.',
  ERR_VALUE_TOO_LARGE: 'Cache a smaller value, or raise the store limit `maxEntryBytes`.',
  ERR_FACTORY_TIMEOUT:
    'The getOrSet factory did not settle within `factoryTimeoutMs`. Give the source a deadline of its own, or raise the option.',
  ERR_FACTORY_FAILED: 'The getOrSet factory threw. The cause is the error it threw; nothing was cached.',
  ERR_ENTRY_PURGED:
    'The entry is older than a purge or delete of one of its names, so it is refused. Read it from its source again.',
  ERR_ENVELOPE_MALFORMED:
    'The stored value is not a phicache envelope. It was written by something else or damaged.',
  ERR_ENVELOPE_VERSION:
    'The envelope was written by a newer phicache. Upgrade every instance that reads this cache.',
  ERR_ENVELOPE_AUTH:
    'The ciphertext does not belong here: it was altered, or copied from another key, tenant or class.',
  ERR_ENVELOPE_EXPIRED: 'The sealed expiry has passed; the entry is treated as a miss.',
  ERR_KEY_NOT_FOUND:
    'The data key for this entry is gone (expired, shredded or never written); the entry is a miss.',
  ERR_KEY_SERVICE_UNAVAILABLE: 'The key service did not answer. Check its health and credentials.',
  ERR_KEY_ACCESS_DENIED:
    "The key service refused this caller or this encryption context. Check the key policy and the caller's role.",
  ERR_KEY_DISABLED:
    'The key-encryption key version is disabled or destroyed. Entries wrapped under it cannot be read again.',
  ERR_KEY_STATE:
    'The key state change was refused: read the reason and the earliest safe time in the message, or run `phicache keys list`.',
  ERR_KEYRING_PRODUCTION:
    'The local keyring is for development only. Configure a KMS or HSM key provider in production.',
  ERR_KEYRING_CORRUPT:
    'The local keyring file is damaged. Restore it from a copy or delete it to start afresh.',
  ERR_STORE_UNAVAILABLE:
    'The cache store did not answer. Reads become misses and writes are dropped meanwhile.',
  ERR_PEER_MISSING:
    'Install the optional peer dependency named in the message next to phicache (`npm install <name>`).',
  ERR_AUDIT_UNAVAILABLE: 'The audit sink could not record the operation, so the operation was refused.',
  ERR_AUDIT_CHAIN_BUSY:
    'Another live process on this host writes this audit chain. Give each process its own chain id, or stop the other writer first.',
  ERR_AUDIT_CHAIN_DAMAGED:
    'A record after the last checkpoint of this chain fails its hash, link or MAC check. Run `phicache audit verify` on the directory and keep the log as evidence; start a new chain id meanwhile.',
  ERR_AUDIT_EXPORT_CONFLICT:
    'Exported files are write-once: find out why the existing file differs before removing anything, or export into a new directory.',
  ERR_AUDIT_NOTHING_TO_VERIFY:
    'Pass the directory that holds the chain folders, such as $PHICACHE_HOME/audit, or an export directory.',
  ERR_AUDIT_LOG_INVALID:
    'The audit log did not verify, so it was not exported: run `phicache audit verify` on it and look into each finding.',
  ERR_SESSION_DATA_PHI:
    'Keep internal ids in a session (subject, roles, tenant); read patient data from the system of record per request.',
  ERR_JOB_DATA_PHI:
    'Put task ids and references in job data; the worker reads the patient data from the system of record.',
  ERR_SINK_SAW_PHI:
    'Something wrote PHI-looking text to a log or other sink. Redact it at the source (see pinoRedaction) and run the check again.',
  ERR_CLI_USAGE: 'Run `phicache --help` for the commands and their flags.',
  ERR_INTERNAL: 'This is a bug in phicache. Report it with the command you ran.',
} as const satisfies Record<string, string>;

export type PhiCacheErrorCode = keyof typeof errorHints;

export const errorCodes = Object.keys(errorHints) as PhiCacheErrorCode[];

export interface PhiCacheErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class PhiCacheError extends Error {
  readonly code: PhiCacheErrorCode;
  readonly hint: string;

  constructor(code: PhiCacheErrorCode, message: string, options: PhiCacheErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PhiCacheError';
    this.code = code;
    this.hint = options.hint ?? errorHints[code];
  }
}

/** A write or read the policy refused. `rule` is the id of the rule that refused it (for example `PHI-TTL-01`). */
export class PolicyDeniedError extends PhiCacheError {
  readonly rule: string;

  constructor(code: PhiCacheErrorCode, rule: string, message: string, options: PhiCacheErrorOptions = {}) {
    super(code, `${message} (rule ${rule})`, options);
    this.name = 'PolicyDeniedError';
    this.rule = rule;
  }
}

/** One problem in a policy file, located by its path in the document and its line. */
export interface PolicyIssue {
  path: string;
  line: number | undefined;
  message: string;
}

export class PolicyInvalidError extends PhiCacheError {
  readonly issues: readonly PolicyIssue[];

  constructor(source: string, issues: readonly PolicyIssue[]) {
    const lines = issues.map(
      (i) => `  ${source}${i.line === undefined ? '' : `:${i.line}`} ${i.path}: ${i.message}`,
    );
    super('ERR_POLICY_INVALID', `policy ${source} is invalid:\n${lines.join('\n')}`);
    this.name = 'PolicyInvalidError';
    this.issues = issues;
  }
}

export function isPhiCacheError(value: unknown): value is PhiCacheError {
  return value instanceof PhiCacheError;
}
