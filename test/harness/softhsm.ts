/**
 * A real SoftHSM2 for the PKCS#11 tests: a token directory of its own under the temp dir, tokens made with
 * `softhsm2-util --init-token` and PINs made at test time. The PINs reach the provider through an env object
 * (`pin-source=env:…`), never through a URI.
 *
 * SoftHSM2 reads SOFTHSM2_CONF when the library is initialized, so `startSoftHsm` sets it in this process's
 * environment; one SoftHSM per test file process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { leaseModule, type Pkcs11, type Pkcs11Binding } from '../../src/keys/providers/pkcs11-module.js';

const run = promisify(execFile);

/** Debian's path; PHICACHE_TEST_SOFTHSM_MODULE overrides it on other systems. */
export const SOFTHSM_MODULE = process.env.PHICACHE_TEST_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

export const PIN_VARIABLE = 'PHICACHE_TEST_HSM_PIN';

export interface SoftHsmToken {
  readonly label: string;
  /** The environment the provider reads its PIN from: `{ [PIN_VARIABLE]: pin }`. */
  readonly env: Readonly<Record<string, string>>;
  readonly pin: string;
  /** The key URI of a KEK object on this token. */
  uri(object: string): string;
}

export interface SoftHsm {
  readonly dir: string;
  createToken(label: string): Promise<SoftHsmToken>;
  stop(): Promise<void>;
}

export async function startSoftHsm(): Promise<SoftHsm> {
  if (!existsSync(SOFTHSM_MODULE)) {
    throw new Error(`SoftHSM2 is not installed (${SOFTHSM_MODULE}): run scripts/ensure-test-deps.sh as root`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'phicache-softhsm-'));
  const tokens = join(dir, 'tokens');
  await mkdir(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    async createToken(label) {
      const pin = randomBytes(8).toString('hex');
      const soPin = randomBytes(8).toString('hex');
      await run(
        'softhsm2-util',
        ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin],
        {
          env: { ...process.env, SOFTHSM2_CONF: conf },
        },
      );
      return {
        label,
        pin,
        env: { [PIN_VARIABLE]: pin },
        uri: (object) =>
          `pkcs11:token=${encodeURIComponent(label)};object=${encodeURIComponent(object)}` +
          `?module-path=${SOFTHSM_MODULE}&pin-source=env:${PIN_VARIABLE}`,
      };
    },
    async stop() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The token as an administrator sees it, through the binding directly: to read attributes and change states. It
 * shares the process's loaded library with the providers, as a second application thread would.
 */
export async function withAdminSession<T>(
  token: SoftHsmToken,
  body: (admin: {
    binding: Pkcs11Binding;
    pkcs11: Pkcs11;
    session: Buffer;
    find(label: string): Buffer;
  }) => T,
): Promise<T> {
  const lease = await leaseModule(SOFTHSM_MODULE);
  const { binding, pkcs11 } = lease;
  const slot = pkcs11
    .C_GetSlotList(true)
    .find((s) => pkcs11.C_GetTokenInfo(s).label.trimEnd() === token.label);
  assert.ok(slot);
  const session = pkcs11.C_OpenSession(slot, binding.CKF_SERIAL_SESSION | binding.CKF_RW_SESSION);
  try {
    try {
      pkcs11.C_Login(session, binding.CKU_USER, token.pin);
    } catch (error) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
    }
    const find = (label: string) => {
      pkcs11.C_FindObjectsInit(session, [{ type: binding.CKA_LABEL, value: label }]);
      const [handle] = pkcs11.C_FindObjects(session, 2);
      pkcs11.C_FindObjectsFinal(session);
      assert.ok(handle, `object ${label} is on the token`);
      return handle;
    };
    return body({ binding, pkcs11, session, find });
  } finally {
    pkcs11.C_CloseSession(session);
    lease.release();
  }
}

/**
 * Asserts that the key object `label` (such as `phicache-cache/v1`) cannot leave the token: reading its CKA_VALUE
 * is refused, and it is sensitive, not extractable, never was extractable and always was sensitive.
 */
export function assertKekStaysInToken(token: SoftHsmToken, label: string): Promise<void> {
  return withAdminSession(token, ({ binding, pkcs11, session, find }) => {
    const kek = find(label);
    assert.throws(
      () => pkcs11.C_GetAttributeValue(session, kek, [{ type: binding.CKA_VALUE }]),
      /CKR_ATTRIBUTE_SENSITIVE/,
    );
    const [sensitive, extractable, neverExtractable, alwaysSensitive] = pkcs11.C_GetAttributeValue(
      session,
      kek,
      [
        { type: binding.CKA_SENSITIVE },
        { type: binding.CKA_EXTRACTABLE },
        { type: binding.CKA_NEVER_EXTRACTABLE },
        { type: binding.CKA_ALWAYS_SENSITIVE },
      ],
    );
    assert.deepEqual(
      [sensitive?.value, extractable?.value, neverExtractable?.value, alwaysSensitive?.value].map((v) =>
        Buffer.isBuffer(v) ? v[0] : v,
      ),
      [1, 0, 1, 1],
    );
  });
}
