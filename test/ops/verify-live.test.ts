import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sealEnvelope } from '../../src/crypto/envelope.js';
import { PhiCacheError } from '../../src/errors.js';
import type { PostureReport, ProbeTarget, Verdict } from '../../src/ops/verify/index.js';
import { verifyPosture } from '../../src/ops/verify/index.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { Policy } from '../../src/policy/policy.js';
import {
  ACL_RULES,
  type ConfiguredRedis,
  RespConnection,
  type RespConnectOptions,
  startConfiguredRedis,
} from '../harness/redis.js';

/**
 * Each live check of `verify`, made to fail and made to pass on real redis-server processes the harness starts:
 * a default server (no TLS, no password), a hardened one (TLS only, ACL users, default user off), and servers
 * with one setting changed.
 */

const KID = 'local:cache:v1';
const hmac = () => randomBytes(32).toString('base64url').slice(0, 43);
const NOW = Date.parse('2026-12-02T12:00:00Z');
/** The class the shipped policy caps, and its cap; read from the policy, not assumed. */
let policy: Policy;
let className: string;
let capMs: number;

function verdicts(report: PostureReport): Map<string, Verdict> {
  return new Map(report.checks.map((c) => [c.id, c.verdict]));
}

function evidence(report: PostureReport, id: string): string {
  return report.checks.find((c) => c.id === id)?.evidence ?? '';
}

async function withConnection<T>(
  options: RespConnectOptions,
  body: (c: RespConnection) => Promise<T>,
): Promise<T> {
  const connection = await RespConnection.open(options);
  try {
    return await body(connection);
  } finally {
    connection.close();
  }
}

function envelope(kid: string): Buffer {
  return sealEnvelope(
    randomBytes(32),
    { expiresAt: NOW + 60_000, epoch: 1, dekId: randomBytes(16), kid },
    { tenant: 't', className, storeKey: 'k' },
    Buffer.from('{}'),
    randomBytes(12),
  );
}

before(async () => {
  policy = await loadDefaultPolicy();
  const found = [...policy.classes.values()].find((c) => c.cacheable && c.maxTtlMs > 0);
  assert.ok(found, 'the shipped policy declares a cacheable class');
  className = found.name;
  capMs = found.maxTtlMs;
});

describe('verify: a default redis-server (no TLS, no password)', () => {
  let server: ConfiguredRedis;
  let report: PostureReport;
  before(async () => {
    server = await startConfiguredRedis();
    await withConnection({ port: server.plainPort! }, async (c) => {
      await c.call('SET', 'legacy:untimed', 'x');
      await c.call('SET', 'patient:512-44-1234:chart', 'x', 'PX', '60000');
      await c.call('SET', `phc:e:${className}:${hmac()}`, 'not an envelope', 'PX', '1000');
      await c.call('SET', `phc:e:${className}:${hmac()}`, envelope(KID), 'PX', String(capMs * 10));
    });
    report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.plainPort! }],
      policy,
      knownKids: [KID],
      now: NOW,
    });
  });
  after(() => server.stop());

  test('fails: plaintext listener, TLS, AUTH, the default user, least privilege', () => {
    const v = verdicts(report);
    for (const id of [
      'transport.plaintext-listener',
      'tls.version',
      'tls.certificate',
      'auth.required',
      'auth.default-user',
      'acl.commands',
      'acl.keys',
      'acl.channels',
    ]) {
      assert.equal(v.get(id), 'FAIL', `${id}: ${evidence(report, id)}`);
    }
    assert.equal(report.ok, false);
  });

  test('fails: a key without TTL, a phicache key over its cap, a value that is no envelope, a PHI key name', () => {
    const v = verdicts(report);
    for (const id of ['data.no-ttl', 'data.class-caps', 'content.envelopes', 'content.key-names']) {
      assert.equal(v.get(id), 'FAIL', `${id}: ${evidence(report, id)}`);
    }
    assert.match(evidence(report, 'content.key-names'), /ssn 1/);
  });

  test('no evidence repeats a key name or a value another application wrote', () => {
    const text = JSON.stringify(report);
    assert.doesNotMatch(text, /512-44-1234/);
    assert.doesNotMatch(text, /legacy:untimed/);
    assert.doesNotMatch(text, /not an envelope/);
    assert.match(evidence(report, 'data.no-ttl'), /redacted:legacy:…#[0-9a-f]{16}/);
  });

  test('passes on defaults that are safe: protected mode, no persistence, noeviction, protected surfaces', () => {
    const v = verdicts(report);
    for (const id of [
      'network.protected-mode',
      'network.bind',
      'surface.protected-configs',
      'surface.debug-command',
      'surface.module-command',
      'data.maxmemory-policy',
      'data.persistence',
      'server.version',
      'tls.cluster',
    ]) {
      assert.equal(v.get(id), 'PASS', `${id}: ${evidence(report, id)}`);
    }
    assert.equal(v.get('tls.replication'), 'WARN', evidence(report, 'tls.replication'));
    assert.equal(v.get('server.replication'), 'WARN', evidence(report, 'server.replication'));
  });

  test('server.version: FAIL when the caller asks for a newer minimum than this server; bad minimums are refused', async () => {
    const target = { host: '127.0.0.1', port: server.plainPort! };
    const version = await withConnection({ port: server.plainPort! }, async (c) =>
      String(/redis_version:([\d.]+)/.exec(String(await c.call('INFO', 'server')))?.[1]),
    );
    const [major = 0, minor = 0] = version.split('.').map(Number);
    const newer = `${major}.${minor + 1}`;
    const raised = await verifyPosture({ targets: [target], policy, minimumServerVersion: newer, now: NOW });
    assert.equal(verdicts(raised).get('server.version'), 'FAIL', evidence(raised, 'server.version'));
    assert.match(evidence(raised, 'server.version'), new RegExp(`older than the minimum ${newer}\\.0`));
    const exact = await verifyPosture({ targets: [target], policy, minimumServerVersion: version, now: NOW });
    assert.equal(verdicts(exact).get('server.version'), 'PASS', evidence(exact, 'server.version'));
    for (const bad of ['7', 'latest', '7.x', '']) {
      await assert.rejects(
        verifyPosture({ targets: [target], policy, minimumServerVersion: bad, now: NOW }),
        (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_CLI_USAGE',
      );
    }
  });
});

