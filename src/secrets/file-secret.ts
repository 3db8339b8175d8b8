import { readFile } from 'node:fs/promises';
import { trimSecret } from './secret-bytes.js';
import { checkTimeout, readWithin } from './secret-deadline.js';
import { secretErrors } from './secret-errors.js';
import type { SecretSource } from './secret-source.js';

/**
 * `file:/path`: a secret mounted as a file (a Kubernetes secret, the Secrets Store CSI driver, Vault Agent). Read
 * anew each time, since those mounts are updated in place when the secret rotates.
 */
export function fileSecret(path: string, timeoutMs?: number): SecretSource {
  if (path.length === 0) throw new TypeError('file: names a path');
  const ms = checkTimeout(timeoutMs);
  const reference = `file:${path}`;
  return {
    reference,
    read: (options) =>
      readWithin(reference, ms, options, async (signal) => {
        let bytes: Buffer;
        try {
          bytes = await readFile(path, { signal });
        } catch (cause) {
          const code = (cause as { code?: unknown }).code;
          if (code === 'EACCES' || code === 'EPERM') throw secretErrors.denied(reference, cause);
          if (code === 'ABORT_ERR') throw cause;
          throw secretErrors.notFound(reference, 'the file cannot be read', cause);
        }
        return trimSecret(reference, bytes);
      }),
  };
}
