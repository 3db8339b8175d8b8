import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { openAuditKeys } from '../../src/audit/audit-keys.js';
import { Keyset } from '../../src/keys/keyset.js';
import { NameKeyring } from '../../src/keys/tenant-names.js';
import { writeLog } from '../audit/trail-fixture.js';
import { runCli } from './run-cli.js';

const errorCode = (stdout: string) => (JSON.parse(stdout) as { error: { code: string } }).error.code;

describe('phicache keys init', () => {
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-keys-init-'));
    env = { PHICACHE_HOME: join(dir, 'home'), NODE_ENV: 'development' };
  });

  test('writes a keyset naming each KEK; the file opens and holds a working name secret and audit key', async () => {
    const out = join(dir, 'keyset.json');
    const run = await runCli(
      [
        'keys',
        'init',
        '--kek',
        'local:',
        '--audit-kek',
        'local:',
        '--backup-kek',
        'local:',
        '--out',
        out,
        '--json',
      ],
      env,
    );
    assert.equal(run.exitCode, 0, run.stderr);
    const data = JSON.parse(run.stdout) as { id: string; keks: unknown; signingKid: string };
    assert.deepEqual(data.keks, { cache: 'local:', audit: 'local:', backup: 'local:' });
    const opened = await Keyset.open(out, { env });
    assert.equal(opened.id, data.id);
    assert.equal((await opened.cache.nameSecret()).length, 32);
    assert.equal((await openAuditKeys({ keyset: opened.audit })).signingKid, data.signingKid);
  });

  test('refuses to overwrite an existing file: exit 2, the file unchanged', async () => {
    const out = join(dir, 'existing.json');
    await writeFile(out, 'precious');
    const run = await runCli(['keys', 'init', '--kek', 'local:', '--audit-kek', 'local:', '--out', out], env);
    assert.equal(run.exitCode, 2);
    assert.match(run.stderr, /^error ERR_CLI_USAGE: .*exists; a keyset is never overwritten\nhint: /);
    assert.equal(await readFile(out, 'utf8'), 'precious');
  });

  test('one KEK for two domains: exit 2, unless --allow-shared-kek', async () => {
    const shared = ['keys', 'init', '--kek', 'local:', '--audit-kek', 'local:cache', '--json'];
    const refused = await runCli([...shared, '--out', join(dir, 'shared-refused.json')], env);
    assert.equal(refused.exitCode, 2);
    assert.equal(errorCode(refused.stdout), 'ERR_CLI_USAGE');
    assert.match(refused.stdout, /same KEK/);
    await assert.rejects(readFile(join(dir, 'shared-refused.json')));
    const allowed = await runCli([...shared, '--allow-shared-kek', '--out', join(dir, 'shared.json')], env);
    assert.equal(allowed.exitCode, 0, allowed.stderr);
  });

  test('a URI carrying a PIN, a missing flag, or the local keyring in production: exit 2, no secret echoed', async () => {
    const pin = '918273645';
    const secret = await runCli(
      [
        'keys',
        'init',
        '--kek',
        `pkcs11:token=t;object=o?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=${pin}`,
        '--audit-kek',
        'local:',
        '--out',
        join(dir, 'pin.json'),
      ],
      env,
    );
    assert.equal(secret.exitCode, 2);
    assert.match(secret.stderr, /ERR_CLI_USAGE: key URI: pin-value= would put a secret in the URI/);
    assert.ok(!secret.stderr.includes(pin) && !secret.stdout.includes(pin));
    const missing = await runCli(['keys', 'init', '--kek', 'local:', '--out', join(dir, 'x.json')], env);
    assert.equal(missing.exitCode, 2);
    assert.match(missing.stderr, /needs --kek, --audit-kek and --out/);
    const production = await runCli(
      ['keys', 'init', '--kek', 'local:', '--audit-kek', 'local:', '--out', join(dir, 'prod.json'), '--json'],
      { ...env, NODE_ENV: 'production' },
    );
    assert.equal(production.exitCode, 2);
    assert.equal(errorCode(production.stdout), 'ERR_KEYRING_PRODUCTION');
  });
});

