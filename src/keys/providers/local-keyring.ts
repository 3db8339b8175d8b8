import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalEncode } from '../../crypto/canonical.js';
import { PhiCacheError } from '../../errors.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import type {
  EncryptionContext,
  GeneratedDataKey,
  KekDescription,
  KeyCallOptions,
  KeyDomain,
  KeyProvider,
  WrapOptions,
  WrappedDataKey,
} from '../key-provider.js';
import { DATA_KEY_BYTES } from '../key-provider.js';

export interface LocalKeyringOptions {
  /** Where the keyring lives. Default: `$PHICACHE_HOME`, else `./.phicache`. */
  readonly home?: string;
  /** Which KEK this keyring serves. Default `cache`. */
  readonly domain?: KeyDomain;
  /** The environment consulted for `NODE_ENV` and `PHICACHE_HOME`. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

interface KekRecord {
  version: number;
  /** `pending`: made by `createVersion`, wraps only when a wrap names it. */
  state: 'active' | 'decrypt-only' | 'pending';
  createdAt: string;
  material: string;
}

interface KeyringFile {
  format: 'phicache-local-keyring';
  formatVersion: 1;
  domain: KeyDomain;
  keks: KekRecord[];
  nameSecret: { kid: string; wrapped: string };
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A development keyring: KEKs kept in a file under PHICACHE_HOME (mode 0600). It stands in for a KMS so the
 * library runs with no cloud account, and it refuses to start in production, where a KEK on the application's
 * own disk would defeat envelope encryption.
 */
export class LocalKeyring implements KeyProvider {
  readonly name = 'local';
  readonly #domain: KeyDomain;
  readonly #path: string;
  #keks: ReadonlyMap<number, Buffer> = new Map();
  #active = 0;
  #states: ReadonlyMap<number, KekRecord['state']> = new Map();
  readonly #nameSecret: { kid: string; wrapped: Buffer };

  private constructor(file: KeyringFile, path: string) {
    this.#domain = file.domain;
    this.#path = path;
    this.#load(file);
    this.#nameSecret = { kid: file.nameSecret.kid, wrapped: Buffer.from(file.nameSecret.wrapped, 'base64') };
  }

  #load(file: KeyringFile): void {
    this.#keks = new Map(file.keks.map((k) => [k.version, Buffer.from(k.material, 'base64')]));
    this.#states = new Map(file.keks.map((k) => [k.version, k.state]));
    this.#active = Math.max(...file.keks.filter((k) => k.state === 'active').map((k) => k.version));
  }

