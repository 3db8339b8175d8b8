/**
 * A real SoftHSM2 for the PKCS#11 tests: a token directory of its own under the temp dir, tokens made with
 * `softhsm2-util --init-token` and PINs made at test time. The PINs reach the provider through an env object
 * (`pin-source=env:…`), never through a URI.
 *
 * SoftHSM2 reads SOFTHSM2_CONF when the library is initialized, so `startSoftHsm` sets it in this process's
 * environment; one SoftHSM per test file process.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

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
