/**
 * Real redis-server processes for the tests, never mocks: plain, TLS, mutual TLS, ACL users, a 6-node Cluster
 * and a Sentinel group, each on free loopback ports with its own temp dir, stopped after.
 *
 * `test/harness/run.mjs` starts one shared fleet for the whole `npm test` run and passes it to the test files in
 * `PHICACHE_TEST_REDIS`; `sharedRedis` reads it, or starts a private fleet when a test file runs alone. Tests that
 * kill, pause or flush servers use `startRedis` for a private set and stop it after.
 *
 * No Redis client library here: readiness checks and test checks speak RESP over node:net / node:tls
 * (`RespConnection`, `respCall`); `redis-cli` is used only for `--cluster create`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

export type RedisTopology = 'plain' | 'tls' | 'mtls' | 'acl' | 'cluster' | 'sentinel';

export const TOPOLOGIES: readonly RedisTopology[] = ['plain', 'tls', 'mtls', 'acl', 'cluster', 'sentinel'];

export interface RedisNode {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly pid: number;
  role: 'master' | 'replica' | 'sentinel';
}

export interface RedisEndpoint {
  readonly topology: RedisTopology;
  /** redis://127.0.0.1:P or rediss://127.0.0.1:P: the server, or the first master. */
  readonly url: string;
  /** Every process: masters first, then replicas, then sentinels. */
  readonly nodes: readonly RedisNode[];
  /** PEM text. cert/key: the client certificate (mtls only). The server certificate is for IP:127.0.0.1 and DNS:localhost. */
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
  /** acl: the restricted user (see ACL_RULES); other topologies: none. */
  readonly username?: string;
  readonly password?: string;
  /** acl: an unrestricted user, for test checks only. */
  readonly admin?: { readonly username: string; readonly password: string };
  /** cluster: all six nodes. */
  readonly cluster?: { readonly seeds: readonly { host: string; port: number }[] };
  readonly sentinel?: {
    readonly sentinels: readonly { host: string; port: number }[];
    readonly name: string;
  };
}

export type PrivateRedis = RedisEndpoint & { stop(): Promise<void> };

/** The environment variable run.mjs uses to hand the shared fleet to the test files: JSON, topology → endpoint. */
export const SHARED_FLEET_ENV = 'PHICACHE_TEST_REDIS';

/** The master name the sentinels monitor. */
export const SENTINEL_MASTER_NAME = 'phicache';

/**
 * The ACL user phicache runs as (topology `acl`), least privilege for a cache:
 * - keys `~phc:*` only, pub/sub channels `&phc:*` only;
 * - `-@all`, then connection handling (AUTH, HELLO, PING, SELECT, CLIENT SETNAME/ID/INFO/TRACKING, ...), reads,
 *   writes, keyspace commands (DEL, UNLINK, EXISTS, PEXPIRE, PTTL, SCAN, ...), MULTI/EXEC/WATCH and pub/sub;
 * - `-@dangerous` removes KEYS, FLUSHALL, FLUSHDB, CONFIG, DEBUG, MONITOR, SORT, MIGRATE, RESTORE, SWAPDB,
 *   CLIENT KILL/LIST/PAUSE, SHUTDOWN, ...;
 * - `-function`: no server-side libraries (FUNCTION LOAD/DELETE/FLUSH came in with @write);
 * - `+info` back (ioredis' ready check sends INFO), `+time` (the server clock, for scripts), Lua by script only
 *   (EVAL, EVALSHA and their _RO forms, SCRIPT LOAD, SCRIPT EXISTS; not SCRIPT FLUSH/KILL, not FCALL);
 * - `-persist`: a cache never removes a TTL (PHI-TTL-01).
 */
export const ACL_RULES =
  'resetkeys ~phc:* resetchannels &phc:* -@all +@connection +@read +@write +@keyspace +@transaction +@pubsub ' +
  '-@dangerous -function +info +time +eval +evalsha +eval_ro +evalsha_ro +script|load +script|exists -persist';

const HOST = '127.0.0.1' as const;
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;

// ---------------------------------------------------------------------------------------------------------------
// RESP: a minimal client for checks (RESP2, one connection, replies in order).

export type RespReply = string | number | null | RespReply[] | RespReplyError;

