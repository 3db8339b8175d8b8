/**
 * A MONITOR connection that keeps everything the server reports: every command any client sends, with its keys and
 * values, and every command a script runs. The harness's RespConnection answers calls in order and drops what
 * nobody asked for, so MONITOR's stream needs its own socket.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { respCall, waitFor } from '../harness/redis.js';

export class MonitorTranscript {
  readonly #socket: net.Socket;
  readonly #port: number;
  readonly #chunks: Buffer[] = [];

  private constructor(socket: net.Socket, port: number) {
    this.#socket = socket;
    this.#port = port;
    socket.on('data', (chunk: Buffer) => this.#chunks.push(chunk));
  }

  /** Connects to a server on loopback and sends MONITOR; resolves once the server has said +OK. */
  static async open(port: number): Promise<MonitorTranscript> {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const monitor = new MonitorTranscript(socket, port);
    socket.write('*1\r\n$7\r\nMONITOR\r\n');
    await waitFor(async () => monitor.text().startsWith('+OK\r\n'), 2_000, 'MONITOR to start');
    return monitor;
  }

  /** Everything received so far, as Latin-1 text (MONITOR escapes non-printable bytes as \xNN). */
  text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  /** Waits until everything sent before this call is in the transcript: an ECHO sent after it shows up. */
  async flush(): Promise<void> {
    const marker = `transcript-marker-${randomBytes(8).toString('hex')}`;
    await respCall({ port: this.#port }, 'ECHO', marker);
    await waitFor(async () => this.text().includes(marker), 5_000, 'the MONITOR transcript to catch up');
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** One command as MONITOR reported it: the command name upper-cased, then its arguments as text. */
export interface MonitoredCommand {
  readonly source: string;
  readonly args: readonly string[];
}

/** The commands of a transcript (`+<time> [<db> <client>] "CMD" "arg" ...` lines). */
export function monitoredCommands(transcript: string): MonitoredCommand[] {
  const commands: MonitoredCommand[] = [];
  for (const line of transcript.split('\r\n')) {
    const head = /^\+\d+\.\d+ \[(\d+ [^\]]+)\] /.exec(line);
    if (head === null) continue;
    const args = [...line.slice(head[0].length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    if (args.length === 0) continue;
    commands.push({ source: head[1]!, args: [args[0]!.toUpperCase(), ...args.slice(1)] });
  }
  return commands;
}

/** The key arguments of the commands phicache sends (and its scripts run); none for keyless commands. */
export function keysOf(command: MonitoredCommand): string[] {
  const [name, ...rest] = command.args;
  switch (name) {
    case 'GET':
    case 'SET':
    case 'PTTL':
    case 'PEXPIRE':
    case 'GETRANGE':
    case 'ZADD':
    case 'ZRANGE':
    case 'ZREM':
    case 'ZREMRANGEBYSCORE':
      return rest.slice(0, 1);
    case 'DEL':
    case 'UNLINK':
      return rest;
    case 'EVAL':
    case 'EVALSHA':
      return rest.slice(2, 2 + Number(rest[1]));
    default:
      return [];
  }
}
