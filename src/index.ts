export type { AuditAction, AuditEvent, AuditOutcome, AuditStream } from './audit/audit-event.js';
export type { AuditSink } from './audit/audit-sink.js';
export { JsonlFileSink, type JsonlFileSinkOptions } from './audit/jsonl-file-sink.js';
export { MemoryAuditSink } from './audit/memory-sink.js';
export {
  type AccessContext,
  type EntryRef,
  PhiCache,
  type PhiCacheEvents,
  type PhiCacheOptions,
  type SetOptions,
  type WriteReceipt,
} from './cache.js';
export type { PhiCacheErrorCode, PhiCacheErrorOptions, PolicyIssue } from './errors.js';
export {
  errorCodes,
  errorHints,
  isPhiCacheError,
  PhiCacheError,
  PolicyDeniedError,
  PolicyInvalidError,
} from './errors.js';
export type { DekCacheOptions } from './keys/dek-cache.js';
export type {
  EncryptionContext,
  GeneratedDataKey,
  KeyDomain,
  KeyProvider,
  WrappedDataKey,
} from './keys/key-provider.js';
export { LocalKeyring, type LocalKeyringOptions } from './keys/providers/local-keyring.js';
export {
  type DataClass,
  defaultPolicyPath,
  type FailureMode,
  type LintFinding,
  type LintReport,
  lintPolicy,
  loadDefaultPolicy,
  loadPolicyFile,
  Policy,
  type PolicyDecision,
  parsePolicy,
  type ScopePart,
} from './policy/index.js';
export type { CacheStore, StoreWriteOptions } from './store/cache-store.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory/memory-store.js';
