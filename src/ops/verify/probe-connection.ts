import net from 'node:net';
import tls from 'node:tls';
import { PhiCacheError } from '../../errors.js';

/**
 * One connection to one Redis node, speaking RESP2 over node:net or node:tls, for `verify`. verify needs what a
 * cache client hides on purpose: the plain port answering, the TLS version and certificate the server offered, a
 * command sent before AUTH, and a deadline on every call (a paused server must not hang a posture check). It is
 * not a general client: one command at a time, no reconnection, no pub/sub.
 */

export type Reply = Buffer | number | null | Reply[] | ReplyError;

/** An error reply (`-NOAUTH ...`, `-NOPERM ...`): the server answered and refused. */
export class ReplyError extends Error {
  override readonly name = 'ReplyError';
}

export interface ProbeTls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** The name the server certificate must be valid for. Default: the host. */
  readonly servername?: string;
  /** false only for looking at a certificate without sending anything over the connection. */
  readonly verify?: boolean;
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
  /** OpenSSL cipher list, to lower this client's security level for a downgrade probe. */
  readonly ciphers?: string;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly tls?: ProbeTls;
  readonly username?: string;
  readonly password?: string;
}

export interface TlsSession {
  readonly protocol: string | null;
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  readonly certificate: tls.PeerCertificate | undefined;
}

export class ProbeConnection {
  readonly #socket: net.Socket;
  readonly #deadlineMs: number;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #waiters: { resolve(reply: Reply): void; reject(error: Error): void }[] = [];
  #failure: Error | undefined;
  readonly tlsSession: TlsSession | undefined;

  private constructor(socket: net.Socket, deadlineMs: number, tlsSession: TlsSession | undefined) {
    this.#socket = socket;
    this.#deadlineMs = deadlineMs;
    this.tlsSession = tlsSession;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#fail(error));
    socket.on('close', () => this.#fail(new Error('the server closed the connection')));
  }

  /** Connects (and completes the TLS handshake) within `deadlineMs`; sends AUTH when the target has a password. */
  static async open(target: ProbeTarget, deadlineMs: number): Promise<ProbeConnection> {
    const socket = await connectSocket(target, deadlineMs);
    const session =
      socket instanceof tls.TLSSocket
        ? {
            protocol: socket.getProtocol(),
            authorized: socket.authorized,
            authorizationError:
              socket.authorizationError === undefined ? undefined : String(socket.authorizationError),
            certificate: peerCertificate(socket),
          }
        : undefined;
    socket.setNoDelay(true);
    const connection = new ProbeConnection(socket, deadlineMs, session);
    if (target.password !== undefined) {
      const args = ['AUTH', ...(target.username === undefined ? [] : [target.username]), target.password];
      const reply = await connection.call(...args).catch((error: unknown) => {
        connection.close();
        throw error;
      });
      if (reply instanceof ReplyError) {
        connection.close();
        throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the server refused the credentials given', {
          cause: reply,
          hint: 'Check the user (--user) and the password (--password-env, --password-secret).',
        });
      }
    }
    return connection;
  }

  /** One command; resolves with the reply (an error reply is a `ReplyError` value, not a rejection). */
  async call(...args: readonly (string | Buffer)[]): Promise<Reply> {
    const [reply] = await this.pipeline([args]);
    return reply as Reply;
  }

  /**
   * Several commands written at once, their replies in order: one round trip, and one deadline for the batch. On
   * the deadline the connection is closed, so a late reply can never be taken for the answer to a later command.
   */
  pipeline(commands: readonly (readonly (string | Buffer)[])[]): Promise<Reply[]> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise<Reply[]>((resolve, reject) => {
      const replies: Reply[] = [];
      const timer = setTimeout(() => {
        this.#socket.destroy();
        this.#fail(
          deadlineError(`redis did not answer ${String(commands[0]![0])} within ${this.#deadlineMs} ms`),
        );
      }, this.#deadlineMs);
      for (const [i] of commands.entries()) {
        this.#waiters.push({
          resolve: (reply) => {
            replies.push(reply);
            if (i === commands.length - 1) {
              clearTimeout(timer);
              resolve(replies);
            }
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
      }
      this.#socket.write(Buffer.concat(commands.map(encode)));
    });
  }

  /** A reply as text: bulk strings and simple strings decoded as UTF-8. */
  async text(...args: readonly (string | Buffer)[]): Promise<string | ReplyError> {
    const reply = await this.call(...args);
    if (reply instanceof ReplyError) return reply;
    return Buffer.isBuffer(reply) ? reply.toString('utf8') : String(reply);
  }

  close(): void {
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let offset = 0;
    for (;;) {
      let parsed: { value: Reply; next: number } | undefined;
      try {
        parsed = parse(this.#buffer, offset);
      } catch (error) {
        this.#socket.destroy();
        this.#fail(error as Error);
        return;
      }
      if (parsed === undefined) break;
      offset = parsed.next;
      this.#waiters.shift()?.resolve(parsed.value);
    }
    this.#buffer = this.#buffer.subarray(offset);
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const waiter of this.#waiters.splice(0)) waiter.reject(this.#failure);
  }
}