describe('verify: a hardened server (TLS only, ACL users, default user off)', () => {
  let server: ConfiguredRedis;
  const password = randomBytes(18).toString('base64url');
  const admin = { username: 'admin', password: randomBytes(18).toString('base64url') };
  let asPhicache: ProbeTarget;
  let asAdmin: ProbeTarget;
  let mine: PostureReport;
  let theirs: PostureReport;
  before(async () => {
    server = await startConfiguredRedis({
      tls: {},
      config: [
        'user default off',
        `user ${admin.username} on >${admin.password} ~* &* +@all`,
        `user phicache on >${password} ${ACL_RULES}`,
        'tls-replication yes',
      ],
      probe: admin,
    });
    const tls = { ca: server.tls!.ca };
    asPhicache = { host: '127.0.0.1', port: server.tlsPort!, tls, username: 'phicache', password };
    asAdmin = { ...asPhicache, ...admin };
    await withConnection({ port: server.tlsPort!, tls: server.tls!, ...admin }, async (c) => {
      await c.call('SET', `phc:e:${className}:${hmac()}`, envelope(KID), 'PX', String(capMs));
      await c.call(
        'SET',
        `phc:k:${className}:${hmac()}`,
        JSON.stringify({ v: 1, kid: KID, wrapped: 'AAAA', epoch: 1 }),
        'PX',
        '60000',
      );
    });
    mine = await verifyPosture({ targets: [asPhicache], policy, knownKids: [KID], now: NOW });
    theirs = await verifyPosture({ targets: [asAdmin], policy, knownKids: [KID], now: NOW });
  });
  after(() => server.stop());

  test('as phicache: every check it can see passes, and the report has no FAIL', () => {
    const v = verdicts(mine);
    for (const id of [
      'transport.plaintext-listener',
      'tls.version',
      'tls.certificate',
      'tls.certificate-expiry',
      'tls.client-certificates',
      'auth.required',
      'acl.commands',
      'acl.keys',
      'acl.channels',
      'data.no-ttl',
      'data.class-caps',
      'data.maxmemory-policy',
      'content.envelopes',
      'content.key-names',
    ]) {
      assert.equal(v.get(id), 'PASS', `${id}: ${evidence(mine, id)}`);
    }
    assert.equal(mine.ok, true, JSON.stringify(mine.checks.filter((c) => c.verdict === 'FAIL')));
    assert.match(evidence(mine, 'acl.commands'), /queued in MULTI and discarded/);
  });

  test('as phicache: settings behind CONFIG are NOT-CHECKABLE with the reason, never a silent pass', () => {
    const v = verdicts(mine);
    for (const id of [
      'auth.default-user',
      'network.protected-mode',
      'network.bind',
      'surface.protected-configs',
      'surface.debug-command',
      'surface.module-command',
    ]) {
      assert.equal(v.get(id), 'NOT-CHECKABLE', `${id}: ${evidence(mine, id)}`);
      assert.match(evidence(mine, id), /refused/);
    }
  });

  test('as an administrator: the settings pass, and least privilege fails for that user', () => {
    const v = verdicts(theirs);
    for (const id of [
      'auth.default-user',
      'network.protected-mode',
      'surface.protected-configs',
      'surface.debug-command',
      'surface.module-command',
      'tls.replication',
    ]) {
      assert.equal(v.get(id), 'PASS', `${id}: ${evidence(theirs, id)}`);
    }
    assert.equal(v.get('acl.commands'), 'FAIL');
    assert.equal(v.get('acl.keys'), 'FAIL');
    assert.equal(v.get('acl.channels'), 'FAIL');
    assert.match(evidence(theirs, 'acl.commands'), /ACL DRYRUN for user admin/);
  });

  test('the verify probes changed nothing: the keys planted are still there', async () => {
    const size = await withConnection({ port: server.tlsPort!, tls: server.tls!, ...admin }, (c) =>
      c.call('DBSIZE'),
    );
    assert.equal(size, 2);
  });

  test('client certificates: FAIL when the policy asks for them and the server does not require them', async () => {
    const report = await verifyPosture({
      targets: [asPhicache],
      policy,
      requireClientCertificates: true,
      now: NOW,
    });
    assert.equal(verdicts(report).get('tls.client-certificates'), 'FAIL');
  });

  test('a key id the keyset does not know: FAIL; no keyset at all: NOT-CHECKABLE', async () => {
    const unknown = await verifyPosture({
      targets: [asPhicache],
      policy,
      knownKids: ['aws-kms:other:v9'],
      now: NOW,
    });
    assert.equal(verdicts(unknown).get('content.envelopes'), 'FAIL');
    assert.match(evidence(unknown, 'content.envelopes'), /local:cache:v1 \(2\)/);
    const none = await verifyPosture({ targets: [asPhicache], policy, now: NOW });
    assert.equal(verdicts(none).get('content.envelopes'), 'NOT-CHECKABLE');
  });
});

