import { randomBytes } from 'node:crypto';
import { firstWord, type LiveServer } from './live-server.js';
import { type Reply, ReplyError } from './probe-connection.js';
import { type Finding, fail, notCheckable, pass } from './report.js';

/** The prefix of every key and pub/sub channel phicache uses. */
const PREFIX = 'phc:';

/** Commands a cache's user must not be able to run, each with arguments that make a well-formed call. */
const FORBIDDEN: readonly (readonly string[])[] = [
  ['FLUSHALL'],
  ['CONFIG', 'GET', 'maxmemory'],
  ['DEBUG', 'HELP'],
  ['MODULE', 'LIST'],
  ['KEYS', `${PREFIX}verify-probe`],
];

type Permission = { readonly allowed: true } | { readonly allowed: false; readonly why: string };

/**
 * What the connecting user may run, without running anything. `ACL DRYRUN` where the user may use it (Redis 7);
 * else each command is queued inside MULTI, where Redis checks permissions at queue time, and the transaction is
 * discarded: nothing queued ever runs. The probe key and channel are random names nobody uses.
 */
export async function checkLeastPrivilege(server: LiveServer): Promise<Finding[]> {
  const outside = `phicache-verify-probe:${randomBytes(8).toString('hex')}`;
  const inside = `${PREFIX}verify-probe:${randomBytes(8).toString('hex')}`;
  const probes: (readonly string[])[] = [
    ...FORBIDDEN,
    ['GET', outside],
    ['GET', inside],
    ['PUBLISH', outside, 'x'],
    ['PUBLISH', inside, 'x'],
  ];
  const judged = (await dryRun(server, probes)) ?? (await queued(server, probes));
  if (typeof judged === 'string') {
    return ['acl.commands', 'acl.keys', 'acl.channels'].map((id) =>
      notCheckable(id, judged, 'Run verify with the credentials phicache itself uses.'),
    );
  }
  const [flushall, config, debug, module, keys, getOutside, getInside, publishOutside, publishInside] =
    judged as unknown as [
      Permission,
      Permission,
      Permission,
      Permission,
      Permission,
      Permission,
      Permission,
      Permission,
      Permission,
    ];
  const method = judged.method;
  const commands = [
    ['FLUSHALL', flushall],
    ['CONFIG', config],
    ['DEBUG', debug],
    ['MODULE', module],
    ['KEYS', keys],
  ] as const;
  const allowed = commands.filter(([, p]) => p.allowed).map(([name]) => name);
  const denied = commands
    .map(([name, p]) => `${name} ${p.allowed ? 'allowed' : `denied (${p.why})`}`)
    .join(', ');
  const findings: Finding[] = [
    allowed.length > 0
      ? fail(
          'acl.commands',
          `${method}: ${denied}`,
          `Give phicache its own user with \`resetkeys ~phc:* resetchannels &phc:* -@all +@connection +@read +@write +@keyspace +@transaction +@pubsub -@dangerous\`; never run it as an administrator.`,
        )
      : pass('acl.commands', `${method}: ${denied}`),
  ];
  const keyRemedy = `Limit the user's keys to \`resetkeys ~${PREFIX}*\`.`;
  findings.push(
    getOutside.allowed
      ? fail('acl.keys', `${method}: a key outside ${PREFIX}* is reachable`, keyRemedy)
      : getInside.allowed
        ? pass(
            'acl.keys',
            `${method}: keys outside ${PREFIX}* denied (${getOutside.why}), ${PREFIX}* keys allowed`,
          )
        : fail(
            'acl.keys',
            `${method}: phicache's own ${PREFIX}* keys are denied too (${getInside.why})`,
            keyRemedy,
          ),
  );
  const channelRemedy = `Limit the user's channels to \`resetchannels &${PREFIX}*\`.`;
  findings.push(
    publishOutside.allowed
      ? fail('acl.channels', `${method}: a channel outside ${PREFIX}* is reachable`, channelRemedy)
      : pass(
          'acl.channels',
          `${method}: channels outside ${PREFIX}* denied (${publishOutside.why})${publishInside.allowed ? `, ${PREFIX}* allowed` : `; ${PREFIX}* denied too, so phicache's invalidation bus cannot run here`}`,
        ),
  );
  return findings;
}

type Judged = Permission[] & { method: string };

async function dryRun(
  server: LiveServer,
  probes: readonly (readonly string[])[],
): Promise<Judged | undefined> {
  const whoami = await server.session.call('ACL', 'WHOAMI');
  if (!Buffer.isBuffer(whoami)) return undefined;
  const user = whoami.toString();
  const replies = await server.session.pipeline(probes.map((args) => ['ACL', 'DRYRUN', user, ...args]));
  if (replies[0] instanceof ReplyError) return undefined; // DRYRUN itself refused, or a server before 7.0
  const judged = replies.map((reply): Permission => {
    if (reply instanceof ReplyError) return { allowed: false, why: firstWord(reply) };
    const text = Buffer.isBuffer(reply) ? reply.toString() : '';
    return text === 'OK' ? { allowed: true } : { allowed: false, why: 'NOPERM' };
  });
  return Object.assign(judged, { method: `ACL DRYRUN for user ${user}` });
}

async function queued(server: LiveServer, probes: readonly (readonly string[])[]): Promise<Judged | string> {
  const replies = await server.session.pipeline([['MULTI'], ...probes, ['DISCARD']]);
  const [multi, ...rest] = replies as [Reply, ...Reply[]];
  if (multi instanceof ReplyError) {
    return `neither ACL DRYRUN nor MULTI is allowed to this user (${firstWord(multi)}), so its permissions cannot be probed`;
  }
  const judged = rest.slice(0, probes.length).map((reply): Permission => {
    if (reply instanceof ReplyError) {
      const word = firstWord(reply);
      // A command the server refuses to everyone (DEBUG with enable-debug-command no) is as good as denied.
      return { allowed: false, why: word === 'NOPERM' ? 'NOPERM' : `${word}: refused by the server` };
    }
    return { allowed: true };
  });
  return Object.assign(judged, { method: 'queued in MULTI and discarded' });
}