/** An error reply from the server (`-ERR ...`, `-NOPERM ...`). */
export class RespReplyError extends Error {
  override readonly name = 'RespReplyError';
}

export interface RespConnectOptions {
  readonly host?: string;
  readonly port: number;
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
  /** Sent as AUTH [username] password right after connecting. */
  readonly username?: string;
  readonly password?: string;
  /** A call that gets no reply for this long fails (and the connection is closed). Default 2000. */
  readonly timeoutMs?: number;
  /** The name the server certificate is checked against. Default: the host. */
  readonly servername?: string;
}

type Parsed = { value: RespReply; next: number } | undefined;

function parseReply(buf: Buffer, start: number): Parsed {
  const eol = buf.indexOf('\r\n', start);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[start]!);
  const line = buf.toString('utf8', start + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
      return { value: new RespReplyError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next: after };
      if (buf.length < after + length + 2) return undefined;
      return { value: buf.toString('utf8', after, after + length), next: after + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next: after };
      const items: RespReply[] = [];
      let next = after;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next);
        if (item === undefined) return undefined;
        items.push(item.value);
        next = item.next;
      }
      return { value: items, next };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}

function encodeCommand(args: readonly (string | number | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** One connection to one server; `call` sends a command and resolves with its reply (an error reply rejects). */
export class RespConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending: { resolve(value: RespReply): void; reject(error: Error): void }[] = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('connection closed')));
    socket.on('timeout', () => {
      if (this.pending.length > 0) socket.destroy(new Error('timed out waiting for a reply'));
    });
  }

  static async open(options: RespConnectOptions): Promise<RespConnection> {
    const host = options.host ?? HOST;
    const timeoutMs = options.timeoutMs ?? 2_000;
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = options.tls
        ? tls.connect({
            host,
            port: options.port,
            ca: options.tls.ca,
            ...(options.tls.cert === undefined ? {} : { cert: options.tls.cert }),
            ...(options.tls.key === undefined ? {} : { key: options.tls.key }),
            ...(options.servername === undefined
              ? {}
              : {
                  servername: options.servername,
                  checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
                    tls.checkServerIdentity(options.servername!, cert),
                }),
          })
        : net.connect({ host, port: options.port });
      const timer = setTimeout(
        () => s.destroy(new Error(`connect to ${host}:${options.port} timed out`)),
        timeoutMs,
      );
      s.once(options.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs);
    const connection = new RespConnection(socket);
    if (options.password !== undefined) {
      try {
        await connection.call(
          'AUTH',
          ...(options.username === undefined ? [] : [options.username]),
          options.password,
        );
      } catch (error) {
        connection.close();
        throw error;
      }
    }
    return connection;
  }

  call(...args: (string | number | Buffer)[]): Promise<RespReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<RespReply>((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      let parsed: Parsed;
      try {
        parsed = parseReply(this.buffer, offset);
      } catch (error) {
        this.socket.destroy(error as Error);
        return;
      }
      if (parsed === undefined) break;
      offset = parsed.next;
      const waiter = this.pending.shift();
      if (waiter === undefined) continue; // a push message: not expected in RESP2 outside pub/sub
      if (parsed.value instanceof RespReplyError) waiter.reject(parsed.value);
      else waiter.resolve(parsed.value);
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.splice(0)) waiter.reject(error);
  }
}

/** Opens a connection, sends one command, closes. */
export async function respCall(
  options: RespConnectOptions,
  ...args: (string | number | Buffer)[]
): Promise<RespReply> {
  const connection = await RespConnection.open(options);
  try {
    return await connection.call(...args);
  } finally {
    connection.close();
  }
}

/** Connection options for one node of an endpoint, as the phicache user (acl) or as admin (`{ admin: true }`). */
export function connectOptions(
  endpoint: RedisEndpoint,
  node: { port: number } = endpoint.nodes[0]!,
  as: { admin?: boolean } = {},
): RespConnectOptions {
  const isSentinel = endpoint.nodes.some((n) => n.port === node.port && n.role === 'sentinel');
  const credentials = as.admin ? endpoint.admin : endpoint;
  return {
    host: HOST,
    port: node.port,
    ...(endpoint.tls && !isSentinel ? { tls: endpoint.tls } : {}),
    ...(credentials?.username === undefined || isSentinel ? {} : { username: credentials.username }),
    ...(credentials?.password === undefined || isSentinel ? {} : { password: credentials.password }),
  };
}

