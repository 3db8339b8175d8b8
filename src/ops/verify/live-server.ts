import { type ProbeConnection, type ProbeTarget, ReplyError } from './probe-connection.js';

/** A setting the connecting user may not read: CONFIG is refused to a least-privileged user, as it should be. */
export interface Refused {
  readonly refused: string;
}

export function isRefused(value: unknown): value is Refused {
  return typeof value === 'object' && value !== null && 'refused' in value;
}

/** A sampled key: its name, its PTTL, and for string values of phicache entries and key records the value. */
export interface SampledKey {
  readonly name: Buffer;
  readonly ttlMs: number;
}

/**
 * The authenticated session to one node and what the checks read through it, each read once: INFO sections,
 * CONFIG values, and a bounded sample of keys.
 */
export class LiveServer {
  readonly target: ProbeTarget;
  readonly label: string;
  readonly session: ProbeConnection;
  readonly deadlineMs: number;
  readonly #info = new Map<string, Promise<Map<string, string> | Refused>>();
  readonly #config = new Map<string, Promise<string | Refused>>();

  constructor(target: ProbeTarget, label: string, session: ProbeConnection, deadlineMs: number) {
    this.target = target;
    this.label = label;
    this.session = session;
    this.deadlineMs = deadlineMs;
  }

  /** `INFO <section>` as a map, or why it was refused. */
  info(section: string): Promise<Map<string, string> | Refused> {
    let read = this.#info.get(section);
    if (read === undefined) {
      read = this.session.text('INFO', section).then((text) => {
        if (text instanceof ReplyError) return { refused: `INFO ${section}: ${firstWord(text)}` };
        return parseInfo(text);
      });
      this.#info.set(section, read);
    }
    return read;
  }

  /** One CONFIG GET value, or why it could not be read. */
  config(name: string): Promise<string | Refused> {
    let read = this.#config.get(name);
    if (read === undefined) {
      read = this.session.call('CONFIG', 'GET', name).then((reply) => {
        if (reply instanceof ReplyError) return { refused: `CONFIG GET is refused (${firstWord(reply)})` };
        if (!Array.isArray(reply) || reply.length < 2)
          return { refused: `the server has no ${name} setting` };
        const value = reply[1];
        return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      });
      this.#config.set(name, read);
    }
    return read;
  }
}

/** The error class of a reply (`NOPERM`, `NOAUTH`, `ERR`) and no more: the rest may quote a key name. */
export function firstWord(error: ReplyError): string {
  return error.message.split(' ')[0] ?? 'ERR';
}

export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}
