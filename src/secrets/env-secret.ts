import { trimSecret } from './secret-bytes.js';
import { secretErrors } from './secret-errors.js';
import type { SecretSource } from './secret-source.js';

/** `env:VAR`: read from the environment at every read, so a supervisor that updates it is followed. */
export function envSecret(
  variable: string,
  environment: Readonly<Record<string, string | undefined>> = process.env,
): SecretSource {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
    throw new TypeError('env: names an environment variable (letters, digits and _)');
  }
  const reference = `env:${variable}`;
  return {
    reference,
    read: async () => {
      const value = environment[variable];
      if (value === undefined) throw secretErrors.notFound(reference, 'the variable is not set');
      return trimSecret(reference, Buffer.from(value, 'utf8'));
    },
  };
}