/** `INFO`-style text (`key:value` lines) as a map. */
export function parseInfo(text: RespReply): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of String(text).split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

// ---------------------------------------------------------------------------------------------------------------
// Waiting and signals.

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` (errors count as false) until it holds; throws naming `what` and the last error on timeout. */
export async function waitFor(
  condition: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  // The monotonic clock: a step of the wall clock (NTP, a faked date) neither cuts the wait short nor stretches it.
  const deadline = performance.now() + timeoutMs;
  let delay = 10;
  let lastError: unknown;
  for (;;) {
    try {
      if (await condition()) return;
    } catch (error) {
      lastError = error;
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      const cause =
        lastError === undefined ? '' : ` (last error: ${(lastError as Error).message ?? lastError})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, 100);
  }
}

/** Pids of the shared fleet: tests must not pause or kill them. */
const sharedPids = new Set<number>();

function signalNode(node: RedisNode, signal: NodeJS.Signals): void {
  if (sharedPids.has(node.pid)) {
    throw new Error(
      `refusing to ${signal} pid ${node.pid}: it belongs to the shared fleet; use startRedis()`,
    );
  }
  process.kill(node.pid, signal);
}

/** SIGSTOP: the server stops answering (connections stay open, commands hang). */
export function pause(node: RedisNode): void {
  signalNode(node, 'SIGSTOP');
}

/** SIGCONT: a paused server answers again. */
export function resume(node: RedisNode): void {
  signalNode(node, 'SIGCONT');
}

/** SIGKILL: the server dies without a word. */
export function kill(node: RedisNode): void {
  signalNode(node, 'SIGKILL');
}

// ---------------------------------------------------------------------------------------------------------------
// Processes.

interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly dir: string;
  readonly log: string;
  exited: boolean;
  readonly exit: Promise<void>;
}

/** Every redis-server this process started and has not yet seen exit, and their temp dirs. */
const live = new Set<Proc>();
const tempDirs = new Set<string>();
let handlersInstalled = false;

function killSurvivors(): void {
  for (const proc of live) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  tempDirs.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killSurvivors);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      // Someone else handles this signal (run.mjs stops its fleet gracefully): the 'exit' handler still runs.
      if (process.listenerCount(signal) > 1) return;
      killSurvivors();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal); // the default action: terminate with this signal
    };
    process.on(signal, onSignal);
  }
}

function makeTempDir(prefix: string): string {
  installHandlers();
  const dir = mkdtempSync(join(tmpdir(), `phicache-redis-${prefix}-`)); // sync: registered before any exit
  tempDirs.add(dir);
  return dir;
}

