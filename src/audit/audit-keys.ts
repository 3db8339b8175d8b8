import { createHash, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { canonicalEncode } from '../crypto/canonical.js';
import { PhiCacheError } from '../errors.js';
import type {
  EncryptionContext,
  KekProvider,
  KeyCallOptions,
  KeyProvider,
  WrappedDataKey,
} from '../keys/key-provider.js';
import { phicacheHome } from '../runtime/phicache-home.js';

/** Keys of the audit trail: an Ed25519 pair that signs checkpoints, and the root of the record MAC keys. */
export interface AuditKeys {
  /** `ed25519:<16 hex>`, a fingerprint of the public key. */
  readonly signingKid: string;
  readonly signingKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The MAC key of one epoch, derived from the stream root. */
  streamKey(epoch: number): Buffer;
}

/** One MAC epoch per hour: the epoch a record claims must be the hour of its timestamp. */
export const MAC_EPOCH_MS = 3_600_000;

export function macEpochOf(ts: number): number {
  return Math.floor(ts / MAC_EPOCH_MS);
}

/** Stream key of an epoch: HKDF of the root, so the holder of the root can check every epoch. */
export function deriveStreamKey(root: Buffer, epoch: number): Buffer {
  return Buffer.from(hkdfSync('sha256', root, 'phicache/audit-mac/v1', canonicalEncode([epoch]), 32));
}

/** Builds audit keys from the two 32-byte secrets (the signing seed and the stream root). */
export function auditKeysFrom(signingSeed: Buffer, streamRoot: Buffer): AuditKeys {
  const signingKey = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, signingSeed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(signingKey);
  const epochs = new Map<number, Buffer>();
  return Object.freeze({
    signingKid: signingKidOf(publicKey),
    signingKey,
    publicKey,
    streamKey(epoch: number): Buffer {
      let key = epochs.get(epoch);
      if (key === undefined) {
        key = deriveStreamKey(streamRoot, epoch);
        if (epochs.size > 64) epochs.clear();
        epochs.set(epoch, key);
      }
      return key;
    },
  });
}

export function signingKidOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: 'der', type: 'spki' });
  return `ed25519:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
}

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

interface AuditKeyFile {
  format: 'phicache-audit-keys';
  formatVersion: 1;
  signing: { kid: string; wrapped: string };
  stream: { kid: string; wrapped: string };
}

/** Audit keys kept on this machine: made on first use under PHICACHE_HOME (the development set-up). */
export interface OpenLocalAuditKeysOptions {
  /** Wraps the two secrets; use a provider of the `audit` domain, apart from the cache KEK. */
  readonly provider: KeyProvider;
  /** Default `$PHICACHE_HOME`. The wrapped secrets go to `keyring/audit-keys.json`, the public key to `audit-signing.pub`. */
  readonly home?: string;
}

/** One secret of a keyset: wrapped under the audit KEK, with the context it was wrapped with. */
export interface WrappedAuditSecret {
  readonly key: WrappedDataKey;
  readonly context: EncryptionContext;
}

/**
 * Audit keys from a keyset (see `openKeyset`): every instance of a fleet unwraps the same two secrets, so all of
 * them sign with one key that auditors know in advance, and nothing is written to the local disk.
 */
export interface AuditKeySource {
  readonly provider: KekProvider;
  readonly signing: WrappedAuditSecret;
  readonly stream: WrappedAuditSecret;
  /** The fingerprint the keyset recorded for the signing key; a seed that gives another key is refused. */
  readonly signingKid: string;
}

export type OpenAuditKeysOptions =
  | OpenLocalAuditKeysOptions
  | { readonly keyset: AuditKeySource; readonly signal?: AbortSignal };

const SIGNING_CONTEXT = { purpose: 'phicache/audit-signing' };
const STREAM_CONTEXT = { purpose: 'phicache/audit-stream' };

/**
 * Opens (or creates on first use) the audit keys: both secrets are made by the key provider and kept only wrapped,
 * and the public key is written next to them for auditors, who need nothing else to verify checkpoints.
 */
export async function openAuditKeys(options: OpenAuditKeysOptions): Promise<AuditKeys> {
  if ('keyset' in options) {
    return auditKeysFromKeyset(options.keyset, options.signal ? { signal: options.signal } : {});
  }
  return openLocalAuditKeys(options);
}

async function auditKeysFromKeyset(source: AuditKeySource, call: KeyCallOptions): Promise<AuditKeys> {
  const seed = await source.provider.unwrapDataKey(source.signing.key, source.signing.context, call);
  let root: Buffer;
  try {
    root = await source.provider.unwrapDataKey(source.stream.key, source.stream.context, call);
  } catch (error) {
    seed.fill(0);
    throw error;
  }
  const keys = auditKeysFrom(seed, root);
  seed.fill(0);
  if (keys.signingKid !== source.signingKid) {
    throw new PhiCacheError(
      'ERR_KEYRING_CORRUPT',
      `the keyset's audit signing key does not match its recorded fingerprint ${source.signingKid}`,
      { hint: 'The keyset file was altered or assembled from two keysets. Restore it from its source.' },
    );
  }
  return keys;
}

async function openLocalAuditKeys(options: OpenLocalAuditKeysOptions): Promise<AuditKeys> {
  const home = options.home ?? phicacheHome();
  const path = join(home, 'keyring', 'audit-keys.json');
  let file: AuditKeyFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as AuditKeyFile;
    if (file.format !== 'phicache-audit-keys' || file.formatVersion !== 1) throw new Error('wrong shape');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new PhiCacheError('ERR_KEYRING_CORRUPT', 'the audit key file cannot be read', { cause: error });
    }
    const signing = await options.provider.generateDataKey(SIGNING_CONTEXT);
    const stream = await options.provider.generateDataKey(STREAM_CONTEXT);
    file = {
      format: 'phicache-audit-keys',
      formatVersion: 1,
      signing: { kid: signing.kid, wrapped: signing.wrapped.toString('base64') },
      stream: { kid: stream.kid, wrapped: stream.wrapped.toString('base64') },
    };
    signing.plaintext.fill(0);
    stream.plaintext.fill(0);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    try {
      await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    } catch (raced) {
      if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
      return openLocalAuditKeys(options);
    }
  }
  const seed = await options.provider.unwrapDataKey(
    { kid: file.signing.kid, wrapped: Buffer.from(file.signing.wrapped, 'base64') },
    SIGNING_CONTEXT,
  );
  const root = await options.provider.unwrapDataKey(
    { kid: file.stream.kid, wrapped: Buffer.from(file.stream.wrapped, 'base64') },
    STREAM_CONTEXT,
  );
  const keys = auditKeysFrom(seed, root);
  seed.fill(0);
  await writeFile(join(home, 'audit-signing.pub'), keys.publicKey.export({ format: 'pem', type: 'spki' }));
  return keys;
}
