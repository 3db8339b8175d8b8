import { PhiCacheError } from '../../errors.js';

/**
 * Keeps a client's latest `error` event. Both clients retry a failed connection in the background and report why
 * only there; the promise of `connect()` just times out or says the connection closed.
 */
export class ConnectionErrors {
  latest: unknown;
  readonly record = (error: unknown): void => {
    this.latest = error;
  };
}

/**
 * Waits for a client's first connection, or gives up after `ms`: `abandon` then stops the client's reconnect
 * loop, so a failed start leaves nothing running. The error names the cause (refused, timed out, authentication,
 * TLS) from the client's own codes; it never repeats the client's message, which quotes the address and may quote
 * a URL with credentials in it.
 */
export async function connectWithin(
  connecting: Promise<unknown>,
  ms: number,
  abandon: () => unknown,
  client: string,
  errors?: ConnectionErrors,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ConnectTimeout(ms)), ms);
  });
  try {
    await Promise.race([connecting, late]);
  } catch (failure) {
    connecting.catch(ignore);
    await abandon();
    const cause = errors?.latest ?? failure;
    const { reason, hint } = describeConnectFailure(cause, ms);
    throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `could not connect to redis (${client}): ${reason}`, {
      cause,
      hint,
    });
  } finally {
    clearTimeout(timer);
  }
}

class ConnectTimeout extends Error {
  constructor(ms: number) {
    super(`no connection within ${ms} ms`);
    this.name = 'ConnectTimeout';
  }
}

/** Node's and OpenSSL's codes for a handshake or certificate that failed. */
const TLS_CODES =
  /^(ERR_SSL_|ERR_TLS_|EPROTO$|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_(GET|VERIFY)_|HOSTNAME_MISMATCH)/;

const TLS_HINT =
  'Check that the port speaks TLS (rediss://), that the CA certificate given is the one that signed the server ' +
  'certificate, and that the certificate names the host connected to.';

function describeConnectFailure(error: unknown, ms: number): { reason: string; hint: string } {
  const { code, message, name } = (error ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const text = typeof message === 'string' ? message : '';
  if (text.startsWith('WRONGPASS')) {
    return {
      reason: 'the server refused the user name or password (WRONGPASS)',
      hint: 'Check the ACL user and its password, or the AUTH string when there is no user.',
    };
  }
  if (text.startsWith('NOAUTH')) {
    return {
      reason: 'the server requires authentication and none was given (NOAUTH)',
      hint: 'Give the password (and the ACL user, if the server has one); the CLI reads it from --password-env <VAR>.',
    };
  }
  if (typeof code === 'string' && TLS_CODES.test(code)) {
    return { reason: `the TLS handshake failed (${code})`, hint: TLS_HINT };
  }
  if (code === 'ECONNREFUSED') {
    return {
      reason: 'connection refused',
      hint: 'Check the host and port, and that redis-server is running there.',
    };
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return {
      reason: 'the host name does not resolve',
      hint: 'Check the host name and the DNS of this machine.',
    };
  }
  if (code === 'ECONNRESET' || name === 'SocketClosedUnexpectedlyError') {
    return {
      reason: 'the server closed the connection',
      hint: `A TLS port closes plain connections: use rediss:// there. ${TLS_HINT}`,
    };
  }
  if (
    error instanceof ConnectTimeout ||
    code === 'ETIMEDOUT' ||
    name === 'ConnectionTimeoutError' ||
    name === 'TimeoutError'
  ) {
    return {
      reason: `timed out after ${ms} ms`,
      hint: 'Check the host, the port and the firewall between them; a TLS client waits in vain on a plain port (use redis:// there).',
    };
  }
  return {
    reason: typeof code === 'string' ? `the connection failed (${code})` : 'the connection failed',
    hint: 'Check the host, the port, TLS and the credentials.',
  };
}

/** A graceful close waits for replies; a paused server never sends them, so it is bounded and then forced. */
export async function closeWithin(
  graceful: () => Promise<unknown>,
  force: () => unknown,
  ms = 1_000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = graceful().then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (!done) await force();
}

export function ignore(): void {}
