import { access } from 'node:fs/promises';
import type * as Pkcs11js from 'pkcs11js';
import { PhiCacheError } from '../../errors.js';
import { loadPeer } from '../../runtime/load-peer.js';
import { pkcs11Failure, returnValueOf } from './pkcs11-errors.js';

export type Pkcs11Binding = typeof Pkcs11js;
export type Pkcs11 = Pkcs11js.PKCS11;

const PACKAGE = 'pkcs11js';

/** The optional binding, loaded only when a `pkcs11:` URI is opened. */
export async function loadPkcs11js(): Promise<Pkcs11Binding> {
  try {
    const loaded = (await loadPeer(
      PACKAGE,
      () => import(PACKAGE),
      'to use pkcs11: key URIs',
    )) as Pkcs11Binding & {
      default?: Pkcs11Binding;
    };
    return loaded.default ?? loaded;
  } catch (cause) {
    const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' ? message : '';
    if (code === 'MODULE_NOT_FOUND' && text.includes('pkcs11.node')) {
      // npm 11 skips the install scripts of dependencies nobody approved, so the addon may be missing.
      throw new PhiCacheError(
        'ERR_PEER_MISSING',
        `${PACKAGE} is installed but its native addon is not built`,
        {
          cause,
          hint: `Build it: npm install-scripts approve ${PACKAGE} && npm rebuild ${PACKAGE} (needs a C++ compiler).`,
        },
      );
    }
    throw cause;
  }
}

interface LoadedModule {
  readonly pkcs11: Pkcs11;
  users: number;
  /** False when someone else in this process initialized the library: then they finalize it, not us. */
  readonly ownsInitialize: boolean;
}

/**
 * One loaded library per module path, shared by every provider in the process: C_Initialize and C_Finalize act
 * on the whole library, so a second provider on the same HSM (the audit domain's KEK, say) must not finalize it
 * under the first.
 */
const modules = new Map<string, Promise<LoadedModule>>();

export interface ModuleLease {
  readonly binding: Pkcs11Binding;
  readonly pkcs11: Pkcs11;
  release(): void;
}

export async function leaseModule(modulePath: string): Promise<ModuleLease> {
  const binding = await loadPkcs11js();
  let loading = modules.get(modulePath);
  if (loading === undefined) {
    loading = loadModule(binding, modulePath);
    modules.set(modulePath, loading);
    loading.catch(() => modules.delete(modulePath));
  }
  const loaded = await loading;
  loaded.users += 1;
  let released = false;
  return {
    binding,
    pkcs11: loaded.pkcs11,
    release() {
      if (released) return;
      released = true;
      loaded.users -= 1;
      if (loaded.users > 0) return;
      modules.delete(modulePath);
      try {
        if (loaded.ownsInitialize) loaded.pkcs11.C_Finalize();
      } finally {
        loaded.pkcs11.close();
      }
    },
  };
}

async function loadModule(binding: Pkcs11Binding, modulePath: string): Promise<LoadedModule> {
  try {
    await access(modulePath);
  } catch (cause) {
    throw new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      'the PKCS#11 module named by module-path is not there',
      {
        cause,
        hint: "Install the HSM vendor's PKCS#11 library on this host, or correct module-path in the key URI.",
      },
    );
  }
  const pkcs11 = new binding.PKCS11();
  try {
    pkcs11.load(modulePath);
  } catch (cause) {
    throw new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      'the file named by module-path is not a PKCS#11 module',
      {
        cause,
        hint: "Point module-path at the HSM vendor's PKCS#11 library (a shared object exporting C_GetFunctionList).",
      },
    );
  }
  // The async calls run on libuv's thread pool: the library must lock for itself.
  try {
    pkcs11.C_Initialize({ flags: binding.CKF_OS_LOCKING_OK });
    return { pkcs11, users: 0, ownsInitialize: true };
  } catch (error) {
    if (returnValueOf(error) === 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      return { pkcs11, users: 0, ownsInitialize: false };
    }
    pkcs11.close();
    throw pkcs11Failure('C_Initialize', error);
  }
}
