import { DATA_KEY_BYTES } from '../key-provider.js';
import type { Pkcs11, Pkcs11Binding } from './pkcs11-module.js';
import { versionLabel } from './pkcs11-uri.js';

/**
 * The two changes phicache makes to a token's KEK objects; everything else about versions (disable, destroy) is an
 * HSM administrator's act with the vendor's tools. Both need a read-write session.
 */

/**
 * Generates version `version` of the KEK `object` inside the token: an AES-256 key made by the HSM, a private token
 * object that is sensitive and never extractable, usable for encrypt and decrypt only. `encrypt: false` publishes
 * it as `pending` (see `scanKekVersions`): every instance can unwrap under it, none wraps under it by default.
 */
export function generateKekVersion(
  binding: Pkcs11Binding,
  pkcs11: Pkcs11,
  session: Buffer,
  object: string,
  version: number,
  options: { readonly encrypt: boolean },
): void {
  pkcs11.C_GenerateKey(session, { mechanism: binding.CKM_AES_KEY_GEN }, [
    { type: binding.CKA_CLASS, value: binding.CKO_SECRET_KEY },
    { type: binding.CKA_KEY_TYPE, value: binding.CKK_AES },
    { type: binding.CKA_VALUE_LEN, value: DATA_KEY_BYTES },
    { type: binding.CKA_LABEL, value: versionLabel(object, version) },
    { type: binding.CKA_TOKEN, value: true },
    { type: binding.CKA_PRIVATE, value: true },
    { type: binding.CKA_SENSITIVE, value: true },
    { type: binding.CKA_EXTRACTABLE, value: false },
    // Modifiable so that its state can move: CKA_ENCRYPT on promotion, CKA_DECRYPT off when disabled.
    { type: binding.CKA_MODIFIABLE, value: true },
    { type: binding.CKA_ENCRYPT, value: options.encrypt },
    { type: binding.CKA_DECRYPT, value: true },
    { type: binding.CKA_WRAP, value: false },
    { type: binding.CKA_UNWRAP, value: false },
    { type: binding.CKA_SIGN, value: false },
    { type: binding.CKA_VERIFY, value: false },
    { type: binding.CKA_DERIVE, value: false },
  ]);
}

/**
 * Lets a pending version encrypt. A wrap that names a pending version is phicache promoting it (its key states,
 * not the token, decide which version seals), and the token records it the way an administrator would: from then
 * on every instance's scan sees the version as active.
 */
export function allowEncrypt(binding: Pkcs11Binding, pkcs11: Pkcs11, session: Buffer, handle: Buffer): void {
  pkcs11.C_SetAttributeValue(session, handle, [{ type: binding.CKA_ENCRYPT, value: true }]);
}
