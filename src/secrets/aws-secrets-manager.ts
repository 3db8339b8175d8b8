/**
 * `aws-sm://<secret ARN or name>[#json-field]`: AWS Secrets Manager through the official
 * `@aws-sdk/client-secrets-manager`, an optional peer imported here only, at the first read.
 */
import { loadPeer } from '../runtime/load-peer.js';
import { jsonField, trimSecret } from './secret-bytes.js';
import { checkTimeout, readWithin } from './secret-deadline.js';
import { secretErrors } from './secret-errors.js';
import type { SecretSource } from './secret-source.js';

/** The one call used, so that a test double or a caller's own client is a few lines. */
export interface SecretsManagerClientLike {
  send(
    command: unknown,
    options?: { abortSignal?: AbortSignal },
  ): Promise<{ SecretString?: string; SecretBinary?: Uint8Array }>;
}

export interface AwsSecretsManagerOptions {
  /** A client of your own (its region, credentials and retry settings). Default: one made from the fields below. */
  readonly client?: SecretsManagerClientLike;
  /** Default: the region in the ARN, else the SDK's own resolution (AWS_REGION, the profile). */
  readonly region?: string;
  /** A VPC endpoint, or a local server in tests. */
  readonly endpoint?: string;
  /** Default: the SDK's credential chain (the workload's role). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The staging label to read. Default AWSCURRENT. */
  readonly versionStage?: string;
}

const PEER = '@aws-sdk/client-secrets-manager';

export function awsSecret(
  secretId: string,
  field: string | undefined,
  options: AwsSecretsManagerOptions = {},
  timeoutMs?: number,
): SecretSource {
  if (secretId.length === 0 || secretId.length > 2048) {
    throw new TypeError('aws-sm:// names a secret by its ARN or its name');
  }
  const ms = checkTimeout(timeoutMs);
  const reference = `aws-sm://${secretId}${field === undefined ? '' : `#${field}`}`;
  let made: Promise<{ client: SecretsManagerClientLike; command: (input: object) => unknown }> | undefined;
  const make = async () => {
    const sdk = await loadPeer(
      PEER,
      () => import('@aws-sdk/client-secrets-manager'),
      'or read the secret from env: or file:',
    );
    const region = options.region ?? /^arn:aws[a-z-]*:secretsmanager:([a-z0-9-]+):/.exec(secretId)?.[1];
    const client =
      options.client ??
      (new sdk.SecretsManagerClient({
        ...(region === undefined ? {} : { region }),
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      }) as unknown as SecretsManagerClientLike);
    return { client, command: (input: object) => new sdk.GetSecretValueCommand(input as never) };
  };
  return {
    reference,
    read: (readOptions) =>
      readWithin(reference, ms, readOptions, async (signal) => {
        made ??= make().catch((error) => {
          made = undefined;
          throw error;
        });
        const { client, command } = await made;
        let answer: { SecretString?: string; SecretBinary?: Uint8Array };
        try {
          answer = await client.send(
            command({ SecretId: secretId, VersionStage: options.versionStage ?? 'AWSCURRENT' }),
            { abortSignal: signal },
          );
        } catch (error) {
          throw mapAwsError(reference, error);
        }
        const bytes =
          typeof answer?.SecretString === 'string'
            ? Buffer.from(answer.SecretString, 'utf8')
            : answer?.SecretBinary instanceof Uint8Array
              ? Buffer.from(answer.SecretBinary)
              : undefined;
        if (bytes === undefined) {
          throw secretErrors.unavailable(reference, 'the answer holds neither SecretString nor SecretBinary');
        }
        return trimSecret(reference, field === undefined ? bytes : jsonField(reference, bytes, field));
      }),
  };
}

/** By the exception's name, which the SDK sets from the service's error type. */
function mapAwsError(reference: string, error: unknown) {
  const name = (error as { name?: unknown })?.name;
  switch (name) {
    case 'ResourceNotFoundException':
      return secretErrors.notFound(reference, 'no such secret or version', error);
    case 'AccessDeniedException':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'ExpiredTokenException':
    case 'DecryptionFailure':
      return secretErrors.denied(reference, error);
    case 'InvalidRequestException':
      // Secrets Manager's answer for a secret scheduled for deletion.
      return secretErrors.disabled(reference, error);
    default:
      return secretErrors.unavailable(reference, `the service did not answer (${safeName(name)})`, error);
  }
}

/** An exception name is the service's vocabulary; anything else is not repeated. */
function safeName(name: unknown): string {
  return typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? name : 'unknown error';
}
