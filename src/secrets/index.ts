export type { AwsSecretsManagerOptions, SecretsManagerClientLike } from './aws-secrets-manager.js';
export type { GcpSecretManagerOptions } from './gcp-secret-manager.js';
export { type OpenSecretSourceOptions, openSecretSource } from './open-secret-source.js';
export type { SecretReadOptions, SecretSource } from './secret-source.js';
export type { VaultKvOptions } from './vault-kv.js';