async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Free loopback ports from the OS (listen on 0, close). All distinct; another process may still take one. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const server = net.createServer();
          server.unref();
          server.once('error', reject);
          server.listen(0, HOST, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as net.AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

function logTail(log: string, lines = 30): string {
  try {
    return readFileSync(log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface LaunchSpec {
  readonly name: string;
  /** How many ports: the first is the one clients use (for TLS, the TLS port). */
  readonly ports: number;
  /** The arguments for redis-server; may write config files into `dir`. */
  args(ports: readonly number[], dir: string): Promise<string[]>;
  /** Credentials / TLS for the readiness probe. */
  readonly probe: Omit<RespConnectOptions, 'port'>;
}

class PortInUse extends Error {}

/** Starts one redis-server and waits until it answers INFO with its own pid; retries if a port was taken. */
async function launch(spec: LaunchSpec): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const dir = makeTempDir(spec.name);
    try {
      return await launchOnce(spec, dir);
    } catch (error) {
      await removeTempDir(dir);
      if (!(error instanceof PortInUse) || attempt >= 5) throw error;
    }
  }
}

async function launchOnce(spec: LaunchSpec, dir: string): Promise<Proc> {
  const ports = await freePorts(spec.ports);
  const args = await spec.args(ports, dir);
  const log = join(dir, 'redis.log');
  const fd = openSync(log, 'a');
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', fd, fd], detached: false });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) {
    // spawn failed (ENOENT: not installed); the reason arrives as an 'error' event
    const error = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw new Error(`could not run redis-server: ${error.message}; run scripts/ensure-test-deps.sh`);
  }
  child.unref(); // a memoized private fleet must not keep a test file's process alive; 'exit' kills it
  let markExited = () => {};
  const proc: Proc = {
    child,
    pid: child.pid,
    port: ports[0]!,
    dir,
    log,
    exited: false,
    exit: new Promise<void>((resolve) => {
      markExited = resolve;
    }),
  };
  child.once('exit', () => {
    proc.exited = true;
    live.delete(proc);
    markExited();
  });
  live.add(proc); // at once: an exit from here on kills it

  const deadline = performance.now() + START_TIMEOUT_MS;
  for (;;) {
    if (proc.exited) {
      const tail = logTail(log);
      if (/address already in use/i.test(tail)) throw new PortInUse(tail);
      throw new Error(
        `${spec.name} redis-server exited during startup (ports ${ports.join(', ')}); log:\n${tail}`,
      );
    }
    try {
      const info = parseInfo(
        await respCall({ ...spec.probe, port: proc.port, timeoutMs: 1_000 }, 'INFO', 'server'),
      );
      // Another process's server may hold the port we picked: only our own pid counts.
      if (Number(info.get('process_id')) === proc.pid) return proc;
    } catch {
      // not up yet
    }
    if (performance.now() > deadline) {
      await stopProc(proc);
      throw new Error(
        `${spec.name} redis-server did not answer on port ${proc.port} within ${START_TIMEOUT_MS} ms; log:\n${logTail(log)}`,
      );
    }
    await sleep(proc.exited ? 0 : 15);
  }
}

/** SIGTERM (and SIGCONT, in case it is paused), SIGKILL after 3 s, then remove its temp dir. */
async function stopProc(proc: Proc): Promise<void> {
  if (!proc.exited) {
    try {
      process.kill(proc.pid, 'SIGTERM');
      process.kill(proc.pid, 'SIGCONT');
    } catch {
      // already gone
    }
    const graceful = await Promise.race([proc.exit.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!graceful) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
      await proc.exit;
    }
  }
  await removeTempDir(proc.dir);
}

/** Common redis-server arguments: no persistence, loopback only, foreground. */
function baseArgs(dir: string): string[] {
  return [
    '--bind',
    HOST,
    '--daemonize',
    'no',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--repl-diskless-sync-delay',
    '0', // replicas sync at once, not after 5 s
    '--shutdown-timeout',
    '0', // SIGTERM does not wait for lagging (or paused) replicas
    '--loglevel',
    'notice',
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// TLS material, made with openssl at test time.

interface Certificates {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

let certificatesOnce: Promise<Certificates> | undefined;

function openssl(cwd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (error, _stdout, stderr) => {
      if (error)
        reject(new Error(`openssl ${args.slice(0, 2).join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve();
    });
  });
}

/** What the server certificate says: how long it is valid and which names it covers. */
interface CertificateShape {
  readonly days?: number;
  readonly serverNames?: string;
}

async function makeCertificates(shape: CertificateShape = {}): Promise<Certificates> {
  const days = String(shape.days ?? 2);
  const serverNames = shape.serverNames ?? 'IP:127.0.0.1,DNS:localhost';
  const dir = makeTempDir('certs');
  try {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await openssl(dir, [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      days,
      '-subj',
      '/CN=phicache test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const leaf = async (name: string, cn: string, extensions: string) => {
      await writeFile(join(dir, `${name}.ext`), extensions);
      await openssl(dir, [
        'req',
        '-new',
        ...ec,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${cn}`,
      ]);
      await openssl(dir, [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-days',
        days,
        '-out',
        `${name}.crt`,
        '-extfile',
        `${name}.ext`,
      ]);
    };
    const common = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
    await Promise.all([
      leaf('server', 'localhost', `${common}extendedKeyUsage=serverAuth\nsubjectAltName=${serverNames}\n`),
      leaf('client', 'phicache', `${common}extendedKeyUsage=clientAuth\n`),
    ]);
    const read = (file: string) => readFile(join(dir, file), 'utf8');
    const [ca, serverCert, serverKey, clientCert, clientKey] = await Promise.all(
      ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key'].map(read),
    );
    return {
      ca: ca!,
      serverCert: serverCert!,
      serverKey: serverKey!,
      clientCert: clientCert!,
      clientKey: clientKey!,
    };
  } finally {
    await removeTempDir(dir);
  }
}

/** The CA, server and client certificates (PEM), made once per process. */
function certificates(): Promise<Certificates> {
  certificatesOnce ??= makeCertificates().catch((error) => {
    certificatesOnce = undefined;
    throw error;
  });
  return certificatesOnce;
}

/**
 * A CA certificate (PEM) made now that signed none of the servers' certificates, for tests where a pinned CA must
 * be refused. Made at test time: a certificate bundled with Node (`tls.rootCertificates`) expires one day and then
 * fails those tests for the wrong reason.
 */
export async function strangerCaCertificate(): Promise<string> {
  return (await makeCertificates()).ca;
}

// ---------------------------------------------------------------------------------------------------------------
// Topologies.

const node = (proc: Proc, role: RedisNode['role']): RedisNode => ({
  host: HOST,
  port: proc.port,
  pid: proc.pid,
  role,
});

function fleet(procs: Proc[], endpoint: RedisEndpoint): PrivateRedis {
  let stopping: Promise<void> | undefined;
  return {
    ...endpoint,
    stop: () => {
      stopping ??= Promise.all(procs.map(stopProc)).then(() => {});
      return stopping;
    },
  };
}

/** Starts everything in `starts`; if any fails, stops those that started and rethrows. */
async function startAll(starts: Promise<Proc>[]): Promise<Proc[]> {
  const results = await Promise.allSettled(starts);
  const failed = results.find((result) => result.status === 'rejected');
  const started = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  if (failed) {
    await Promise.all(started.map(stopProc));
    throw failed.reason;
  }
  return started;
}

async function withCleanup<T>(procs: Proc[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    await Promise.all(procs.map(stopProc));
    throw error;
  }
}

async function startPlain(): Promise<PrivateRedis> {
  const proc = await launch({
    name: 'plain',
    ports: 1,
    probe: {},
    args: async ([port], dir) => [...baseArgs(dir), '--port', String(port)],
  });
  return fleet([proc], {
    topology: 'plain',
    url: `redis://${HOST}:${proc.port}`,
    nodes: [node(proc, 'master')],
  });
}

async function startTls(topology: 'tls' | 'mtls'): Promise<PrivateRedis> {
  const certs = await certificates();
  const clientTls =
    topology === 'mtls' ? { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } : { ca: certs.ca };
  const proc = await launch({
    name: topology,
    ports: 1,
    probe: { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } },
    args: async ([port], dir) => {
      await Promise.all([
        writeFile(join(dir, 'ca.crt'), certs.ca),
        writeFile(join(dir, 'server.crt'), certs.serverCert),
        writeFile(join(dir, 'server.key'), certs.serverKey, { mode: 0o600 }),
      ]);
      return [
        ...baseArgs(dir),
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        join(dir, 'server.crt'),
        '--tls-key-file',
        join(dir, 'server.key'),
        '--tls-ca-cert-file',
        join(dir, 'ca.crt'),
        '--tls-auth-clients',
        topology === 'mtls' ? 'yes' : 'no',
      ];
    },
  });
  return fleet([proc], {
    topology,
    url: `rediss://${HOST}:${proc.port}`,
    nodes: [node(proc, 'master')],
    tls: clientTls,
  });
}

async function startAcl(): Promise<PrivateRedis> {
  const password = randomBytes(18).toString('base64url');
  const admin = { username: 'admin', password: randomBytes(18).toString('base64url') };
  const proc = await launch({
    name: 'acl',
    ports: 1,
    probe: admin,
    args: async ([port], dir) => {
      // A config file keeps the passwords off the command line.
      const conf = [
        'user default off',
        `user ${admin.username} on >${admin.password} ~* &* +@all`,
        `user phicache on >${password} ${ACL_RULES}`,
        '',
      ].join('\n');
      await writeFile(join(dir, 'redis.conf'), conf, { mode: 0o600 });
      return [join(dir, 'redis.conf'), ...baseArgs(dir), '--port', String(port)];
    },
  });
  return fleet([proc], {
    topology: 'acl',
    url: `redis://${HOST}:${proc.port}`,
    nodes: [node(proc, 'master')],
    username: 'phicache',
    password,
    admin,
  });
}

function runRedisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error)
        reject(
          new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed: ${error.message}\n${stdout}${stderr}`),
        );
      else resolve(stdout);
    });
  });
}

async function startCluster(): Promise<PrivateRedis> {
  const procs = await startAll(
    Array.from({ length: 6 }, (_, i) =>
      launch({
        name: `cluster${i}`,
        ports: 2, // client port and cluster bus port (not port + 10000, which may be taken or out of range)
        probe: {},
        args: async ([port, busPort], dir) => [
          ...baseArgs(dir),
          '--port',
          String(port),
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          join(dir, 'nodes.conf'),
          '--cluster-node-timeout',
          '2000',
        ],
      }),
    ),
  );
  return withCleanup(procs, async () => {
    await runRedisCli(
      [
        '--cluster',
        'create',
        ...procs.map((p) => `${HOST}:${p.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      30_000,
    );
    const roles = new Map<number, RedisNode['role']>();
    await waitFor(
      async () => {
        for (const proc of procs) {
          const info = parseInfo(await respCall({ port: proc.port }, 'CLUSTER', 'INFO'));
          if (info.get('cluster_state') !== 'ok' || info.get('cluster_slots_ok') !== '16384') return false;
          if (info.get('cluster_known_nodes') !== '6') return false;
        }
        for (const proc of procs) {
          const lines = String(await respCall({ port: proc.port }, 'CLUSTER', 'NODES'))
            .trim()
            .split('\n');
          const seen = new Map<number, RedisNode['role']>();
          for (const line of lines) {
            const [, address, flags] = line.split(' ');
            const port = Number(address?.split('@')[0]?.split(':')[1]);
            if (/fail|handshake|noaddr/.test(flags ?? '')) return false;
            seen.set(port, flags?.includes('master') ? 'master' : 'replica');
          }
          if ([...seen.values()].filter((role) => role === 'master').length !== 3 || seen.size !== 6)
            return false;
          if (roles.size > 0 && [...seen].some(([port, role]) => roles.get(port) !== role)) return false;
          for (const [port, role] of seen) roles.set(port, role);
        }
        for (const proc of procs) {
          if (roles.get(proc.port) !== 'replica') continue;
          const replication = parseInfo(await respCall({ port: proc.port }, 'INFO', 'replication'));
          if (replication.get('master_link_status') !== 'up') return false;
        }
        return true;
      },
      15_000,
      'the cluster: cluster_state:ok and 16384 slots on every node, 3 masters, replicas in sync',
    );
    const nodes = procs
      .map((proc) => node(proc, roles.get(proc.port)!))
      .sort((a, b) => Number(a.role === 'replica') - Number(b.role === 'replica'));
    return fleet(procs, {
      topology: 'cluster',
      url: `redis://${HOST}:${nodes[0]!.port}`,
      nodes,
      cluster: { seeds: nodes.map(({ host, port }) => ({ host, port })) },
    });
  });
}

