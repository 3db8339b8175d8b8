import tls from 'node:tls';
import { isRefused, type LiveServer } from './live-server.js';
import { isDeadline, ProbeConnection, type ProbeTarget, ReplyError } from './probe-connection.js';
import { type Finding, fail, notCheckable, pass, warn } from './report.js';

const DAY_MS = 86_400_000;
/** A certificate this close to expiry is a WARN: time to renew before clients start refusing the server. */
const EXPIRY_WARNING_DAYS = 30;

export interface TransportOptions {
  /** Milliseconds since the epoch, for certificate expiry. */
  readonly now: number;
  /** The policy asks for client certificates (mutual TLS). */
  readonly requireClientCertificates: boolean;
}

/** What a TLS handshake that sends nothing showed: the certificate and the negotiated version. */
export interface TlsInspection {
  readonly protocol: string | null;
  readonly certificate: tls.PeerCertificate | undefined;
  readonly chainError: string | undefined;
}

/**
 * Looks at the server's certificate without verifying it and without sending a byte over the connection, so that a
 * certificate that does not verify is reported as a finding rather than stopping verify, and no credential ever
 * goes to a server that has not proved who it is.
 */
export async function inspectTls(target: ProbeTarget, deadlineMs: number): Promise<TlsInspection> {
  const connection = await ProbeConnection.open(
    { host: target.host, port: target.port, tls: { ...target.tls, verify: false } },
    deadlineMs,
  );
  connection.close();
  const session = connection.tlsSession!;
  return {
    protocol: session.protocol,
    certificate: session.certificate,
    chainError: session.authorized ? undefined : session.authorizationError,
  };
}

/** No plaintext listener: a plain connection to the endpoint fails, and the server reports no plain port. */
export async function checkPlaintextListener(
  server: LiveServer | undefined,
  target: ProbeTarget,
): Promise<Finding> {
  const id = 'transport.plaintext-listener';
  const remedy =
    'Set `port 0` and `tls-port 6379` (or 6378) in redis.conf so that only TLS is offered; on Memorystore `--transit-encryption-mode=server-authentication`, on ElastiCache `--transit-encryption-enabled --transit-encryption-mode required`.';
  if (target.tls === undefined) {
    return fail(id, `connected to ${target.host}:${target.port} over plain TCP, with no TLS`, remedy);
  }
  const plain = await plainAnswer(target, server?.deadlineMs ?? 2_000);
  if (plain !== undefined)
    return fail(id, `the TLS endpoint also answered plaintext RESP (${plain})`, remedy);
  const tcpPort = server === undefined ? undefined : await plainPortSetting(server, target.port);
  if (tcpPort !== undefined && tcpPort !== '0') {
    return fail(
      id,
      `a plain connection to the TLS endpoint failed, but the server reports plain port ${tcpPort}`,
      remedy,
    );
  }
  return pass(
    id,
    tcpPort === '0'
      ? 'a plain connection to the endpoint got no RESP answer; the server reports port 0'
      : 'a plain connection to the endpoint got no RESP answer (the server port setting was not readable)',
  );
}

/**
 * The plain port the server says it listens on: CONFIG GET port where the user may read it, else INFO's tcp_port,
 * which on a TLS-only server reports the TLS port instead of 0 and then tells nothing.
 */
async function plainPortSetting(server: LiveServer, tlsPort: number): Promise<string | undefined> {
  const setting = await server.config('port');
  if (!isRefused(setting)) return setting;
  const info = await server.info('server');
  const reported = isRefused(info) ? undefined : info.get('tcp_port');
  return reported === String(tlsPort) ? undefined : reported;
}

/** PING over plain TCP; the reply's first word when the port speaks plaintext RESP, else undefined. */
async function plainAnswer(target: ProbeTarget, deadlineMs: number): Promise<string | undefined> {
  let connection: ProbeConnection | undefined;
  try {
    connection = await ProbeConnection.open({ host: target.host, port: target.port }, deadlineMs);
    const reply = await connection.call('PING');
    if (reply instanceof ReplyError) return reply.message.split(' ')[0];
    return Buffer.isBuffer(reply) ? reply.toString('latin1').slice(0, 16) : 'a reply';
  } catch {
    return undefined;
  } finally {
    connection?.close();
  }
}

export async function checkTlsVersion(
  inspection: TlsInspection,
  target: ProbeTarget,
  deadlineMs: number,
): Promise<Finding> {
  const id = 'tls.version';
  const remedy = 'Set `tls-protocols "TLSv1.2 TLSv1.3"` in redis.conf (the default of Redis 6 and later).';
  const negotiated = inspection.protocol ?? 'unknown';
  if (!['TLSv1.2', 'TLSv1.3'].includes(negotiated)) return fail(id, `negotiated ${negotiated}`, remedy);
  // A client that offers only TLS 1.0 and 1.1 (OpenSSL's security level lowered so that it may) must be refused.
  let old: ProbeConnection | undefined;
  try {
    old = await ProbeConnection.open(
      {
        host: target.host,
        port: target.port,
        tls: {
          ...target.tls,
          verify: false,
          minVersion: 'TLSv1',
          maxVersion: 'TLSv1.1',
          ciphers: 'DEFAULT@SECLEVEL=0',
        },
      },
      deadlineMs,
    );
    return fail(
      id,
      `negotiated ${negotiated}, but the server also accepted ${old.tlsSession?.protocol ?? 'TLS 1.1'}`,
      remedy,
    );
  } catch {
    return pass(id, `negotiated ${negotiated}; a handshake offering only TLS 1.0/1.1 was refused`);
  } finally {
    old?.close();
  }
}

