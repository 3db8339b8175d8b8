import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../cli/run-cli.js';
import { type ConfiguredRedis, RespConnection, startConfiguredRedis } from '../harness/redis.js';

describe('ttl-audit for a user who may not run scripts', () => {
  let server: ConfiguredRedis;
  before(async () => {
    server = await startConfiguredRedis({
      config: [
        'user default off',
        'user admin on >admin-pw ~* &* +@all',
        'user auditor on >auditor-pw ~* -@all +scan +pttl +info +ping',
      ],
      probe: { username: 'admin', password: 'admin-pw' },
    });
    const admin = await RespConnection.open({
      port: server.plainPort!,
      username: 'admin',
      password: 'admin-pw',
    });
    try {
      for (let i = 0; i < 2500; i++) await admin.call('SET', `timed:${i}`, 'x', 'PX', '600000');
      await admin.call('SET', 'untimed:1', 'x');
    } finally {
      admin.close();
    }
  });
  after(() => server.stop());

  test('its PTTLs are pipelined instead of scripted, and the audit finds the same keys', async () => {
    const result = await runCli(
      [
        'ttl-audit',
        '--redis',
        `redis://127.0.0.1:${server.plainPort}`,
        '--user',
        'auditor',
        '--password-env',
        'AUDIT_PW',
        '--json',
      ],
      { AUDIT_PW: 'auditor-pw' },
    );
    assert.equal(result.exitCode, 1, result.stderr);
    const report = JSON.parse(result.stdout) as {
      scanned: number;
      findings: { kind: string; key: string }[];
    };
    assert.equal(report.scanned, 2501);
    assert.deepEqual(
      report.findings.map((f) => f.kind),
      ['no-ttl'],
    );
    assert.match(report.findings[0]!.key, /^redacted:untimed:…#/);
  });
});