async function startSentinel(): Promise<PrivateRedis> {
  const name = SENTINEL_MASTER_NAME;
  const master = await launch({
    name: 'sentinel-master',
    ports: 1,
    probe: {},
    args: async ([port], dir) => [...baseArgs(dir), '--port', String(port)],
  });
  const procs = [master];
  return withCleanup(procs, async () => {
    const replica = await launch({
      name: 'sentinel-replica',
      ports: 1,
      probe: {},
      args: async ([port], dir) => [
        ...baseArgs(dir),
        '--port',
        String(port),
        '--replicaof',
        HOST,
        String(master.port),
      ],
    });
    procs.push(replica);
    // Sentinels learn replicas from the master's INFO: make sure the replica is listed before they start.
    await waitFor(
      async () => {
        const info = parseInfo(await respCall({ port: master.port }, 'INFO', 'replication'));
        return info.get('slave0')?.includes(`port=${replica.port},state=online`) ?? false;
      },
      10_000,
      'the sentinel group replica to sync',
    );
    const sentinels = await startAll(
      [0, 1, 2].map((i) =>
        launch({
          name: `sentinel${i}`,
          ports: 1,
          probe: {},
          args: async ([port], dir) => {
            const conf = [
              `port ${port}`,
              `bind ${HOST}`,
              `dir ${dir}`,
              'daemonize no',
              `sentinel monitor ${name} ${HOST} ${master.port} 2`,
              `sentinel down-after-milliseconds ${name} 1000`,
              `sentinel failover-timeout ${name} 5000`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n');
            await writeFile(join(dir, 'sentinel.conf'), conf); // writable: sentinels rewrite it
            return [join(dir, 'sentinel.conf'), '--sentinel'];
          },
        }),
      ),
    );
    procs.push(...sentinels);
    await waitFor(
      async () => {
        for (const sentinel of sentinels) {
          const at = { port: sentinel.port };
          const address = await respCall(at, 'SENTINEL', 'get-master-addr-by-name', name);
          if (!Array.isArray(address) || Number(address[1]) !== master.port) return false;
          const replicas = await respCall(at, 'SENTINEL', 'replicas', name);
          const known = (replicas as string[][]).map(pairs);
          if (!known.some((r) => Number(r.get('port')) === replica.port && r.get('flags') === 'slave'))
            return false;
          const others = await respCall(at, 'SENTINEL', 'sentinels', name);
          if (!Array.isArray(others) || others.length !== sentinels.length - 1) return false;
        }
        return true;
      },
      15_000,
      `each sentinel to report master ${name}, its replica and the other sentinels`,
    );
    const sentinelNodes = sentinels.map((proc) => node(proc, 'sentinel'));
    return fleet(procs, {
      topology: 'sentinel',
      url: `redis://${HOST}:${master.port}`,
      nodes: [node(master, 'master'), node(replica, 'replica'), ...sentinelNodes],
      sentinel: { sentinels: sentinelNodes.map(({ host, port }) => ({ host, port })), name },
    });
  });
}

/** A flat [key, value, key, value, ...] reply as a map. */
function pairs(flat: readonly RespReply[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), String(flat[i + 1]));
  return map;
}

