import { PhiCacheError } from '../errors.js';
import type { KekProvider, KekProviderOpenOptions, OpenKekProvider } from './key-provider.js';
import { type KeyUriScheme, parseKeyUri } from './key-uri.js';
import { LocalKeyring } from './providers/local-keyring.js';

/** The adapter module of each scheme, loaded only when a URI names it, so an unused vendor SDK is never imported. */
const ADAPTER_MODULES: Readonly<Record<Exclude<KeyUriScheme, 'local'>, string>> = {
  'aws-kms': './providers/aws-kms.js',
  'gcp-kms': './providers/gcp-kms.js',
  hcvault: './providers/vault-transit.js',
  pkcs11: './providers/pkcs11.js',
};

/** Loads an adapter module by specifier; tests pass their own to check the dispatch without a vendor SDK. */
export type AdapterLoader = (specifier: string) => Promise<unknown>;

const importAdapter: AdapterLoader = (specifier) => import(specifier);

/**
 * Opens the KEK a key URI names: `local:` is the development keyring (which refuses NODE_ENV=production), every
 * other scheme is the adapter module of its service. The URI is checked first, so a URI that carries a secret is
 * refused before any module sees it.
 */
export async function openKekProvider(
  uri: string,
  options: KekProviderOpenOptions,
  load: AdapterLoader = importAdapter,
): Promise<KekProvider> {
  const key = parseKeyUri(uri);
  if (key.scheme === 'local') {
    return LocalKeyring.open({
      domain: key.domain ?? options.domain,
      ...(options.env ? { env: options.env } : {}),
    });
  }
  const specifier = ADAPTER_MODULES[key.scheme];
  let adapter: { openKekProvider?: unknown };
  try {
    adapter = (await load(specifier)) as { openKekProvider?: unknown };
  } catch (cause) {
    if ((cause as { code?: unknown })?.code !== 'ERR_MODULE_NOT_FOUND' || !isThisModule(cause, specifier))
      throw cause;
    throw new PhiCacheError('ERR_PEER_MISSING', `this build of phicache has no ${key.scheme} key provider`, {
      cause,
      hint: `Upgrade phicache to a version with the ${key.scheme} adapter, or use another key URI.`,
    });
  }
  if (typeof adapter.openKekProvider !== 'function') {
    throw new PhiCacheError('ERR_INTERNAL', `the ${key.scheme} adapter module exports no openKekProvider`);
  }
  const provider = await (adapter.openKekProvider as OpenKekProvider)(uri, options);
  if (provider.name !== key.scheme) {
    throw new PhiCacheError(
      'ERR_INTERNAL',
      `the ${key.scheme} adapter opened a provider named ${provider.name}`,
    );
  }
  return provider;
}

/** Only the adapter module itself: its SDK missing is the adapter's own ERR_PEER_MISSING, passed through. */
function isThisModule(error: unknown, specifier: string): boolean {
  const message = (error as { message?: unknown })?.message;
  return typeof message === 'string' && message.includes(specifier.slice(1));
}
