import { PhiCacheError } from '../../errors.js';
import { loadPeer } from '../../runtime/load-peer.js';
import type {
  EncryptionContext,
  GeneratedDataKey,
  KekDescription,
  KekProvider,
  KekState,
  KeyCallOptions,
  KeyDomain,
  OpenKekProvider,
  WrapOptions,
  WrappedDataKey,
} from '../key-provider.js';
import { DATA_KEY_BYTES } from '../key-provider.js';
import { mapAwsKmsError } from './aws-kms-errors.js';
import { type AwsKmsKeyUri, isAwsKmsKeyArn, parseAwsKmsUri } from './aws-kms-uri.js';

type KmsSdk = typeof import('@aws-sdk/client-kms');
type KmsClient = InstanceType<KmsSdk['KMSClient']>;

const PEER = '@aws-sdk/client-kms';

/**
 * Attempts per call, the first included. The SDK backs off with jitter between them (throttling from 500 ms up);
 * the caller's deadline still ends the call, so a long backoff turns into ERR_KEY_SERVICE_UNAVAILABLE, not a hang.
 */
const MAX_ATTEMPTS = 4;

/** Bounds one HTTP exchange when a caller passes no signal; the caller's deadline is normally much shorter. */
const REQUEST_TIMEOUT_MS = 30_000;

/** The context key that binds a data key to its domain, so a backup or audit key never opens as a cache key. */
const DOMAIN_CONTEXT_KEY = 'phicache:domain';

/**
 * Opens the KEK named by `aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID` (or an alias ARN). The region comes from
 * the ARN; credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` in `options.env`
 * when it holds them, else from the SDK's default chain (environment, profile, web identity, container, IMDS).
 * An alias is resolved to its key once here (DescribeKey), so data keys record the key that really wrapped them
 * and still unwrap after the alias moves to another key.
 */
export const openKekProvider: OpenKekProvider = async (uri, options) => {
  const key = parseAwsKmsUri(uri);
  const sdk = await loadKmsSdk();
  const credentials = credentialsFrom(options.env);
  const client = new sdk.KMSClient({
    region: key.region,
    maxAttempts: MAX_ATTEMPTS,
    retryMode: 'standard',
    requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS, connectionTimeout: REQUEST_TIMEOUT_MS },
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
  });
  const provider = new AwsKmsKekProvider(sdk, client, key, options.domain);
  if (key.kind === 'alias') await provider.resolveAlias();
  return provider;
};

/**
 * Data keys under one AWS KMS key: GenerateDataKey (AES_256), Decrypt and ReEncrypt, each with an encryption
 * context that binds the caller's ids and the domain. KMS checks the context itself and CloudTrail records it,
 * which is why it holds ids only.
 */
export class AwsKmsKekProvider implements KekProvider {
  readonly name = 'aws-kms';
  readonly #sdk: KmsSdk;
  readonly #client: KmsClient;
  readonly #key: AwsKmsKeyUri;
  readonly #domain: KeyDomain;
  /** The key ARN new data keys come from; moves when an alias is found pointing at another key. */
  #current: string;

  constructor(sdk: KmsSdk, client: KmsClient, key: AwsKmsKeyUri, domain: KeyDomain) {
    this.#sdk = sdk;
    this.#client = client;
    this.#key = key;
    this.#domain = domain;
    this.#current = key.arn;
  }

  currentKid(): string {
    return this.#current;
  }

