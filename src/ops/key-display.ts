import { createHmac, randomBytes } from 'node:crypto';
import { findPhi } from '../detect/phi-detectors.js';

/** phicache's own key names: a kind letter, the data class and a base64url HMAC (see TenantNames). */
const PHICACHE_KEY = /^phc:([a-z]):([a-z][a-z0-9-]{0,62}:)?[A-Za-z0-9_-]{43}$/;
/** A namespace another application put in front of its keys (`session:`, `legacy-app:`), shown as a hint. */
const NAMESPACE = /^([a-z][a-z0-9_-]{0,31}):/;

/**
 * How key names appear in a report. Names phicache wrote are HMACs and safe to print. Names of other applications
 * may carry PHI (`patient:987-65-4329:chart`), so by default they are shown as their namespace (when it looks like
 * one and holds nothing a PHI detector matches) and an HMAC under a key made for this one report: the same key
 * shows the same way throughout a report, and no one can brute-force an SSN back out of it afterwards, since the
 * key is forgotten. `verbatim` prints every name as it is, for an operator who asks (`--show-key-names`).
 */
export class KeyDisplay {
  readonly #verbatim: boolean;
  readonly #secret = randomBytes(32);

  constructor(mode: 'redacted' | 'verbatim' = 'redacted') {
    this.#verbatim = mode === 'verbatim';
  }

  show(key: Buffer): string {
    const text = key.toString('utf8');
    const printable = /^[\x20-\x7e]*$/.test(text);
    if (this.#verbatim) return printable ? text : `hex:${key.toString('hex')}`;
    if (printable && isPhicacheKey(text)) return text;
    const tag = createHmac('sha256', this.#secret).update(key).digest('hex').slice(0, 16);
    const namespace = printable ? NAMESPACE.exec(text)?.[1] : undefined;
    const shown = namespace !== undefined && findPhi(namespace).length === 0 ? `${namespace}:…` : '…';
    return `redacted:${shown}#${tag}`;
  }
}

/** A name of phicache's own shape in which no PHI detector finds anything (a class name could be planted too). */
export function isPhicacheKey(text: string): boolean {
  return PHICACHE_KEY.test(text) && findPhi(text).length === 0;
}