/** A private set of servers of one topology, for tests that kill, pause or flush them. Call `stop()` after. */
export async function startRedis(topology: RedisTopology): Promise<PrivateRedis> {
  switch (topology) {
    case 'plain':
      return startPlain();
    case 'tls':
    case 'mtls':
      return startTls(topology);
    case 'acl':
      return startAcl();
    case 'cluster':
      return startCluster();
    case 'sentinel':
      return startSentinel();
    default:
      throw new Error(`unknown topology ${String(topology)}`);
  }
}

const privateShared = new Map<RedisTopology, Promise<PrivateRedis>>();

/**
 * The shared fleet's endpoint (from PHICACHE_TEST_REDIS, set by run.mjs), else a private one started once for
 * this process and killed when it exits. Never kill, pause, FLUSHALL or reconfigure what this returns.
 */
export async function sharedRedis(topology: RedisTopology): Promise<RedisEndpoint> {
  const fromEnv = process.env[SHARED_FLEET_ENV];
  if (fromEnv) {
    const endpoint = (JSON.parse(fromEnv) as Partial<Record<RedisTopology, RedisEndpoint>>)[topology];
    if (endpoint) {
      for (const n of endpoint.nodes) sharedPids.add(n.pid);
      return endpoint;
    }
  }
  let started = privateShared.get(topology);
  if (!started) {
    started = startRedis(topology);
    privateShared.set(topology, started);
    started.catch(() => privateShared.delete(topology));
  }
  const { stop: _stop, ...endpoint } = await started;
  for (const n of endpoint.nodes) sharedPids.add(n.pid);
  return endpoint;
}