  /** Opens the keyring of the domain, creating it on first use. */
  static async open(options: LocalKeyringOptions = {}): Promise<LocalKeyring> {
    const env = options.env ?? process.env;
    if (env.NODE_ENV === 'production') {
      throw new PhiCacheError(
        'ERR_KEYRING_PRODUCTION',
        'the local keyring refuses to run with NODE_ENV=production',
      );
    }
    const domain = options.domain ?? 'cache';
    const dir = join(options.home ?? phicacheHome(env), 'keyring');
    const path = join(dir, `${domain}.json`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = (await readKeyring(path)) ?? (await createKeyring(path, domain));
    return new LocalKeyring(file, path);
  }

  currentKid(): string {
    return kidOf(this.#domain, this.#active);
  }

  async generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
    options?.signal?.throwIfAborted();
    const kid = options?.kid ?? this.currentKid();
    const kek = await this.#kekFor(kid);
    const plaintext = randomBytes(DATA_KEY_BYTES);
    return { kid, plaintext, wrapped: wrap(kek, kid, plaintext, context) };
  }

  async unwrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: KeyCallOptions,
  ): Promise<Buffer> {
    options?.signal?.throwIfAborted();
    return unwrap(await this.#kekFor(key.kid), key.kid, key.wrapped, context);
  }

  async rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey> {
    options?.signal?.throwIfAborted();
    const kid = options?.kid ?? this.currentKid();
    const kek = await this.#kekFor(kid);
    const plaintext = unwrap(await this.#kekFor(key.kid), key.kid, key.wrapped, context);
    try {
      return { kid, wrapped: wrap(kek, kid, plaintext, context) };
    } finally {
      plaintext.fill(0);
    }
  }

  /**
   * Adds a KEK version to the keyring file, under a lock file so that two processes rotating at once make two
   * versions rather than one overwriting the other. The new version is `pending` here: it wraps only when asked.
   */
  async createVersion(options?: KeyCallOptions): Promise<string> {
    options?.signal?.throwIfAborted();
    const file = await withKeyringLock(this.#path, async () => {
      const current = await readKeyring(this.#path);
      if (current === undefined) throw new PhiCacheError('ERR_KEYRING_CORRUPT', 'the local keyring is gone');
      const version = Math.max(...current.keks.map((k) => k.version)) + 1;
      current.keks.push({
        version,
        state: 'pending',
        createdAt: new Date().toISOString(),
        material: randomBytes(32).toString('base64'),
      });
      await replaceKeyring(this.#path, current);
      return current;
    });
    this.#load(file);
    return kidOf(this.#domain, Math.max(...file.keks.map((k) => k.version)));
  }

  /**
   * The KEK of a kid. A version made by another process after this one opened the file is read from the file:
   * every instance can unwrap under a version as soon as it is published.
   */
  async #kekFor(kid: string): Promise<Buffer> {
    if (!this.#keks.has(versionOf(this.#domain, kid))) {
      const file = await readKeyring(this.#path);
      if (file !== undefined) this.#load(file);
    }
    return this.#kek(kid);
  }

  async describeKek(): Promise<KekDescription> {
    const versions = [...this.#keks.keys()].sort((a, b) => a - b);
    return {
      uri: `local:${this.#domain}`,
      current: this.currentKid(),
      versions: versions.map((version) => ({
        kid: kidOf(this.#domain, version),
        state: this.#states.get(version) ?? 'active',
      })),
    };
  }

  async nameSecret(): Promise<Buffer> {
    const { kid, wrapped } = this.#nameSecret;
    return unwrap(this.#kek(kid), kid, wrapped, NAME_SECRET_CONTEXT);
  }

  #kek(kid: string): Buffer {
    const kek = this.#keks.get(versionOf(this.#domain, kid));
    if (kek === undefined)
      throw new PhiCacheError('ERR_KEY_NOT_FOUND', `KEK ${kid} is not in the local keyring`);
    return kek;
  }
}

const NAME_SECRET_CONTEXT: EncryptionContext = { purpose: 'phicache/name-secret' };

function kidOf(domain: KeyDomain, version: number): string {
  return `local:${domain}:v${version}`;
}

function versionOf(domain: KeyDomain, kid: string): number {
  const prefix = `local:${domain}:v`;
  return kid.startsWith(prefix) ? Number(kid.slice(prefix.length)) : Number.NaN;
}

function aadOf(kid: string, context: EncryptionContext): Buffer {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return canonicalEncode(['phicache/local-wrap/v1', kid, ...entries.flat()]);
}

function wrap(kek: Buffer, kid: string, plaintext: Buffer, context: EncryptionContext): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce);
  cipher.setAAD(aadOf(kid, context));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function unwrap(kek: Buffer, kid: string, wrapped: Buffer, context: EncryptionContext): Buffer {
  if (wrapped.length !== NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES) {
    throw new PhiCacheError('ERR_ENVELOPE_AUTH', `wrapped data key under ${kid} has the wrong length`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, NONCE_BYTES));
    decipher.setAAD(aadOf(kid, context));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(wrapped.subarray(NONCE_BYTES, wrapped.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch (cause) {
    throw new PhiCacheError('ERR_ENVELOPE_AUTH', `wrapped data key under ${kid} failed authentication`, {
      cause,
    });
  }
}

async function readKeyring(path: string): Promise<KeyringFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PhiCacheError('ERR_KEYRING_CORRUPT', 'the local keyring could not be read', { cause: error });
  }
  try {
    const file = JSON.parse(text) as KeyringFile;
    const ok =
      file.format === 'phicache-local-keyring' &&
      file.formatVersion === 1 &&
      Array.isArray(file.keks) &&
      file.keks.some((k) => k.state === 'active') &&
      file.keks.every((k) => ['active', 'decrypt-only', 'pending'].includes(k.state)) &&
      file.keks.every(
        (k) => Number.isInteger(k.version) && Buffer.from(k.material, 'base64').length === 32,
      ) &&
      typeof file.nameSecret?.wrapped === 'string';
    if (ok) return file;
  } catch (cause) {
    throw new PhiCacheError('ERR_KEYRING_CORRUPT', 'the local keyring is not valid JSON', { cause });
  }
  throw new PhiCacheError('ERR_KEYRING_CORRUPT', 'the local keyring does not have the expected shape');
}

/** Rewrites the keyring through a temporary file and a rename, so a reader sees the old file or the new one. */
async function replaceKeyring(path: string, file: KeyringFile): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  await rename(temporary, path);
}

/** Runs `body` holding `<path>.lock` (made with O_EXCL); waits up to 5 s for another holder. */
async function withKeyringLock<T>(path: string, body: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  for (let waited = 0; ; waited += 20) {
    try {
      await writeFile(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || waited >= 5000) {
        throw new PhiCacheError('ERR_KEYRING_CORRUPT', `the local keyring lock ${lock} could not be taken`, {
          cause: error,
          hint: 'Another process is changing the keyring; if none is, delete the .lock file.',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    return await body();
  } finally {
    await unlink(lock).catch(() => undefined);
  }
}

/**
 * Creates the keyring atomically: written to a private temporary file, then hard-linked into place, which fails
 * if another process won the race; the loser reads the winner's file, so all processes share one keyring.
 */
async function createKeyring(path: string, domain: KeyDomain): Promise<KeyringFile> {
  const kek = randomBytes(32);
  const kid = kidOf(domain, 1);
  const secret = randomBytes(32);
  const file: KeyringFile = {
    format: 'phicache-local-keyring',
    formatVersion: 1,
    domain,
    keks: [
      { version: 1, state: 'active', createdAt: new Date().toISOString(), material: kek.toString('base64') },
    ],
    nameSecret: { kid, wrapped: wrap(kek, kid, secret, NAME_SECRET_CONTEXT).toString('base64') },
  };
  secret.fill(0);
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await link(temporary, path);
    return file;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readKeyring(path);
    if (winner === undefined) throw error;
    return winner;
  } finally {
    await unlink(temporary);
  }
}