describe('verify: one setting changed at a time', () => {
  const servers: ConfiguredRedis[] = [];
  after(() => Promise.all(servers.map((s) => s.stop())));
  const start = async (spec: Parameters<typeof startConfiguredRedis>[0]) => {
    const server = await startConfiguredRedis(spec);
    servers.push(server);
    return server;
  };

  test('dangerous surfaces on, protected mode off, an evicting policy, AOF: each FAILs or WARNs', async () => {
    const server = await start({
      config: [
        'protected-mode no',
        'enable-protected-configs yes',
        'enable-debug-command yes',
        'enable-module-command local',
        'maxmemory-policy allkeys-lru',
        'appendonly yes',
      ],
    });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.plainPort! }],
      policy,
      now: NOW,
    });
    const v = verdicts(report);
    assert.equal(v.get('network.protected-mode'), 'FAIL', evidence(report, 'network.protected-mode'));
    assert.equal(v.get('surface.protected-configs'), 'FAIL');
    assert.equal(v.get('surface.debug-command'), 'FAIL');
    assert.equal(v.get('surface.module-command'), 'WARN');
    assert.equal(v.get('data.maxmemory-policy'), 'FAIL');
    assert.equal(v.get('data.persistence'), 'WARN');
  });

  test('bound to every interface, MODULE from anywhere, protected mode off behind AUTH: WARN, FAIL, WARN', async () => {
    const password = randomBytes(18).toString('base64url');
    // A password on the default user keeps the server closed while it listens on every interface.
    const server = await start({
      config: [
        `user default on >${password} ~* &* +@all`,
        'bind 0.0.0.0',
        'protected-mode no',
        'enable-module-command yes',
      ],
      probe: { password },
    });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.plainPort!, password }],
      policy,
      now: NOW,
    });
    const v = verdicts(report);
    assert.equal(v.get('network.bind'), 'WARN', evidence(report, 'network.bind'));
    assert.match(evidence(report, 'network.bind'), /bind 0\.0\.0\.0: listens on every interface/);
    assert.equal(v.get('surface.module-command'), 'FAIL', evidence(report, 'surface.module-command'));
    assert.equal(v.get('network.protected-mode'), 'WARN', evidence(report, 'network.protected-mode'));
    assert.equal(v.get('auth.required'), 'PASS', evidence(report, 'auth.required'));
  });

  test('an RDB schedule: data.persistence WARNs, naming the schedule', async () => {
    const server = await start({ config: ['save "3600 1"'] });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.plainPort! }],
      policy,
      now: NOW,
    });
    assert.equal(verdicts(report).get('data.persistence'), 'WARN', evidence(report, 'data.persistence'));
    assert.match(evidence(report, 'data.persistence'), /RDB snapshots on \(save "3600 1"\)/);
  });

  test('a TLS server that also keeps its plain port: the plaintext listener FAILs', async () => {
    const server = await start({ tls: { plainPort: true } });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.tlsPort!, tls: { ca: server.tls!.ca } }],
      policy,
      now: NOW,
    });
    assert.equal(verdicts(report).get('transport.plaintext-listener'), 'FAIL');
    assert.match(
      evidence(report, 'transport.plaintext-listener'),
      new RegExp(`plain port ${server.plainPort}`),
    );
  });

  test('a certificate not valid for the name: FAIL, and no credentials are sent to that server', async () => {
    const server = await start({
      tls: { serverNames: 'DNS:elsewhere.example' },
      config: ['user default off', 'user u on >pw ~* +@all'],
      probe: { username: 'u', password: 'pw' },
    });
    const report = await verifyPosture({
      targets: [
        {
          host: '127.0.0.1',
          port: server.tlsPort!,
          tls: { ca: server.tls!.ca },
          username: 'u',
          password: 'pw',
        },
      ],
      policy,
      now: NOW,
    });
    const v = verdicts(report);
    assert.equal(v.get('tls.certificate'), 'FAIL', evidence(report, 'tls.certificate'));
    assert.equal(v.get('acl.commands'), 'NOT-CHECKABLE');
    assert.match(evidence(report, 'acl.commands'), /no credentials were sent/);
    assert.equal(report.ok, false);
  });

  test('a certificate that expires within 30 days WARNs; one already expired FAILs', async () => {
    const server = await start({ tls: { days: 10 } });
    const target = { host: '127.0.0.1', port: server.tlsPort!, tls: { ca: server.tls!.ca } };
    const soon = await verifyPosture({ targets: [target], policy, now: Date.now() });
    assert.equal(
      verdicts(soon).get('tls.certificate-expiry'),
      'WARN',
      evidence(soon, 'tls.certificate-expiry'),
    );
    const later = await verifyPosture({ targets: [target], policy, now: Date.now() + 11 * 86_400_000 });
    assert.equal(verdicts(later).get('tls.certificate-expiry'), 'FAIL');
  });

  test('a server that requires client certificates: PASS when the policy asks', async () => {
    const server = await start({ tls: { clientCertificates: true } });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.tlsPort!, tls: server.tls! }],
      policy,
      requireClientCertificates: true,
      now: NOW,
    });
    assert.equal(
      verdicts(report).get('tls.client-certificates'),
      'PASS',
      evidence(report, 'tls.client-certificates'),
    );
  });

  test('a server that accepts TLS 1.1: tls.version FAILs', async (t) => {
    const server = await start({
      tls: {},
      config: ['tls-protocols "TLSv1.1 TLSv1.2"', 'tls-ciphers DEFAULT@SECLEVEL=0'],
    });
    const report = await verifyPosture({
      targets: [{ host: '127.0.0.1', port: server.tlsPort!, tls: { ca: server.tls!.ca } }],
      policy,
      now: NOW,
    });
    const verdict = verdicts(report).get('tls.version');
    if (verdict === 'PASS' && /refused/.test(evidence(report, 'tls.version'))) {
      // This machine's OpenSSL build has no TLS 1.1 at all, so no server here can accept it.
      t.skip(`OpenSSL refuses TLS 1.1 on this machine: ${evidence(report, 'tls.version')}`);
      return;
    }
    assert.equal(verdict, 'FAIL', evidence(report, 'tls.version'));
  });
});
