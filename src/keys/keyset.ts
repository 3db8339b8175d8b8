import { createPublicKey, type KeyObject, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import {
  type AuditKeySource,
  auditKeysFrom,
  signingKidOf,
  type WrappedAuditSecret,
} from '../audit/audit-keys.js';
import { PhiCacheError } from '../errors.js';
import type {
  EncryptionContext,
  GeneratedDataKey,
  KekDescription,
  KekProvider,
  KekProviderOpenOptions,
  KeyCallOptions,
  KeyDomain,
  KeyProvider,
  OpenKekProvider,
  WrapOptions,
  WrappedDataKey,
} from './key-provider.js';
import { kekIdentity, parseKeyUri } from './key-uri.js';
import { openKekProvider } from './open-provider.js';

/**
 * The keyset of a service (DESIGN.md §4): one JSON file, shared by every instance, that names the KEK of each
 * domain and holds, wrapped under them, the name secret (cache KEK) and the audit signing seed and stream root
 * (audit KEK). It holds nothing usable without the key service, so it may live in a config map or a secret
 * manager; every instance that loads it derives the same key names and signs audit checkpoints with the same key.
 *
 * Each secret is wrapped with a context naming its purpose, its domain and the keyset id: a wrapped secret moved to
 * another slot or into another keyset does not unwrap. The audit public key is recorded in clear so that auditors
 * can verify a log without any access to the key service; opening the keyset checks it against the seed.
 */

/** The KEK URI of each domain. The backup KEK wraps nothing in the keyset; backups use it. */
export interface KeysetKeks {
  readonly cache: string;
  readonly audit: string;
  readonly backup?: string;
}

interface WrappedSecretJson {
  kid: string;
  wrapped: string;
}

interface KeysetJson {
  format: 'phicache-keyset';
  formatVersion: 1;
  id: string;
  createdAt: string;
  allowSharedKek: boolean;
  keks: { cache: string; audit: string; backup?: string };
  cache: { nameSecret: WrappedSecretJson };
  audit: {
    signingKid: string;
    publicKey: string;
    signingSeed: WrappedSecretJson;
    streamRoot: WrappedSecretJson;
  };
}

export interface KeysetOpenOptions {
  /** Where `pin-source=env:VAR`, tokens and role ids are read from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A service endpoint per domain, when not the provider's default (a VPC endpoint, a local test server). */
  readonly endpoints?: Readonly<Partial<Record<KeyDomain, string>>>;
  /** Aborts the key service calls made while creating or opening. */
  readonly signal?: AbortSignal;
  /** How a KEK is opened from its URI. Default `openKekProvider` (the adapters under `src/keys/providers/`). */
  readonly openKek?: OpenKekProvider;
}

export interface CreateKeysetOptions extends KeysetOpenOptions {
  readonly keks: KeysetKeks;
  /** Allow one KEK for two domains. Default false: a leaked backup or audit grant would then open the cache too. */
  readonly allowSharedKek?: boolean;
  /** The clock that dates the file. Default `Date.now`. */
  readonly now?: () => number;
}

/** What a keyset gives a service once its KEKs are reachable. */
export interface OpenedKeyset {
  readonly id: string;
  /** For `PhiCache.create({ keys })`: the cache KEK and the fleet's name secret. */
  readonly cache: KeyProvider;
  /** For `openAuditKeys({ keyset })`. */
  readonly audit: AuditKeySource;
}

const FORMAT = 'phicache-keyset';
const FORMAT_VERSION = 1;

const purposes = {
  nameSecret: { 'phicache:purpose': 'name-secret', 'phicache:slot': 'cache' },
  signingSeed: { 'phicache:purpose': 'audit-signing', 'phicache:slot': 'audit' },
  streamRoot: { 'phicache:purpose': 'audit-stream', 'phicache:slot': 'audit' },
} as const;

export class Keyset {
  readonly #json: KeysetJson;

  private constructor(json: KeysetJson) {
    this.#json = json;
  }

  /** Makes a new keyset: the KEKs are opened and each secret is made by its KEK's service and kept only wrapped. */
  static async create(options: CreateKeysetOptions): Promise<Keyset> {
    const keks = checkedKeks(
      options.keks,
      options.allowSharedKek === true,
      (message) => new RangeError(message),
    );
    const id = `ks_${randomBytes(16).toString('hex')}`;
    const call = options.signal ? { signal: options.signal } : {};
    const cache = await openDomain('cache', keks.cache, options);
    const audit = await openDomain('audit', keks.audit, options);
    if (keks.backup !== undefined)
      await proveUsable(await openDomain('backup', keks.backup, options), id, call);
    const nameSecret = await cache.generateDataKey(contextOf('nameSecret', id), call);
    nameSecret.plaintext.fill(0);
    const seed = await audit.generateDataKey(contextOf('signingSeed', id), call);
    const root = await audit.generateDataKey(contextOf('streamRoot', id), call);
    const { publicKey, signingKid } = auditKeysFrom(seed.plaintext, root.plaintext);
    seed.plaintext.fill(0);
    root.plaintext.fill(0);
    return new Keyset({
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      id,
      createdAt: new Date((options.now ?? Date.now)()).toISOString(),
      allowSharedKek: options.allowSharedKek === true,
      keks: {
        cache: keks.cache,
        audit: keks.audit,
        ...(keks.backup === undefined ? {} : { backup: keks.backup }),
      },
      cache: { nameSecret: wrappedJson(nameSecret) },
      audit: {
        signingKid,
        publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
        signingSeed: wrappedJson(seed),
        streamRoot: wrappedJson(root),
      },
    });
  }

  /** Reads and checks a keyset file; no key service is called. */
  static async read(path: string): Promise<Keyset> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new PhiCacheError('ERR_KEYRING_CORRUPT', `the keyset file ${path} cannot be read (${code})`, {
        cause,
        hint: 'Check the path (PHICACHE_KEYSET or --keyset), or make a keyset with `phicache keys init`.',
      });
    }
    return Keyset.parse(text);
  }

  /** Checks a keyset document: its format and version, its key URIs, and one KEK per domain unless allowed. */
  static parse(text: string): Keyset {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw corrupt('the keyset file is not valid JSON', cause);
    }
    const file = json as Partial<KeysetJson> | null;
    if (file?.format !== FORMAT) throw corrupt('the file is not a phicache keyset');
    if (file.formatVersion !== FORMAT_VERSION) {
      throw new PhiCacheError(
        'ERR_KEYRING_CORRUPT',
        `keyset format version ${String(file.formatVersion)} is not known`,
        {
          hint: `This phicache reads keyset format version ${FORMAT_VERSION}. Upgrade phicache on this instance.`,
        },
      );
    }
    if (!isShaped(file)) throw corrupt('the keyset file does not have the expected fields');
    if (!publicKeyMatches(file.audit))
      throw corrupt('the audit public key does not match its recorded fingerprint');
    try {
      checkedKeks(file.keks, file.allowSharedKek, (message) => corrupt(message));
    } catch (error) {
      if (error instanceof RangeError)
        throw corrupt(`the keyset names an invalid KEK (${error.message})`, error);
      throw error;
    }
    return new Keyset(structuredClone(file));
  }

  /** Reads a keyset file and opens its cache and audit KEKs. */
  static async open(path: string, options: KeysetOpenOptions = {}): Promise<OpenedKeyset> {
    return (await Keyset.read(path)).open(options);
  }

  get id(): string {
    return this.#json.id;
  }

  get keks(): KeysetKeks {
    return { ...this.#json.keks };
  }

  /** The audit signing public key: enough to verify checkpoints, with no access to the key service. */
  get publicKey(): KeyObject {
    return createPublicKey(this.#json.audit.publicKey);
  }

  get signingKid(): string {
    return this.#json.audit.signingKid;
  }

  async open(options: KeysetOpenOptions = {}): Promise<OpenedKeyset> {
    return { id: this.id, cache: await this.openCache(options), audit: await this.openAudit(options) };
  }

  /** Only the cache KEK: what a command that needs key names (and no audit keys) opens. */
  async openCache(options: KeysetOpenOptions = {}): Promise<KeyProvider> {
    const provider = await openDomain('cache', this.#json.keks.cache, options);
    return new KeysetKeyProvider(
      provider,
      secretOf(this.#json.cache.nameSecret, contextOf('nameSecret', this.id)),
    );
  }

  async openAudit(options: KeysetOpenOptions = {}): Promise<AuditKeySource> {
    const { audit } = this.#json;
    return {
      provider: await openDomain('audit', this.#json.keks.audit, options),
      signing: secretOf(audit.signingSeed, contextOf('signingSeed', this.id)),
      stream: secretOf(audit.streamRoot, contextOf('streamRoot', this.id)),
      signingKid: audit.signingKid,
    };
  }

  /**
   * The same keyset (same id, same secrets, so the same key names) with its name secret rewrapped under the cache
   * KEK version `kid`: after a rotation, the file to deploy before the old version is disabled in the key service,
   * since the name secret is unwrapped at every start. Never changes this keyset's own file (see `writeTo`).
   */
  async withNameSecretUnder(kid: string, options: KeysetOpenOptions = {}): Promise<Keyset> {
    const { nameSecret } = this.#json.cache;
    if (nameSecret.kid === kid) return this;
    const provider = await openDomain('cache', this.#json.keks.cache, options);
    try {
      const secret = secretOf(nameSecret, contextOf('nameSecret', this.id));
      const rewrapped = await provider.rewrapDataKey(secret.key, secret.context, {
        kid,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      const json = structuredClone(this.#json);
      json.cache.nameSecret = wrappedJson(rewrapped);
      return new Keyset(json);
    } finally {
      await provider.close?.();
    }
  }

  /** The KEK version the name secret is wrapped under. */
  get nameSecretKid(): string {
    return this.#json.cache.nameSecret.kid;
  }

  /** Writes the keyset as a new file; an existing file is never replaced (it may be the fleet's only copy). */
  async writeTo(path: string): Promise<void> {
    try {
      await writeFile(path, `${JSON.stringify(this.#json, null, 2)}\n`, { mode: 0o644, flag: 'wx' });
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        throw new PhiCacheError('ERR_CLI_USAGE', `${path} exists; a keyset is never overwritten`, {
          cause,
          hint: 'Choose another --out. Replacing a keyset in use would change every key name and the audit signing key.',
        });
      }
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        `the keyset cannot be written to ${path} (${code ?? 'unknown error'})`,
        {
          cause,
        },
      );
    }
  }

  toJSON(): unknown {
    return structuredClone(this.#json);
  }
}

/** The cache KEK, with the name secret the keyset holds wrapped under it. */
class KeysetKeyProvider implements KeyProvider {
  readonly #kek: KekProvider;
  readonly #nameSecret: WrappedAuditSecret;

  constructor(kek: KekProvider, nameSecret: WrappedAuditSecret) {
    this.#kek = kek;
    this.#nameSecret = nameSecret;
  }

  get name(): string {
    return this.#kek.name;
  }

  currentKid(): string {
    return this.#kek.currentKid();
  }

  generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
    return this.#kek.generateDataKey(context, options);
  }

  unwrapDataKey(key: WrappedDataKey, context: EncryptionContext, options?: KeyCallOptions): Promise<Buffer> {
    return this.#kek.unwrapDataKey(key, context, options);
  }

  rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey> {
    return this.#kek.rewrapDataKey(key, context, options);
  }

  describeKek(options?: KeyCallOptions): Promise<KekDescription> {
    return this.#kek.describeKek(options);
  }

  createVersion(options?: KeyCallOptions): Promise<string> {
    if (this.#kek.createVersion === undefined) return Promise.reject(cannotCreateVersion(this.#kek.name));
    return this.#kek.createVersion(options);
  }

  nameSecret(options?: KeyCallOptions): Promise<Buffer> {
    return this.#kek.unwrapDataKey(this.#nameSecret.key, this.#nameSecret.context, options);
  }

  nameSecretKid(): string {
    return this.#nameSecret.key.kid;
  }

  async close(): Promise<void> {
    await this.#kek.close?.();
  }
}

export function cannotCreateVersion(provider: string): PhiCacheError {
  return new PhiCacheError(
    'ERR_KEY_STATE',
    `the ${provider} KEK cannot make a version that waits to be promoted`,
    {
      hint: 'Rotate the key in the key service itself (AWS KMS rotates its backing keys inside the key, keeping the kid); phicache then rewraps data keys with `phicache keys rewrap`.',
    },
  );
}

/** Every URI parses, and no two domains share a KEK unless the keyset says so. */
function checkedKeks(keks: KeysetKeks, allowShared: boolean, refuse: (message: string) => Error): KeysetKeks {
  const domains = (['cache', 'audit', 'backup'] as const).filter((d) => keks[d] !== undefined);
  const seen = new Map<string, KeyDomain>();
  for (const domain of domains) {
    const identity = kekIdentity(parseKeyUri(keks[domain]!), domain);
    const other = seen.get(identity);
    if (other !== undefined && !allowShared) {
      throw refuse(
        `the ${other} and ${domain} domains name the same KEK; use a KEK per domain, or allow a shared KEK explicitly (allowSharedKek, keys init --allow-shared-kek)`,
      );
    }
    seen.set(identity, domain);
  }
  return keks;
}

async function openDomain(domain: KeyDomain, uri: string, options: KeysetOpenOptions): Promise<KekProvider> {
  const endpoint = options.endpoints?.[domain];
  const open: KekProviderOpenOptions = {
    domain,
    ...(options.env ? { env: options.env } : {}),
    ...(endpoint ? { endpoint } : {}),
  };
  return (options.openKek ?? ((u, o) => openKekProvider(u, o)))(uri, open);
}

/** A round trip under the backup KEK, so that a keyset naming a KEK nobody can use is caught when it is made. */
async function proveUsable(provider: KekProvider, id: string, call: KeyCallOptions): Promise<void> {
  const context = { 'phicache:purpose': 'keyset-check', 'phicache:slot': 'backup', 'phicache:keyset': id };
  const probe = await provider.generateDataKey(context, call);
  const back = await provider.unwrapDataKey(probe, context, call);
  const same = back.equals(probe.plaintext);
  back.fill(0);
  probe.plaintext.fill(0);
  if (!same)
    throw new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      'the backup KEK did not return the key it wrapped',
    );
}

function contextOf(secret: keyof typeof purposes, keysetId: string): EncryptionContext {
  return { ...purposes[secret], 'phicache:keyset': keysetId };
}

function wrappedJson(key: WrappedDataKey): WrappedSecretJson {
  return { kid: key.kid, wrapped: key.wrapped.toString('base64') };
}

function secretOf(json: WrappedSecretJson, context: EncryptionContext): WrappedAuditSecret {
  return { key: { kid: json.kid, wrapped: Buffer.from(json.wrapped, 'base64') }, context };
}

function isShaped(file: Partial<KeysetJson>): file is KeysetJson {
  const isString = (v: unknown): v is string => typeof v === 'string' && v !== '';
  const isWrapped = (w: unknown) =>
    isString((w as WrappedSecretJson | undefined)?.kid) &&
    isString((w as WrappedSecretJson | undefined)?.wrapped) &&
    /^[A-Za-z0-9+/]+={0,2}$/.test((w as WrappedSecretJson).wrapped);
  return (
    isString(file.id) &&
    /^ks_[0-9a-f]{32}$/.test(file.id) &&
    isString(file.createdAt) &&
    typeof file.allowSharedKek === 'boolean' &&
    isString(file.keks?.cache) &&
    isString(file.keks?.audit) &&
    (file.keks?.backup === undefined || isString(file.keks.backup)) &&
    isWrapped(file.cache?.nameSecret) &&
    isString(file.audit?.signingKid) &&
    isString(file.audit?.publicKey) &&
    isWrapped(file.audit?.signingSeed) &&
    isWrapped(file.audit?.streamRoot)
  );
}

function publicKeyMatches(audit: KeysetJson['audit']): boolean {
  try {
    const key = createPublicKey(audit.publicKey);
    return key.asymmetricKeyType === 'ed25519' && signingKidOf(key) === audit.signingKid;
  } catch {
    return false;
  }
}

function corrupt(message: string, cause?: unknown): PhiCacheError {
  return new PhiCacheError('ERR_KEYRING_CORRUPT', message, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Restore the keyset file from its source, or make a new one with `phicache keys init` (new key names, new audit key).',
  });
}
