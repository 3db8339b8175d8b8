import { PhiCacheError } from '../errors.js';

/**
 * Loads an optional peer dependency (a Redis client, a KMS or secrets SDK) only when a caller needs it. A peer that
 * is not installed is ERR_PEER_MISSING naming the package, so the caller learns what to install, not that phicache
 * failed; `alternative` ends the hint ("to use aws-kms:// key URIs", "or use the other Redis binding").
 */
export async function loadPeer<T>(name: string, load: () => Promise<T>, alternative: string): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    if (!isMissingPackage(cause, name)) throw cause;
    throw new PhiCacheError('ERR_PEER_MISSING', `the optional peer dependency ${name} is not installed`, {
      cause,
      hint: `Install it next to phicache (npm install ${name}), ${alternative}.`,
    });
  }
}

/** Only the peer itself: a package missing inside it is a broken install of that peer, reported as it is. */
function isMissingPackage(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    code === 'ERR_MODULE_NOT_FOUND' &&
    typeof message === 'string' &&
    message.startsWith(`Cannot find package '${name}'`)
  );
}
