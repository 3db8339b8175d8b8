/**
 * PHI detectors: patterns that make a string or a field name look like protected health information. One module
 * serves every guard that must keep PHI out of a place that holds none (session data, job payloads, store key
 * names, logs), so they all agree on what "looks like PHI" means. A match names its kind and position, never the
 * text it matched: callers report matches without repeating them.
 *
 * Detection is a net, not a proof: it catches the identifiers that leak most (SSNs, MRNs, emails, phone numbers,
 * dates of birth, NPIs) and field names that say what they hold. A free-text name in a value cannot be told from
 * any other word; it is caught by its field name (`name`, `lastName`, ...).
 */

export type PhiKind = 'ssn' | 'mrn' | 'email' | 'phone' | 'date-of-birth' | 'npi';

export interface PhiMatch {
  readonly kind: PhiKind;
  /** Offset and length of the match in the text searched. */
  readonly index: number;
  readonly length: number;
}

/**
 * An SSN written with dashes or spaces: area 001-899 except 666, group 01-99, serial 0001-9999 (the SSA's rules;
 * 9xx areas are ITINs and advertising numbers, never SSNs). Nine bare digits are not matched: too many ids look so.
 */
const SSN = /(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])/g;

/** A medical record number: a label (MRN, medical record, patient id, chart) followed by 5-12 digits, letters allowed in front. */
const MRN =
  /\b(?:mrn|medical[ _-]?record(?:[ _-]?(?:no|num|number))?|patient[ _-]?(?:id|no|num|number)|chart[ _-]?(?:id|no|number))[\s:#=_/-]{0,3}[A-Z]{0,3}\d{5,12}\b/gi;

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;

/**
 * A North American number with separators or parentheses ((415) 555-0134, 415-555-0134, +1 415 555 0134), or any
 * E.164 number with its plus. Ten bare digits are not matched, for the same reason as SSNs.
 */
const PHONE =
  /(?<![\w+])(?:\+1[ .-]?)?(?:\([2-9]\d{2}\)[ .-]?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?!\d)|(?<![\w+])\+[1-9]\d{7,14}(?!\d)/g;

/**
 * A calendar date without a time after it (a timestamp is when something happened, a bare date is more often a
 * birth date): ISO 1900-01-01 to 2099-12-31, US 1/2/1980 or 01/02/1980, and DD.MM.YYYY.
 */
const DATE =
  /(?<![\d-])(?:(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\dT:])|(?:0?[1-9]|1[0-2])\/(?:0?[1-9]|[12]\d|3[01])\/(?:19|20)\d{2}(?!\d)|(?:0?[1-9]|[12]\d|3[01])\.(?:0?[1-9]|1[0-2])\.(?:19|20)\d{2}(?!\d))/g;

/** An NPI candidate: ten digits starting with 1 or 2; it matches only when its Luhn check digit is right. */
const NPI = /(?<!\d)[12]\d{9}(?!\d)/g;

/** Whether the three parts of a dashed SSN are ones the SSA issues. */
export function isValidSsn(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}

/**
 * The NPI check digit: Luhn over the first nine digits prefixed by 80840 (the health industry's ISO 7812 issuer
 * prefix), which adds 24 to the Luhn sum.
 */
export function isValidNpi(npi: string): boolean {
  if (!/^[12]\d{9}$/.test(npi)) return false;
  let sum = 24;
  for (let i = 0; i < 9; i += 1) {
    let digit = npi.charCodeAt(8 - i) - 48;
    if (i % 2 === 0) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return (10 - (sum % 10)) % 10 === npi.charCodeAt(9) - 48;
}

/** Every PHI-looking match in the text, in order of position. */
export function findPhi(text: string): PhiMatch[] {
  const matches: PhiMatch[] = [];
  const add = (kind: PhiKind, match: RegExpExecArray) =>
    matches.push({ kind, index: match.index, length: match[0].length });
  for (const match of text.matchAll(SSN)) {
    if (isValidSsn(match[1]!, match[3]!, match[4]!)) add('ssn', match);
  }
  for (const match of text.matchAll(MRN)) add('mrn', match);
  for (const match of text.matchAll(EMAIL)) add('email', match);
  for (const match of text.matchAll(PHONE)) add('phone', match);
  for (const match of text.matchAll(DATE)) add('date-of-birth', match);
  for (const match of text.matchAll(NPI)) if (isValidNpi(match[0])) add('npi', match);
  return matches.sort((a, b) => a.index - b.index);
}

export function looksLikePhi(text: string): boolean {
  return findPhi(text).length > 0;
}

/**
 * Field names that say they hold PHI, compared without case, `_` or `-` (`first_name`, `firstName` and
 * `FirstName` are one name). They are what a pino redaction list and the guards look for.
 */
export const PHI_FIELD_NAMES: readonly string[] = [
  'name',
  'firstName',
  'lastName',
  'middleName',
  'fullName',
  'givenName',
  'familyName',
  'patientName',
  'ssn',
  'socialSecurityNumber',
  'dob',
  'dateOfBirth',
  'birthDate',
  'birthdate',
  'mrn',
  'medicalRecordNumber',
  'email',
  'phone',
  'phoneNumber',
  'address',
  'streetAddress',
  'zip',
  'zipCode',
  'postalCode',
  'diagnosis',
  'insuranceId',
  'memberId',
];

const FIELD_KEYS = new Set(PHI_FIELD_NAMES.map(normalizeFieldName));

function normalizeFieldName(name: string): string {
  return name.replace(/[_-]/g, '').toLowerCase();
}

export function isPhiFieldName(name: string): boolean {
  return FIELD_KEYS.has(normalizeFieldName(name));
}

/** Where in a value PHI was seen: a JSON path such as `$.patient.dob`, and why. */
export interface PhiFinding {
  readonly path: string;
  readonly kind: PhiKind | 'field-name';
}

/**
 * Walks a JSON-like value (objects, arrays, strings, numbers) and returns every field whose name says PHI and
 * every string or number that matches a detector. Paths name fields, never values; depth and size are bounded so
 * a hostile payload cannot make the walk expensive.
 */
export function findPhiInValue(
  value: unknown,
  limits: { maxDepth?: number; maxNodes?: number } = {},
): PhiFinding[] {
  const maxDepth = limits.maxDepth ?? 32;
  let nodesLeft = limits.maxNodes ?? 10_000;
  const findings: PhiFinding[] = [];
  const seen = new Set<object>();
  const walk = (node: unknown, path: string, depth: number): void => {
    nodesLeft -= 1;
    if (nodesLeft < 0) return;
    if (typeof node === 'string' || typeof node === 'number' || typeof node === 'bigint') {
      const kinds = new Set(findPhi(String(node)).map((match) => match.kind));
      for (const kind of kinds) findings.push({ path, kind });
      return;
    }
    if (typeof node !== 'object' || node === null || depth >= maxDepth || seen.has(node)) return;
    seen.add(node);
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, `${path}[${i}]`, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(node)) {
      const childPath = /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
      if (isPhiFieldName(key)) findings.push({ path: childPath, kind: 'field-name' });
      else {
        const kinds = new Set(findPhi(key).map((match) => match.kind));
        for (const kind of kinds) findings.push({ path: `${path}[key]`, kind });
      }
      walk(child, childPath, depth + 1);
    }
  };
  walk(value, '$', 0);
  return findings;
}
