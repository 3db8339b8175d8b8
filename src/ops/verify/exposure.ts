import type { Unauthenticated } from './authentication.js';
import { isRefused, type LiveServer } from './live-server.js';
import { type Finding, fail, notCheckable, pass, warn } from './report.js';

const READ_AS_ADMIN =
  'CONFIG GET is refused to this user, as least privilege wants: run verify once more as an administrator user to see it, or read redis.conf.';

/** Protected mode, bind, and the commands that change the server from a client connection. */
export async function checkExposure(
  server: LiveServer,
  unauthenticated: Unauthenticated,
): Promise<Finding[]> {
  const [protectedMode, bind, configs, debug, module] = (await Promise.all(
    [
      'protected-mode',
      'bind',
      'enable-protected-configs',
      'enable-debug-command',
      'enable-module-command',
    ].map((name) => server.config(name)),
  )) as [
    string | { refused: string },
    string | { refused: string },
    string | { refused: string },
    string | { refused: string },
    string | { refused: string },
  ];
  const findings: Finding[] = [];
  const modeId = 'network.protected-mode';
  if (isRefused(protectedMode)) findings.push(notCheckable(modeId, protectedMode.refused, READ_AS_ADMIN));
  else if (protectedMode === 'yes') findings.push(pass(modeId, 'protected-mode yes'));
  else if (unauthenticated.answered) {
    findings.push(
      fail(
        modeId,
        'protected-mode no and the default user needs no password: open to any address that reaches it',
        'Set `protected-mode yes`, and require AUTH.',
      ),
    );
  } else {
    findings.push(
      warn(
        modeId,
        'protected-mode no (AUTH is required, so the server is not open)',
        'Set `protected-mode yes` as a second line of defence.',
      ),
    );
  }

  const bindId = 'network.bind';
  if (isRefused(bind)) findings.push(notCheckable(bindId, bind.refused, READ_AS_ADMIN));
  else {
    const addresses = bind
      .split(/\s+/)
      .filter((a) => a.length > 0)
      .map((a) => a.replace(/^-/, ''));
    const everywhere =
      addresses.length === 0 || addresses.some((a) => ['*', '0.0.0.0', '::', '::*'].includes(a));
    findings.push(
      everywhere
        ? warn(
            bindId,
            `bind ${bind || '(all interfaces)'}: listens on every interface`,
            'Bind only the private address clients use (`bind 10.0.0.5`), and keep the port behind a firewall or VPC.',
          )
        : pass(bindId, `bind ${bind}`),
    );
  }

  const surfaces = [
    [
      'surface.protected-configs',
      'enable-protected-configs',
      configs,
      'CONFIG SET of file paths (dir, dbfilename) lets a client write files as the server',
    ],
    ['surface.debug-command', 'enable-debug-command', debug, 'DEBUG can crash, stall or dump the server'],
    [
      'surface.module-command',
      'enable-module-command',
      module,
      'MODULE LOAD runs any shared library as the server',
    ],
  ] as const;
  for (const [id, name, value, why] of surfaces) {
    const remedy = `Set \`${name} no\` in redis.conf (it cannot be changed at run time).`;
    if (isRefused(value)) findings.push(notCheckable(id, value.refused, READ_AS_ADMIN));
    else if (value === 'no') findings.push(pass(id, `${name} no`));
    else if (value === 'local')
      findings.push(warn(id, `${name} local: ${why}, from any local connection`, remedy));
    else findings.push(fail(id, `${name} ${value}: ${why}`, remedy));
  }
  return findings;
}