export function checkCertificateName(inspection: TlsInspection, target: ProbeTarget): Finding {
  const id = 'tls.certificate';
  const name = target.tls?.servername ?? target.host;
  const remedy =
    'Issue the server certificate from the CA clients pin, with the name clients connect to in its subjectAltName (tls-cert-file in redis.conf); give verify that CA with --tls-ca.';
  const certificate = inspection.certificate;
  if (certificate === undefined) return fail(id, 'the server presented no certificate', remedy);
  const mismatch = tls.checkServerIdentity(name, certificate);
  const subject = `subject CN=${String(certificate.subject?.CN ?? '?')}, names ${certificate.subjectaltname ?? 'none'}`;
  if (mismatch !== undefined) return fail(id, `not valid for ${name} (${subject})`, remedy);
  if (inspection.chainError !== undefined) {
    return fail(id, `valid for ${name}, but the chain does not verify (${inspection.chainError})`, remedy);
  }
  return pass(id, `valid for ${name} and chains to a trusted CA (${subject})`);
}

export function checkCertificateExpiry(inspection: TlsInspection, now: number): Finding {
  const id = 'tls.certificate-expiry';
  const remedy =
    'Renew the server certificate (tls-cert-file) before it expires; Memorystore: `gcloud redis instances rotate-server-ca`.';
  const certificate = inspection.certificate;
  if (certificate === undefined) return notCheckable(id, 'the server presented no certificate');
  const expires = Date.parse(certificate.valid_to);
  if (!Number.isFinite(expires)) return notCheckable(id, 'the certificate expiry could not be read');
  const days = Math.floor((expires - now) / DAY_MS);
  const when = new Date(expires).toISOString();
  if (expires <= now) return fail(id, `expired on ${when}`, remedy);
  if (days < EXPIRY_WARNING_DAYS) return warn(id, `expires on ${when}, in ${days} days`, remedy);
  return pass(id, `expires on ${when}, in ${days} days`);
}

/** Whether a client without a certificate gets a RESP answer: if it does, the server does not require one. */
export async function checkClientCertificates(
  target: ProbeTarget,
  options: TransportOptions,
  deadlineMs: number,
): Promise<Finding> {
  const id = 'tls.client-certificates';
  const remedy =
    'Set `tls-auth-clients yes` in redis.conf and give every client a certificate from the CA in tls-ca-cert-file.';
  const { cert: _cert, key: _key, ...withoutCertificate } = target.tls ?? {};
  let connection: ProbeConnection | undefined;
  let answered = false;
  try {
    connection = await ProbeConnection.open(
      { host: target.host, port: target.port, tls: withoutCertificate },
      deadlineMs,
    );
    await connection.call('PING');
    answered = true;
  } catch (error) {
    if (isDeadline(error)) throw error;
    answered = false;
  } finally {
    connection?.close();
  }
  if (!answered) return pass(id, 'a client without a certificate was refused');
  if (options.requireClientCertificates) {
    return fail(
      id,
      'a client without a certificate was answered, and the policy asks for client certificates',
      remedy,
    );
  }
  return pass(
    id,
    'not required (a client without a certificate was answered); the policy does not ask for them',
  );
}

/** TLS on replication links: replicas that sync in plaintext carry every key and value across the network. */
export async function checkReplicationTls(server: LiveServer): Promise<Finding> {
  const id = 'tls.replication';
  const remedy = 'Set `tls-replication yes` in redis.conf on the primary and every replica.';
  const setting = await server.config('tls-replication');
  const replication = await server.info('replication');
  const links = isRefused(replication)
    ? undefined
    : replication.get('role') === 'slave'
      ? 1
      : Number(replication.get('connected_slaves') ?? 0);
  if (isRefused(setting)) {
    return links === 0
      ? pass(
          id,
          `no replication links (role master, 0 replicas); tls-replication not readable: ${setting.refused}`,
        )
      : notCheckable(
          id,
          `${links ?? 'some'} replication links; tls-replication not readable: ${setting.refused}`,
          remedy,
        );
  }
  if (setting === 'yes') return pass(id, `tls-replication yes (${links ?? '?'} links)`);
  if (links === 0)
    return warn(
      id,
      'tls-replication no, and no replicas yet: a replica added later would sync in plaintext',
      remedy,
    );
  return fail(id, `tls-replication no with ${links ?? 'some'} replication links`, remedy);
}

/** TLS on the Cluster bus, which carries slot migrations (keys and values) between nodes. */
export async function checkClusterTls(server: LiveServer): Promise<Finding> {
  const id = 'tls.cluster';
  const remedy = 'Set `tls-cluster yes` in redis.conf on every node.';
  const cluster = await server.info('cluster');
  if (isRefused(cluster)) return notCheckable(id, cluster.refused);
  if (cluster.get('cluster_enabled') !== '1') return pass(id, 'not a Cluster node: no cluster bus');
  const setting = await server.config('tls-cluster');
  if (isRefused(setting))
    return notCheckable(id, `a Cluster node; tls-cluster not readable: ${setting.refused}`, remedy);
  return setting === 'yes'
    ? pass(id, 'tls-cluster yes')
    : fail(id, `tls-cluster ${setting} on a Cluster node`, remedy);
}
