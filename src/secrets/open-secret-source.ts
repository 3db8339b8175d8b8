import { type AwsSecretsManagerOptions, awsSecret } from './aws-secrets-manager.js';
import { envSecret } from './env-secret.js';
import { fileSecret } from './file-secret.js';
import { type GcpSecretManagerOptions, gcpSecret } from './gcp-secret-manager.js';
import { checkTimeout } from './secret-deadline.js';
import type { SecretSource } from './secret-source.js';
import { type VaultKvOptions, vaultKvSecret } from './vault-kv.js';

export interface OpenSecretSourceOptions {
  /** How long one read may take, in ms. Default 5,000; 1..120,000. */
  readonly timeoutMs?: number;
  /** For `env:` references (and a Vault `token-source=env:`). Default `process.env`. */
  readonly environment?: Readonly<Record<string, string | undefined>>;
  readonly aws?: AwsSecretsManagerOptions;
  readonly gcp?: GcpSecretManagerOptions;
  readonly vault?: VaultKvOptions;
}

/**
 * Opens a secret named by a reference: `env:VAR`, `file:/path`, `aws-sm://<arn-or-name>[#json-field]`,
 * `gcp-sm://projects/P/secrets/S/versions/(N|latest)[#json-field]`, `vault-kv://host:port/<mount>/data/<path>#field`.
 * Nothing is read yet; a bad reference throws a TypeError here, before any connection is tried. References hold
 * no secret, so they may sit in configuration.
 */
export function openSecretSource(reference: string, options: OpenSecretSourceOptions = {}): SecretSource {
  if (typeof reference !== 'string') throw new TypeError('a secret reference is a string');
  checkTimeout(options.timeoutMs);
  if (reference.startsWith('env:')) return envSecret(reference.slice(4), options.environment);
  if (reference.startsWith('file:')) return fileSecret(reference.slice(5), options.timeoutMs);
  if (reference.startsWith('aws-sm://')) {
    const rest = reference.slice('aws-sm://'.length);
    const hash = rest.lastIndexOf('#');
    const field = hash < 0 ? undefined : rest.slice(hash + 1);
    if (field === '') throw new TypeError('aws-sm:// names a JSON field after #, or has no #');
    return awsSecret(hash < 0 ? rest : rest.slice(0, hash), field, options.aws, options.timeoutMs);
  }
  if (reference.startsWith('gcp-sm://')) {
    const rest = reference.slice('gcp-sm://'.length);
    const hash = rest.indexOf('#');
    const field = hash < 0 ? undefined : rest.slice(hash + 1);
    if (field === '') throw new TypeError('gcp-sm:// names a JSON field after #, or has no #');
    return gcpSecret(hash < 0 ? rest : rest.slice(0, hash), field, options.gcp, options.timeoutMs);
  }
  if (reference.startsWith('vault-kv://')) {
    let url: URL;
    try {
      url = new URL(reference);
    } catch {
      throw new TypeError('vault-kv:// takes host:port/<mount>/data/<path>#field');
    }
    if (url.username !== '' || url.password !== '') {
      throw new TypeError('a vault-kv:// reference holds no credentials: name a token-source instead');
    }
    const tokenReference = url.searchParams.get('token-source') ?? 'env:VAULT_TOKEN';
    if (!tokenReference.startsWith('env:') && !tokenReference.startsWith('file:')) {
      throw new TypeError('a Vault token-source is env:VAR or file:/path');
    }
    const token = openSecretSource(tokenReference, options);
    return vaultKvSecret(url, token, options.vault, options.timeoutMs);
  }
  // The reference is not repeated: a value pasted where a reference belongs would otherwise end up in a log.
  throw new TypeError('a secret reference starts with env:, file:, aws-sm://, gcp-sm:// or vault-kv://');
}
