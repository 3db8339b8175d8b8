import { PhiCacheError } from '../errors.js';

/** Errors of a secret source. Each names the reference (which never holds the secret) and never the value. */
export const secretErrors = {
  unavailable: (reference: string, why: string, cause?: unknown) =>
    new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `secret ${reference}: ${why}`, {
      cause,
      hint: 'Check that the secret service is reachable from this host and healthy; the read is retried on the next connection.',
    }),
  denied: (reference: string, cause?: unknown) =>
    new PhiCacheError('ERR_KEY_ACCESS_DENIED', `secret ${reference}: the service refused this caller`, {
      cause,
      hint: "Grant this workload's identity read access to this one secret (see docs/providers/secrets.md).",
    }),
  notFound: (reference: string, why: string, cause?: unknown) =>
    new PhiCacheError('ERR_KEY_NOT_FOUND', `secret ${reference}: ${why}`, {
      cause,
      hint: 'Check the secret reference: the variable, file, secret name, version and field it names.',
    }),
  disabled: (reference: string, cause?: unknown) =>
    new PhiCacheError(
      'ERR_KEY_DISABLED',
      `secret ${reference}: the secret or its version is disabled or deleted`,
      {
        cause,
        hint: 'Restore the secret, or point the reference at its current version.',
      },
    ),
};