/** Test support: whether a pid is a live process (a zombie, exited but not yet reaped, counts as dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A server shaped by the test: redis.conf lines, TLS with or without a plain port, certificates of a given life
// and names. For posture checks, which need one server per setting to make each check fail and pass.

export interface ConfiguredRedisSpec {
  /** redis.conf lines (users, passwords, settings): a file keeps passwords off the command line. */
  readonly config?: readonly string[];
  /** A TLS port; the plain port is off (`port 0`) unless `plainPort`. */
  readonly tls?: {
    readonly plainPort?: boolean;
    readonly clientCertificates?: boolean;
    /** Validity of the CA and the server certificate in days. Default 400. */
    readonly days?: number;
    /** The server certificate's subjectAltName. Default `IP:127.0.0.1,DNS:localhost`. */
    readonly serverNames?: string;
  };
  /** Credentials the readiness probe uses, when the default user cannot run INFO. */
  readonly probe?: { readonly username?: string; readonly password?: string };
  /** A Cluster node (`cluster-enabled yes`) with its bus on a port of its own, not port + 10000. */
  readonly clusterNode?: boolean;
}

export type ConfiguredRedis = PrivateRedis & {
  /** The plain port, when there is one. */
  readonly plainPort?: number;
  /** The TLS port, when there is one. */
  readonly tlsPort?: number;
};

