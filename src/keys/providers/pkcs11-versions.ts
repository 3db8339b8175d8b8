import { endianness } from 'node:os';
import type { KekState } from '../key-provider.js';
import type { Pkcs11, Pkcs11Binding } from './pkcs11-module.js';
import { versionOfLabel } from './pkcs11-uri.js';

/** One KEK version on the token, as its attributes describe it. */
export interface TokenKekVersion {
  readonly version: number;
  readonly handle: Buffer;
  readonly state: KekState;
}

export interface TokenKek {
  readonly versions: ReadonlyMap<number, TokenKekVersion>;
  /** The version new data keys are wrapped under, or undefined when no version may encrypt. */
  readonly current: number | undefined;
}

/**
 * The versions of a KEK are the AES-256 secret keys labelled `<object>/v<N>` that are token objects, sensitive
 * and not extractable; a key labelled so that could leave the token is not a KEK and is ignored.
 *
 * Their states come from the token's own attributes, so an HSM administrator changes them with the vendor's tools
 * and every instance sees the same: the highest version with CKA_ENCRYPT is `active` (current); a version above
 * it with CKA_DECRYPT only is `pending` (published, not yet promoted); one below it with CKA_DECRYPT is
 * `decrypt-only`; one without CKA_DECRYPT is `disabled`, and the HSM itself refuses to unwrap under it.
 */
export function scanKekVersions(
  binding: Pkcs11Binding,
  pkcs11: Pkcs11,
  session: Buffer,
  object: string,
): TokenKek {
  const found: { version: number; handle: Buffer; encrypt: boolean; decrypt: boolean }[] = [];
  for (const handle of findAll(pkcs11, session, kekTemplate(binding))) {
    const [label, encrypt, decrypt, length] = pkcs11.C_GetAttributeValue(session, handle, [
      { type: binding.CKA_LABEL },
      { type: binding.CKA_ENCRYPT },
      { type: binding.CKA_DECRYPT },
      { type: binding.CKA_VALUE_LEN },
    ]);
    const version = versionOfLabel(object, String(label?.value ?? ''));
    if (version === undefined || asNumber(length?.value) !== 32) continue;
    found.push({ version, handle, encrypt: asBoolean(encrypt?.value), decrypt: asBoolean(decrypt?.value) });
  }
  const encrypting = found.filter((v) => v.encrypt && v.decrypt).map((v) => v.version);
  const current = encrypting.length > 0 ? Math.max(...encrypting) : undefined;
  const versions = new Map<number, TokenKekVersion>();
  for (const v of found.sort((a, b) => a.version - b.version)) {
    let state: KekState;
    if (!v.decrypt) state = 'disabled';
    else if (v.version === current) state = 'active';
    else if (current === undefined || v.version > current) state = 'pending';
    else state = 'decrypt-only';
    // Two objects with one label would make the KEK ambiguous; the first found wins, as p11-kit does.
    if (!versions.has(v.version)) versions.set(v.version, { version: v.version, handle: v.handle, state });
  }
  return { versions, current };
}

/** Every version label in use under `object`, extractable or not, so a new version never reuses a number. */
export function highestVersionLabel(
  binding: Pkcs11Binding,
  pkcs11: Pkcs11,
  session: Buffer,
  object: string,
): number {
  let highest = 0;
  for (const handle of findAll(pkcs11, session, [
    { type: binding.CKA_CLASS, value: binding.CKO_SECRET_KEY },
  ])) {
    const [label] = pkcs11.C_GetAttributeValue(session, handle, [{ type: binding.CKA_LABEL }]);
    const version = versionOfLabel(object, String(label?.value ?? ''));
    if (version !== undefined && version > highest) highest = version;
  }
  return highest;
}

function kekTemplate(binding: Pkcs11Binding) {
  return [
    { type: binding.CKA_CLASS, value: binding.CKO_SECRET_KEY },
    { type: binding.CKA_KEY_TYPE, value: binding.CKK_AES },
    { type: binding.CKA_TOKEN, value: true },
    { type: binding.CKA_SENSITIVE, value: true },
    { type: binding.CKA_EXTRACTABLE, value: false },
  ];
}

function findAll(
  pkcs11: Pkcs11,
  session: Buffer,
  template: Parameters<Pkcs11['C_FindObjectsInit']>[1],
): Buffer[] {
  pkcs11.C_FindObjectsInit(session, template);
  try {
    const handles: Buffer[] = [];
    for (;;) {
      const batch = pkcs11.C_FindObjects(session, 64);
      if (batch.length === 0) return handles;
      handles.push(...batch);
    }
  } finally {
    pkcs11.C_FindObjectsFinal(session);
  }
}

function asBoolean(value: unknown): boolean {
  return Buffer.isBuffer(value) ? value.length > 0 && value[0] !== 0 : value === true;
}

/** A CK_ULONG as the binding hands it over: in the host's byte order, 4 or 8 bytes wide. */
function asNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (!Buffer.isBuffer(value)) return undefined;
  const little = endianness() === 'LE';
  if (value.length === 8) return Number(little ? value.readBigUInt64LE() : value.readBigUInt64BE());
  if (value.length === 4) return little ? value.readUInt32LE() : value.readUInt32BE();
  return undefined;
}
