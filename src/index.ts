export type { AuditAction, AuditEvent, AuditOutcome, AuditStream } from './audit/audit-event.js';
export {
  type AuditKeySource,
  type AuditKeys,
  auditKeysFrom,
  MAC_EPOCH_MS,
  type OpenAuditKeysOptions,
  type OpenLocalAuditKeysOptions,
  openAuditKeys,
  type WrappedAuditSecret,
} from './audit/audit-keys.js';
export type { AuditSink } from './audit/audit-sink.js';
export { AuditTrail, type AuditTrailEvents, type AuditTrailOptions } from './audit/audit-trail.js';
export {
  AuditLogInvalidError,
  type ExportManifest,
  type ExportOptions,
  exportAuditLog,
  verifyExportManifest,
} from './audit/export.js';
export { MemoryAuditSink } from './audit/memory-sink.js';
export { listAuditLog, readAuditLog } from './audit/read-log.js';
export type { AuditRecord, Checkpoint } from './audit/record.js';
export { type CheckpointWitness, DirectoryWitness } from './audit/sinks/checkpoint-witness.js';
export { FileSink, type FileSinkOptions } from './audit/sinks/file-sink.js';
export { HttpForwarder, type HttpForwarderOptions } from './audit/sinks/http-forwarder.js';
export type { RecordSink } from './audit/sinks/record-sink.js';
export { StdoutSink } from './audit/sinks/stdout-sink.js';
export {
  type AuditLogFile,
  type Finding,
  type FindingKind,
  type Notice,
  type NoticeKind,
  type VerifyOptions,
  type VerifyReport,
  verifyAuditDirectory,
  verifyAuditLog,
} from './audit/verify.js';
export {
  type AccessContext,
  type EntryRef,
  PhiCache,
  type PhiCacheEvents,
  type PhiCacheOptions,
  type SetOptions,
  type WriteReceipt,
} from './cache.js';
export {
  findPhi,
  findPhiInValue,
  isPhiFieldName,
  isValidNpi,
  isValidSsn,
  looksLikePhi,
  PHI_FIELD_NAMES,
  type PhiFinding,
  type PhiKind,
  type PhiMatch,
} from './detect/phi-detectors.js';
export { type PinoRedaction, type PinoRedactionOptions, pinoRedaction } from './detect/pino-redaction.js';
export type { PhiCacheErrorCode, PhiCacheErrorOptions, PolicyIssue } from './errors.js';
export {
  errorCodes,
  errorHints,
  isPhiCacheError,
  PhiCacheError,
  PolicyDeniedError,
  PolicyInvalidError,
} from './errors.js';
export * from './http/index.js';
export * from './jobs/index.js';
export type { DekCacheOptions } from './keys/dek-cache.js';
export type {
  EncryptionContext,
  GeneratedDataKey,
  KekProvider,
  KekProviderOpenOptions,
  KeyDomain,
  KeyProvider,
  OpenKekProvider,
  WrappedDataKey,
} from './keys/key-provider.js';
export {
  type AwsKmsKeyUri,
  type GcpKmsKeyUri,
  type KeyUri,
  KeyUriError,
  type KeyUriScheme,
  type LocalKeyUri,
  type Pkcs11KeyUri,
  parseKeyUri,
  type VaultTransitKeyUri,
} from './keys/key-uri.js';
export {
  type CreateKeysetOptions,
  Keyset,
  type KeysetKeks,
  type KeysetOpenOptions,
  type OpenedKeyset,
} from './keys/keyset.js';
export { openKekProvider } from './keys/open-provider.js';
export { LocalKeyring, type LocalKeyringOptions } from './keys/providers/local-keyring.js';
export { type TtlAuditOptions, type TtlAuditReport, type TtlFinding, ttlAudit } from './ops/ttl-audit.js';
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
export * from './rate-limit/index.js';
export { phicacheHome } from './runtime/phicache-home.js';
export {
  type OpenSecretSourceOptions,
  openSecretSource,
  type SecretReadOptions,
  type SecretSource as SecretReferenceSource,
} from './secrets/index.js';
export * from './session/index.js';
export type { CacheStore, StoredEntry, StoreWriteOptions } from './store/cache-store.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory/memory-store.js';
export * from './store/redis/index.js';
export { PhiSinkCheck, type SinkFinding } from './testing/phi-sink-check.js';
export * from './tiers/index.js';
