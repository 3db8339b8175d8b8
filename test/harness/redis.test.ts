import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  connectOptions,
  isAlive,
  kill,
  pause,
  type RedisEndpoint,
  RespConnection,
  RespReplyError,
  respCall,
  resume,
  SENTINEL_MASTER_NAME,
  sharedRedis,
  startRedis,
  TOPOLOGIES,
  waitFor,
} from './redis.js';

const harness = fileURLToPath(new URL('./redis.js', import.meta.url));

describe('redis harness: the shared fleet', () => {
  for (const topology of TOPOLOGIES) {
    test(`${topology}: every node answers PING with the endpoint's credentials and TLS`, async () => {
      const endpoint = await sharedRedis(topology);
      assert.equal(endpoint.topology, topology);
      assert.match(
        endpoint.url,
        topology === 'tls' || topology === 'mtls'
          ? /^rediss:\/\/127\.0\.0\.1:\d+$/
          : /^redis:\/\/127\.0\.0\.1:\d+$/,
      );
      assert.equal(endpoint.url.split(':').at(-1), String(endpoint.nodes[0]!.port));
      assert.equal(endpoint.nodes[0]!.role, 'master');
      for (const node of endpoint.nodes) {
        assert.equal(
          await respCall(connectOptions(endpoint, node), 'PING'),
          'PONG',
          `${node.role} ${node.port}`,
        );
      }
    });
  }

  test('tls: the server certificate is for 127.0.0.1 and localhost; a client without the CA is refused', async () => {
    const endpoint = await sharedRedis('tls');
    assert.ok(endpoint.tls?.ca.includes('BEGIN CERTIFICATE'));
    assert.equal(endpoint.tls?.cert, undefined);
    assert.equal(await respCall({ ...connectOptions(endpoint), host: 'localhost' }, 'PING'), 'PONG');
    await assert.rejects(respCall({ port: endpoint.nodes[0]!.port, tls: { ca: '' } }, 'PING'));
    await assert.rejects(
      respCall({ port: endpoint.nodes[0]!.port, timeoutMs: 500 }, 'PING'),
      'plaintext on the TLS port',
    );
  });

  test('mtls: a client without a certificate is refused, one with the client certificate is served', async () => {
    const endpoint = await sharedRedis('mtls');
    assert.ok(endpoint.tls?.cert?.includes('BEGIN CERTIFICATE') && endpoint.tls.key?.includes('PRIVATE KEY'));
    const port = endpoint.nodes[0]!.port;
    await assert.rejects(respCall({ port, tls: { ca: endpoint.tls!.ca } }, 'PING'));
    assert.equal(await respCall(connectOptions(endpoint), 'PING'), 'PONG');
  });

  test('acl: the phicache user may use phc:* keys and channels only, and no dangerous command', async () => {
    const endpoint = await sharedRedis('acl');
    assert.equal(endpoint.username, 'phicache');
    assert.ok(endpoint.password && endpoint.admin);
    const port = endpoint.nodes[0]!.port;
    await assert.rejects(respCall({ port }, 'GET', 'phc:x'), /NOAUTH/, 'the default user is off');
    await assert.rejects(respCall({ port, username: 'phicache', password: 'wrong' }, 'PING'), /WRONGPASS/);

    const user = await RespConnection.open(connectOptions(endpoint));
    try {
      const key = `phc:harness:${process.pid}:${Date.now()}`;
      assert.equal(await user.call('SET', key, 'v', 'PX', 10_000), 'OK');
      assert.equal(await user.call('GET', key), 'v');
      assert.equal(await user.call('SADD', `${key}:tag`, key), 1);
      assert.equal(await user.call('PEXPIRE', `${key}:tag`, 10_000), 1);
      assert.deepEqual(await user.call('SMEMBERS', `${key}:tag`), [key]);
      assert.ok(Array.isArray(await user.call('SCAN', 0, 'MATCH', 'phc:harness:*', 'COUNT', 10)));
      assert.ok(Number(await user.call('PTTL', key)) > 0);
      assert.equal(await user.call('EVAL', 'return redis.call("GET", KEYS[1])', 1, key), 'v');
      assert.equal(await user.call('PUBLISH', 'phc:invalidate', 'x'), 0);
      assert.equal(await user.call('DEL', key, `${key}:tag`), 2);
      for (const refused of [
        ['KEYS', '*'],
        ['FLUSHALL'],
        ['FLUSHDB'],
        ['CONFIG', 'GET', 'maxmemory'],
        ['MONITOR'],
        ['PERSIST', key],
        ['FUNCTION', 'FLUSH'],
        ['GET', 'other'],
        ['SET', 'other', 'v', 'PX', 1000],
        ['PUBLISH', 'other', 'x'],
        ['EVAL', 'return redis.call("GET", KEYS[1])', 1, 'other'],
      ]) {
        await assert.rejects(user.call(...refused), /NOPERM/, refused.join(' '));
      }
    } finally {
      user.close();
    }
    const admin = connectOptions(endpoint, endpoint.nodes[0], { admin: true });
    // DEBUG is refused before the ACL check (enable-debug-command no): ask the ACL itself.
    for (const refused of [
      ['DEBUG', 'SLEEP', '0'],
      ['CONFIG', 'SET', 'maxmemory', '1'],
      ['SHUTDOWN'],
      ['CLIENT', 'KILL', 'ID', '1'],
    ]) {
      assert.match(
        String(await respCall(admin, 'ACL', 'DRYRUN', 'phicache', ...refused)),
        /no permissions/,
        refused.join(' '),
      );
    }
    assert.ok(Array.isArray(await respCall(admin, 'KEYS', 'phc:harness:none:*')), 'admin is unrestricted');
  });

  test('cluster: 3 masters, 3 replicas, all 16384 slots covered and ok', async () => {
    const endpoint = await sharedRedis('cluster');
    assert.equal(endpoint.nodes.filter((n) => n.role === 'master').length, 3);
    assert.equal(endpoint.nodes.filter((n) => n.role === 'replica').length, 3);
    assert.deepEqual(
      endpoint.cluster?.seeds,
      endpoint.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    );
    const slots = (await respCall(connectOptions(endpoint), 'CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number],
    ][];
    let covered = 0;
    const masterPorts = new Set<number>();
    for (const [from, to, [, port]] of slots) {
      covered += to - from + 1;
      masterPorts.add(port);
    }
    assert.equal(covered, 16384);
    assert.deepEqual(
      [...masterPorts].sort(),
      endpoint.nodes
        .filter((n) => n.role === 'master')
        .map((n) => n.port)
        .sort(),
    );
    for (const node of endpoint.nodes) {
      const info = String(await respCall(connectOptions(endpoint, node), 'CLUSTER', 'INFO'));
      assert.match(info, /cluster_state:ok/);
      assert.match(info, /cluster_slots_ok:16384/);
    }
  });

  test('sentinel: every sentinel reports the master, its replica and two other sentinels', async () => {
    const endpoint = await sharedRedis('sentinel');
    const master = endpoint.nodes.find((n) => n.role === 'master')!;
    const replica = endpoint.nodes.find((n) => n.role === 'replica')!;
    assert.equal(endpoint.sentinel?.name, SENTINEL_MASTER_NAME);
    assert.equal(endpoint.sentinel?.sentinels.length, 3);
    for (const sentinel of endpoint.sentinel!.sentinels) {
      assert.deepEqual(
        await respCall(sentinel, 'SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER_NAME),
        ['127.0.0.1', String(master.port)],
      );
      const replicas = (await respCall(sentinel, 'SENTINEL', 'replicas', SENTINEL_MASTER_NAME)) as string[][];
      assert.ok(replicas.some((r) => r[r.indexOf('port') + 1] === String(replica.port)));
      assert.equal(
        ((await respCall(sentinel, 'SENTINEL', 'sentinels', SENTINEL_MASTER_NAME)) as unknown[]).length,
        2,
      );
    }
    assert.match(String(await respCall({ port: replica.port }, 'INFO', 'replication')), /role:slave/);
  });

  test('the shared fleet cannot be paused or killed from a test', async () => {
    const endpoint: RedisEndpoint = await sharedRedis('plain');
    assert.throws(() => pause(endpoint.nodes[0]!), /shared fleet/);
    assert.throws(() => kill(endpoint.nodes[0]!), /shared fleet/);
    assert.equal(await respCall(connectOptions(endpoint), 'PING'), 'PONG');
  });
});

describe('redis harness: private servers', () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(stops.map((stop) => stop()));
  });

  test('pause makes a server stop answering and resume brings it back', async () => {
    const redis = await startRedis('plain');
    stops.push(redis.stop);
    const node = redis.nodes[0]!;
    const connection = await RespConnection.open({ port: node.port, timeoutMs: 5_000 });
    try {
      assert.equal(await connection.call('PING'), 'PONG');
      pause(node);
      const reply = connection.call('PING');
      const late = Symbol('no reply');
      assert.equal(await Promise.race([reply, new Promise((r) => setTimeout(r, 300, late))]), late);
      await assert.rejects(respCall({ port: node.port, timeoutMs: 300 }, 'PING'), /timed out/);
      resume(node);
      assert.equal(await reply, 'PONG');
      assert.equal(await respCall({ port: node.port }, 'PING'), 'PONG');
    } finally {
      connection.close();
    }
  });

  test('kill ends a server at once; stop after it is harmless', async () => {
    const redis = await startRedis('plain');
    const node = redis.nodes[0]!;
    kill(node);
    await waitFor(async () => !isAlive(node.pid), 2_000, 'the killed server to be gone');
    await redis.stop();
  });

  test('startRedis then stop leaves no process and no open port behind', async () => {
    for (const topology of ['acl', 'sentinel'] as const) {
      const redis = await startRedis(topology);
      assert.ok(redis.nodes.every((n) => isAlive(n.pid)));
      if (topology === 'sentinel') pause(redis.nodes[1]!); // a paused replica must not hold the stop up
      await redis.stop();
      for (const node of redis.nodes) {
        assert.equal(isAlive(node.pid), false, `${topology} ${node.role} pid ${node.pid}`);
        await assert.rejects(respCall({ port: node.port, timeoutMs: 500 }, 'PING'));
      }
    }
  });

  for (const how of ['exit', 'SIGTERM'] as const) {
    test(`no redis-server outlives its test process (${how})`, async () => {
      const script = [
        `const { startRedis } = await import(${JSON.stringify(harness)});`,
        `const redis = await startRedis('plain');`,
        'process.stdout.write(JSON.stringify(redis.nodes[0].pid) + "\\n");',
        // Until SIGTERM, or until this test process goes away (its stdin closes).
        how === 'exit'
          ? 'process.exit(0);'
          : 'process.stdin.resume(); process.stdin.on("end", () => process.exit(1));',
      ].join('\n');
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.setEncoding('utf8');
      const pid = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (chunk: string) => {
          out += chunk;
          if (out.includes('\n')) resolve(Number(out.trim()));
        });
        child.once('exit', (code) =>
          reject(new Error(`child exited with ${code} before printing a pid: ${out}`)),
        );
      });
      assert.ok(pid > 0);
      if (how === 'SIGTERM') child.kill('SIGTERM');
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve([child.exitCode, child.signalCode]);
        else child.once('exit', (c, s) => resolve([c, s]));
      });
      if (how === 'exit') assert.equal(code, 0);
      else assert.equal(signal, 'SIGTERM');
      await waitFor(async () => !isAlive(pid), 2_000, `redis-server ${pid} to die with its parent`);
    });
  }

  test('waitFor names what it waited for and the last error', async () => {
    await assert.rejects(
      waitFor(
        async () => {
          throw new RespReplyError('LOADING not yet');
        },
        50,
        'the impossible',
      ),
      /timed out after 50 ms waiting for the impossible \(last error: LOADING not yet\)/,
    );
  });
});