  async resolveAlias(options?: KeyCallOptions): Promise<void> {
    const described = await this.#send(
      'DescribeKey',
      (o) => this.#client.send(new this.#sdk.DescribeKeyCommand({ KeyId: this.#key.arn }), o),
      options?.signal,
    );
    const arn = described.KeyMetadata?.Arn;
    if (arn === undefined) throw badAnswer('DescribeKey named no key');
    this.#current = arn;
  }

  async generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
    const keyId = this.#destination(options);
    const output = await this.#send(
      'GenerateDataKey',
      (o) =>
        this.#client.send(
          new this.#sdk.GenerateDataKeyCommand({
            KeyId: keyId,
            KeySpec: 'AES_256',
            EncryptionContext: this.#bind(context),
          }),
          o,
        ),
      options?.signal,
      (late) => late.Plaintext?.fill(0),
    );
    const plaintext = output.Plaintext;
    const wrapped = output.CiphertextBlob;
    if (plaintext?.length !== DATA_KEY_BYTES || !wrapped?.length || !output.KeyId) {
      plaintext?.fill(0);
      throw badAnswer('GenerateDataKey returned no usable key');
    }
    this.#current = output.KeyId;
    return { kid: output.KeyId, plaintext: Buffer.from(plaintext), wrapped: Buffer.from(wrapped) };
  }

  async unwrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: KeyCallOptions,
  ): Promise<Buffer> {
    checkKid(key.kid);
    // KeyId pins the key: a blob wrapped under another key is refused (IncorrectKeyException), not decrypted.
    const output = await this.#send(
      'Decrypt',
      (o) =>
        this.#client.send(
          new this.#sdk.DecryptCommand({
            KeyId: key.kid,
            CiphertextBlob: key.wrapped,
            EncryptionContext: this.#bind(context),
          }),
          o,
        ),
      options?.signal,
      (late) => late.Plaintext?.fill(0),
    );
    const plaintext = output.Plaintext;
    if (plaintext?.length !== DATA_KEY_BYTES) {
      plaintext?.fill(0);
      throw badAnswer('Decrypt returned no usable key');
    }
    const copy = Buffer.from(plaintext);
    plaintext.fill(0);
    return copy;
  }

  /** Server-side: the plaintext data key never leaves KMS, and the context must match to be accepted. */
  async rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey> {
    checkKid(key.kid);
    const destination = this.#destination(options);
    const bound = this.#bind(context);
    const output = await this.#send(
      'ReEncrypt',
      (o) =>
        this.#client.send(
          new this.#sdk.ReEncryptCommand({
            CiphertextBlob: key.wrapped,
            SourceKeyId: key.kid,
            SourceEncryptionContext: bound,
            DestinationKeyId: destination,
            DestinationEncryptionContext: bound,
          }),
          o,
        ),
      options?.signal,
    );
    if (!output.CiphertextBlob?.length || !output.KeyId) throw badAnswer('ReEncrypt returned no key');
    this.#current = output.KeyId;
    return { kid: output.KeyId, wrapped: Buffer.from(output.CiphertextBlob) };
  }

  /**
   * One version: AWS KMS rotates key material inside the key and keeps every earlier material for Decrypt, so
   * the caller never names a material version. Its state is the key's; a new key behind an alias is a new kid.
   */
  async describeKek(options?: KeyCallOptions): Promise<KekDescription> {
    const described = await this.#send(
      'DescribeKey',
      (o) => this.#client.send(new this.#sdk.DescribeKeyCommand({ KeyId: this.#key.arn }), o),
      options?.signal,
    );
    const metadata = described.KeyMetadata;
    if (metadata?.Arn === undefined) throw badAnswer('DescribeKey named no key');
    this.#current = metadata.Arn;
    const created = metadata.CreationDate;
    return {
      uri: `aws-kms://${this.#key.arn}`,
      current: metadata.Arn,
      versions: [
        {
          kid: metadata.Arn,
          state: stateOf(metadata.KeyState),
          ...(created instanceof Date && !Number.isNaN(created.getTime())
            ? { createdAt: created.toISOString() }
            : {}),
        },
      ],
    };
  }

  /**
   * The KeyId a wrap goes to: the URI's key (or alias) by default, the current key ARN when the wrap names it. AWS
   * KMS rotates material inside one key and always wraps under its newest material, so there is no other version
   * to name: any other kid is refused before a call, and this adapter has no `createVersion`.
   */
  #destination(options: WrapOptions | undefined): string {
    const kid = options?.kid;
    if (kid === undefined) return this.#key.arn;
    if (kid === this.#current) return kid;
    throw new PhiCacheError(
      'ERR_KEY_NOT_FOUND',
      `AWS KMS cannot wrap under ${kid}: it is not ${this.#current}`,
      {
        hint: 'An AWS KMS key has one version to wrap under (KMS rotates its material inside the key). To move data keys to another KMS key, open a provider on that key and rewrap with it.',
      },
    );
  }

  #bind(context: EncryptionContext): Record<string, string> {
    if (Object.hasOwn(context, DOMAIN_CONTEXT_KEY)) {
      throw new TypeError(`the encryption context key ${DOMAIN_CONTEXT_KEY} is set by the provider`);
    }
    return { ...context, [DOMAIN_CONTEXT_KEY]: this.#domain };
  }

  /**
   * Sends one command, and stops waiting when the signal aborts even if the SDK is asleep between retries; an
   * answer that arrives after that is handed to `late`, which zeroes any key in it.
   */
  async #send<Output>(
    operation: string,
    send: (options: { abortSignal?: AbortSignal }) => Promise<Output>,
    signal: AbortSignal | undefined,
    late: (output: Output) => void = () => undefined,
  ): Promise<Output> {
    if (signal?.aborted) throw abortedError(operation);
    const sent = send(signal === undefined ? {} : { abortSignal: signal });
    let stop = () => {};
    const aborted = new Promise<never>((_, reject) => {
      if (signal === undefined) return;
      const onAbort = () => reject(abortedError(operation));
      signal.addEventListener('abort', onAbort, { once: true });
      stop = () => signal.removeEventListener('abort', onAbort);
    });
    try {
      return await Promise.race([sent, aborted]);
    } catch (error) {
      if (signal?.aborted) {
        sent.then(late, () => undefined);
        throw abortedError(operation);
      }
      throw mapAwsKmsError(operation, error);
    } finally {
      stop();
    }
  }
}

/** A kid that is no KMS key ARN was never wrapped by KMS: no call, and no outage either. */
function checkKid(kid: string): void {
  if (!isAwsKmsKeyArn(kid)) {
    throw new PhiCacheError('ERR_KEY_NOT_FOUND', 'the wrapped data key names no AWS KMS key');
  }
}

function stateOf(keyState: string | undefined): KekState {
  switch (keyState) {
    case 'Enabled':
    case 'Updating':
      return 'active';
    case 'Creating':
    case 'PendingImport':
      return 'pending';
    default:
      // Disabled, PendingDeletion, PendingReplicaDeletion, Unavailable (a disconnected custom key store).
      return 'disabled';
  }
}

function credentialsFrom(env: KekProviderOpenOptionsEnv) {
  const accessKeyId = env?.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env?.AWS_SECRET_ACCESS_KEY;
  if (env === undefined || env === process.env || !accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

type KekProviderOpenOptionsEnv = Readonly<Record<string, string | undefined>> | undefined;

function abortedError(operation: string): PhiCacheError {
  return new PhiCacheError(
    'ERR_KEY_SERVICE_UNAVAILABLE',
    `AWS KMS ${operation} did not answer within its deadline`,
  );
}

function badAnswer(what: string): PhiCacheError {
  return new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `AWS KMS answer made no sense: ${what}`);
}

function loadKmsSdk(): Promise<KmsSdk> {
  return loadPeer(PEER, () => import('@aws-sdk/client-kms'), 'to use aws-kms:// key URIs');
}
