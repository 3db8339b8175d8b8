export { type CanonicalPart, canonicalEncode } from './canonical.js';
export {
  DEFAULT_MAX_ENVELOPE_BYTES,
  DEK_BYTES,
  DEK_ID_BYTES,
  ENVELOPE_ALG_AES_256_GCM,
  ENVELOPE_VERSION,
  type EnvelopeBinding,
  type EnvelopeHeader,
  KID_MAX_BYTES,
  MIN_ENVELOPE_BYTES,
  openEnvelope,
  type ParsedEnvelope,
  PreparedBinding,
  parseEnvelope,
  sealEnvelope,
  TAG_BYTES,
} from './envelope.js';
export { deriveTenantNameKey, hmacName, NAME_KEY_BYTES } from './key-name.js';
export { NONCE_BYTES, NoncePool } from './nonce-pool.js';