describe('--keyset on the audit commands', () => {
  let dir: string;
  let env: Record<string, string>;
  let keysetPath: string;
  let logDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-keyset-cli-'));
    env = { PHICACHE_HOME: join(dir, 'home'), NODE_ENV: 'development' };
    keysetPath = join(dir, 'keyset.json');
    const keyset = await Keyset.create({ keks: { cache: 'local:', audit: 'local:' }, env });
    await keyset.writeTo(keysetPath);
    const keys = await openAuditKeys({ keyset: await keyset.openAudit({ env }) });
    ({ dir: logDir } = await writeLog(300, { trail: { keys } }));
  });

  test('audit verify --keyset checks the log against the keyset public key; another keyset finds it bad', async () => {
    const good = await runCli(['audit', 'verify', logDir, '--keyset', keysetPath], env);
    assert.equal(good.exitCode, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /intact/);
    const otherPath = join(dir, 'other.json');
    await (await Keyset.create({ keks: { cache: 'local:', audit: 'local:' }, env })).writeTo(otherPath);
    const bad = await runCli(['audit', 'verify', logDir, '--keyset', otherPath], env);
    assert.equal(bad.exitCode, 1);
    const both = await runCli(
      ['audit', 'verify', logDir, '--keyset', keysetPath, '--pubkey', keysetPath],
      env,
    );
    assert.equal(both.exitCode, 2);
  });

  test('audit verify --keyset needs no access to the KEKs: it runs where no keyring exists', async () => {
    const elsewhere = { PHICACHE_HOME: join(dir, 'auditor-home'), NODE_ENV: 'production' };
    const run = await runCli(['audit', 'verify', logDir, '--keyset', keysetPath], elsewhere);
    assert.equal(run.exitCode, 0, run.stderr);
    await assert.rejects(readdir(elsewhere.PHICACHE_HOME));
  });

  test('audit export --keyset signs the manifest with the keyset audit key', async () => {
    const out = join(dir, 'export');
    const run = await runCli(
      ['audit', 'export', logDir, '--out', out, '--keyset', keysetPath, '--json'],
      env,
    );
    assert.equal(run.exitCode, 0, run.stderr);
    const { manifest } = JSON.parse(run.stdout) as { manifest: { kid: string } };
    assert.equal(manifest.kid, (await Keyset.read(keysetPath)).signingKid);
  });

  test('audit hash --keyset gives the name the keyset name secret gives, not the development keyring one', async () => {
    const args = [
      'audit',
      'hash',
      '--tenant',
      'st-marys',
      '--class',
      'encrypted-phi',
      '--resource',
      'summary',
    ];
    const run = await runCli([...args, '--id', 'MRN-000123', '--keyset', keysetPath], env);
    assert.equal(run.exitCode, 0, run.stderr);
    const names = new NameKeyring(await (await Keyset.open(keysetPath, { env })).cache.nameSecret());
    assert.equal(
      run.stdout.trim(),
      names.forTenant('st-marys').reference('encrypted-phi', 'summary', 'MRN-000123'),
    );
    names.close();
    const development = await runCli([...args, '--id', 'MRN-000123'], env);
    assert.equal(development.exitCode, 0, development.stderr);
    assert.notEqual(development.stdout, run.stdout);
  });

  test('a --keyset that is not a keyset: exit 2 with ERR_KEYRING_CORRUPT', async () => {
    const notKeyset = join(dir, 'not-keyset.json');
    await writeFile(notKeyset, '{"format":"something-else"}');
    const run = await runCli(['audit', 'verify', logDir, '--keyset', notKeyset, '--json'], env);
    assert.equal(run.exitCode, 2);
    assert.equal(errorCode(run.stdout), 'ERR_KEYRING_CORRUPT');
  });
});
