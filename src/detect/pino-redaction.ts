import { PHI_FIELD_NAMES } from './phi-detectors.js';

export interface PinoRedactionOptions {
  /** How many levels below the log object's root a field is looked for (`name`, `*.name`, `*.*.name`). Default 3; 1..6. */
  readonly depth?: number;
  /** Extra field names to redact, in the spelling the code uses. */
  readonly extraFields?: readonly string[];
  /** What replaces a redacted value. Default `[PHI]`. */
  readonly censor?: string;
}

/** pino's `redact` option: paths with `*` wildcards, and the text that replaces what they match. */
export interface PinoRedaction {
  readonly paths: string[];
  readonly censor: string;
}

/**
 * pino's `redact` option for the PHI field names the detectors know (`name`, `ssn`, `dateOfBirth`, `mrn`, ...), in
 * the spellings code uses (camelCase, snake_case, PascalCase, lower case), at the root and a few levels down:
 *
 *   const logger = pino({ redact: pinoRedaction() })
 *
 * pino matches paths exactly, so this catches PHI by field name only; a value with an SSN in a free-text message
 * is not caught here, which is what `PhiSinkCheck` is for in tests.
 */
export function pinoRedaction(options: PinoRedactionOptions = {}): PinoRedaction {
  const depth = options.depth ?? 3;
  if (!Number.isSafeInteger(depth) || depth < 1 || depth > 6)
    throw new RangeError('depth must be an integer in 1..6');
  const names = new Set<string>();
  for (const name of [...PHI_FIELD_NAMES, ...(options.extraFields ?? [])]) {
    names.add(name);
    names.add(name.toLowerCase());
    names.add(name[0]!.toUpperCase() + name.slice(1));
    names.add(name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`));
  }
  const paths: string[] = [];
  for (const name of names) {
    const plain = /^[A-Za-z_$][\w$]*$/.test(name);
    for (let level = 0; level < depth; level += 1) {
      const wildcards = Array.from({ length: level }, () => '*');
      // pino's path syntax: `a.b` for identifiers, `a["b-c"]` for any other name.
      paths.push(plain ? [...wildcards, name].join('.') : `${wildcards.join('.')}[${JSON.stringify(name)}]`);
    }
  }
  return { paths, censor: options.censor ?? '[PHI]' };
}
