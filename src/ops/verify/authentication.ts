import { firstWord, isRefused, type LiveServer } from './live-server.js';
import { isDeadline, ProbeConnection, type ProbeTarget, type Reply, ReplyError } from './probe-connection.js';
import { type Finding, fail, notCheckable, pass, warn } from './report.js';

/** What a connection that never authenticated got back for PING. */
export type Unauthenticated =
  | { readonly answered: true }
  | { readonly answered: false; readonly reason: string };

/** PING without AUTH, over the same transport (TLS and client certificate) as the real session. */
export async function pingUnauthenticated(target: ProbeTarget, deadlineMs: number): Promise<Unauthenticated> {
  const { username: _user, password: _password, ...anonymous } = target;
  let connection: ProbeConnection | undefined;
  try {
    connection = await ProbeConnection.open(anonymous, deadlineMs);
    const reply = await connection.call('PING');
    if (reply instanceof ReplyError) return { answered: false, reason: firstWord(reply) };
    return { answered: true };
  } catch (error) {
    if (isDeadline(error)) throw error;
    return { answered: false, reason: `no session (${(error as Error).message})` };
  } finally {
    connection?.close();
  }
}

export function checkAuthRequired(unauthenticated: Unauthenticated): Finding {
  const id = 'auth.required';
  if (unauthenticated.answered) {
    return fail(
      id,
      'PING without AUTH was answered: anyone who reaches the port can read and write',
      'Turn the default user off and create ACL users (`user default off`, `user phicache on >… ~phc:* …` in redis.conf or an aclfile); Memorystore `--enable-auth`; ElastiCache `--auth-token` or an RBAC user group.',
    );
  }
  return pass(id, `PING without AUTH was refused (${unauthenticated.reason})`);
}

/** The `default` user must be off: on with `nopass` it is an open door, on with a password a shared secret. */
export async function checkDefaultUser(
  server: LiveServer,
  unauthenticated: Unauthenticated,
): Promise<Finding> {
  const id = 'auth.default-user';
  const remedy =
    "Set `user default off` (redis.conf or the aclfile) once the application connects as its own user; where the service only offers an AUTH string (Memorystore, an ElastiCache AUTH token), that string is the default user's password: keep it in a secret manager and rotate it.";
  const reply = await server.session.call('ACL', 'GETUSER', 'default');
  if (reply instanceof ReplyError || !Array.isArray(reply)) {
    const why =
      reply instanceof ReplyError
        ? `ACL GETUSER is refused (${firstWord(reply)})`
        : 'ACL GETUSER gave nothing';
    if (unauthenticated.answered)
      return fail(
        id,
        `the default user is on without a password (PING answered without AUTH); ${why}`,
        remedy,
      );
    return notCheckable(
      id,
      `${why}; unauthenticated commands are refused, so the default user is off or has a password`,
      "Run verify once as an administrator user to see the default user's flags.",
    );
  }
  const flags = flagsOf(reply);
  if (flags.includes('off')) return pass(id, `the default user is off (flags: ${flags.join(' ')})`);
  if (flags.includes('nopass'))
    return fail(id, `the default user is on with nopass (flags: ${flags.join(' ')})`, remedy);
  return warn(
    id,
    `the default user is on with a password (flags: ${flags.join(' ')}): a shared secret, not a named user`,
    remedy,
  );
}

function flagsOf(reply: Reply[]): string[] {
  for (let i = 0; i + 1 < reply.length; i += 2) {
    const name = reply[i];
    const value = reply[i + 1];
    if (Buffer.isBuffer(name) && name.toString() === 'flags' && Array.isArray(value)) {
      return value.map((flag) => (Buffer.isBuffer(flag) ? flag.toString() : String(flag)));
    }
  }
  return [];
}

export { isRefused };