const deadlines = new WeakSet<Error>();

/**
 * A server that did not answer in time. Probes that treat a refused connection as evidence (no plaintext answer, a
 * client without a certificate refused) must not treat silence so: silence proves nothing, and verify gives up.
 */
function deadlineError(message: string): PhiCacheError {
  const error = new PhiCacheError('ERR_STORE_UNAVAILABLE', message, {
    hint: 'The server is reachable but not answering (paused, overloaded, or a firewall dropping packets). Check its health, or give a longer --deadline-ms.',
  });
  deadlines.add(error);
  return error;
}

export function isDeadline(error: unknown): boolean {
  return error instanceof Error && deadlines.has(error);
}

function connectSocket(target: ProbeTarget, deadlineMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const options = target.tls;
    const socket =
      options === undefined
        ? net.connect({ host: target.host, port: target.port })
        : tls.connect({
            host: target.host,
            port: target.port,
            servername:
              net.isIP(options.servername ?? target.host) === 0 ? (options.servername ?? target.host) : '',
            rejectUnauthorized: options.verify !== false,
            ...(options.servername === undefined
              ? {}
              : { checkServerIdentity: identityFor(options.servername) }),
            ...(options.ca === undefined ? {} : { ca: options.ca }),
            ...(options.cert === undefined ? {} : { cert: options.cert }),
            ...(options.key === undefined ? {} : { key: options.key }),
            ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
            ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
            ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
          });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(deadlineError(`no connection to ${target.host}:${target.port} within ${deadlineMs} ms`));
    }, deadlineMs);
    socket.once(options === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      const code = typeof error.code === 'string' ? error.code : 'failed';
      reject(
        new PhiCacheError(
          'ERR_STORE_UNAVAILABLE',
          `could not connect to ${target.host}:${target.port} (${code})`,
          {
            cause: error,
            hint: 'Check the host and port, TLS (rediss:// and --tls-ca) and the client certificate (--tls-cert, --tls-key).',
          },
        ),
      );
    });
  });
}

/** The certificate must be valid for the name asked for, not for the address connected to. */
function identityFor(servername: string) {
  return (_host: string, certificate: tls.PeerCertificate) =>
    tls.checkServerIdentity(servername, certificate);
}

function peerCertificate(socket: tls.TLSSocket): tls.PeerCertificate | undefined {
  const certificate = socket.getPeerCertificate();
  return certificate !== null && typeof certificate === 'object' && 'valid_to' in certificate
    ? certificate
    : undefined;
}

function encode(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(arg);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Replies larger than this are refused: verify reads INFO, CONFIG and sampled values, never bulk data. */
const MAX_BULK_BYTES = 64 * 1024 * 1024;

function parse(buf: Buffer, start: number): { value: Reply; next: number } | undefined {
  const eol = buf.indexOf('\r\n', start);
  if (eol < 0) return undefined;
  const type = buf[start];
  const line = buf.toString('latin1', start + 1, eol);
  const after = eol + 2;
  switch (type) {
    case 0x2b: // +
      return { value: Buffer.from(line, 'latin1'), next: after };
    case 0x2d: // -
      return { value: new ReplyError(line), next: after };
    case 0x3a: // :
      return { value: Number(line), next: after };
    case 0x24: {
      // $
      const length = Number(line);
      if (!Number.isSafeInteger(length) || length > MAX_BULK_BYTES) throw new Error('bad bulk length');
      if (length < 0) return { value: null, next: after };
      if (buf.length < after + length + 2) return undefined;
      return { value: Buffer.from(buf.subarray(after, after + length)), next: after + length + 2 };
    }
    case 0x2a: {
      // *
      const count = Number(line);
      if (!Number.isSafeInteger(count) || count > 10_000_000) throw new Error('bad array length');
      if (count < 0) return { value: null, next: after };
      const items: Reply[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error('the server does not speak RESP');
  }
}