/** One private redis-server as `spec` describes; call `stop()` after. */
export async function startConfiguredRedis(spec: ConfiguredRedisSpec = {}): Promise<ConfiguredRedis> {
  const tlsSpec = spec.tls;
  const certs =
    tlsSpec === undefined
      ? undefined
      : await makeCertificates({
          days: tlsSpec.days ?? 400,
          ...(tlsSpec.serverNames === undefined ? {} : { serverNames: tlsSpec.serverNames }),
        });
  const ports = (tlsSpec?.plainPort === true ? 2 : 1) + (spec.clusterNode === true ? 1 : 0);
  const clientTls =
    certs === undefined ? undefined : { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
  let plainPort: number | undefined;
  const proc = await launch({
    name: 'configured',
    ports,
    probe: {
      ...(clientTls === undefined ? {} : { tls: clientTls }),
      ...(tlsSpec?.serverNames?.startsWith('DNS:')
        ? { servername: tlsSpec.serverNames.slice(4).split(',')[0]! }
        : {}),
      ...(spec.probe ?? {}),
    },
    args: async (picked, dir) => {
      // The harness defaults first, as lines, so that the spec's own lines (later) override them.
      const lines = [
        `bind ${HOST}`,
        'daemonize no',
        `dir ${dir}`,
        'save ""',
        'appendonly no',
        'shutdown-timeout 0',
        'loglevel notice',
      ];
      if (certs !== undefined) {
        await Promise.all([
          writeFile(join(dir, 'ca.crt'), certs.ca),
          writeFile(join(dir, 'server.crt'), certs.serverCert),
          writeFile(join(dir, 'server.key'), certs.serverKey, { mode: 0o600 }),
        ]);
        lines.push(
          `port ${tlsSpec?.plainPort === true ? picked[1] : 0}`,
          `tls-port ${picked[0]}`,
          `tls-cert-file ${join(dir, 'server.crt')}`,
          `tls-key-file ${join(dir, 'server.key')}`,
          `tls-ca-cert-file ${join(dir, 'ca.crt')}`,
          `tls-auth-clients ${tlsSpec?.clientCertificates === true ? 'yes' : 'no'}`,
        );
      } else {
        lines.push(`port ${picked[0]}`);
      }
      plainPort = certs === undefined ? picked[0] : tlsSpec?.plainPort === true ? picked[1] : undefined;
      if (spec.clusterNode === true) lines.push('cluster-enabled yes', `cluster-port ${picked.at(-1)}`);
      lines.push(...(spec.config ?? []));
      await writeFile(join(dir, 'redis.conf'), `${lines.join('\n')}\n`, { mode: 0o600 });
      return [join(dir, 'redis.conf')];
    },
  });
  return {
    ...fleet([proc], {
      topology: certs === undefined ? 'plain' : 'tls',
      url: `${certs === undefined ? 'redis' : 'rediss'}://${HOST}:${proc.port}`,
      nodes: [node(proc, 'master')],
      ...(clientTls === undefined ? {} : { tls: clientTls }),
    }),
    ...(plainPort === undefined ? {} : { plainPort }),
    ...(certs === undefined ? {} : { tlsPort: proc.port }),
  };
}
