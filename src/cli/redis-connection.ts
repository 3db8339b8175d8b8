import { readFile } from 'node:fs/promises';
import { PhiCacheError } from '../errors.js';
import { openSecretSource } from '../secrets/open-secret-source.js';
import type { SecretSource } from '../secrets/secret-source.js';
import type { RedisAddress, RedisConnectionOptions } from '../store/redis/commands.js';
import type { CommandOptions, CommandValues } from './commands/command.js';
import { regularFile } from './input-paths.js';

/** The Redis connection flags shared by every command that talks to Redis, so that all of them connect alike. */
export const redisConnectionFlags = {
  redis: { type: 'string', multiple: true },
  cluster: { type: 'boolean' },
  sentinel: { type: 'string', multiple: true },
  'sentinel-name': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-ca-secret': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  user: { type: 'string' },
  'password-env': { type: 'string' },
  'password-secret': { type: 'string' },
} as const satisfies CommandOptions;

export const redisConnectionHelp = [
  '  --redis <redis://|rediss://url>   the server (repeat for Cluster seeds)',
  '  --cluster                         the servers are a Redis Cluster',
  '  --sentinel <host:port>            a Sentinel (repeatable), with --sentinel-name <name> of the master',
  '  --tls-ca <file>                   CA certificate (PEM) to verify the server; implies TLS',
  '  --tls-ca-secret <ref>             the CA certificate from a secret reference (as --password-secret); implies TLS',
  '  --tls-cert <file> --tls-key <file>  client certificate and key for mutual TLS',
  '  --user <name>                     ACL user',
  '  --password-env <VAR>              environment variable holding the password (never on the command line)',
  '  --password-secret <ref>           the password from a secret reference: env:VAR, file:/path,',
  '                                    aws-sm://<arn-or-name>[#field], vault-kv://host:port/<mount>/data/<path>#field;',
  '                                    read again at every reconnection',
].join('\n');

/**
 * Turns the connection flags into connection options, reading certificate files, the password variable and the CA
 * secret. A password secret is handed to the binding as a source, which reads it before the first connection and
 * before each reconnection.
 */
export async function redisConnectionFrom(values: CommandValues): Promise<RedisConnectionOptions> {
  const urls = strings(values.redis);
  const sentinels = strings(values.sentinel);
  const usage = (message: string) => new PhiCacheError('ERR_CLI_USAGE', message);
  if (urls.length === 0 && sentinels.length === 0)
    throw usage('give --redis <url> or --sentinel <host:port>');
  if (urls.length > 0 && sentinels.length > 0) throw usage('give --redis or --sentinel, not both');
  if (urls.length > 1 && values.cluster !== true) throw usage('several --redis urls need --cluster');
  for (const url of urls) checkRedisUrl(url);

  if (values['tls-ca'] !== undefined && values['tls-ca-secret'] !== undefined)
    throw usage('give --tls-ca or --tls-ca-secret, not both');
  if (values['password-env'] !== undefined && values['password-secret'] !== undefined)
    throw usage('give --password-env or --password-secret, not both');
  // Both references are checked before anything is read or opened.
  const caSecret = await secretFlag(values['tls-ca-secret'], '--tls-ca-secret');
  const passwordSecret = await secretFlag(values['password-secret'], '--password-secret');

  const tls = {
    ...(await pem(values['tls-ca'], 'ca')),
    ...(caSecret === undefined ? {} : { ca: await caSecret.read() }),
    ...(await pem(values['tls-cert'], 'cert')),
    ...(await pem(values['tls-key'], 'key')),
  };
  const passwordVariable = values['password-env'];
  const password: string | SecretSource | undefined =
    typeof passwordVariable === 'string' ? process.env[passwordVariable] : passwordSecret;
  if (typeof passwordVariable === 'string' && password === undefined) {
    throw usage(`--password-env ${passwordVariable}: the variable is not set`);
  }
  const common = {
    ...(Object.keys(tls).length > 0 || urls.some((u) => u.startsWith('rediss://')) ? { tls } : {}),
    ...(typeof values.user === 'string' ? { username: values.user } : {}),
    ...(password === undefined ? {} : { password }),
  };
  if (sentinels.length > 0) {
    const name = values['sentinel-name'];
    if (typeof name !== 'string') throw usage('--sentinel needs --sentinel-name <name>');
    return { sentinel: { name, sentinels: sentinels.map(address) }, ...common };
  }
  if (values.cluster === true) return { cluster: { seeds: urls.map(urlAddress) }, ...common };
  return { url: urls[0]!, ...common };
}

/**
 * A --redis value is refused before any connection is tried. Messages never repeat the value: a URL may carry a
 * password, and an error is printed, logged and pasted into tickets.
 */
function checkRedisUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', '--redis takes a redis://host:port or rediss://host:port url', {
      cause,
    });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new PhiCacheError(
      'ERR_CLI_USAGE',
      `--redis takes a redis:// or rediss:// url, not ${url.protocol}//`,
    );
  }
  if (url.password !== '') {
    throw new PhiCacheError('ERR_CLI_USAGE', 'a password inside a --redis url is refused', {
      hint: 'Command lines show up in process lists and shell history: put the password in an environment variable or a secret and name it with --password-env <VAR> or --password-secret <ref> (and the user with --user <name>). Change the password if it was exposed.',
    });
  }
  if (url.hostname === '') throw new PhiCacheError('ERR_CLI_USAGE', 'a --redis url needs a host');
}

/**
 * A secret reference flag, opened but not read. A malformed reference is a usage error whose message does not repeat
 * the value: a secret pasted where its reference belongs must not reach a terminal log. A `file:` reference that
 * names a directory or a FIFO is refused here, like every other file flag.
 */
async function secretFlag(value: CommandValues[string], flag: string): Promise<SecretSource | undefined> {
  if (typeof value !== 'string') return undefined;
  let source: SecretSource;
  try {
    source = openSecretSource(value);
  } catch (cause) {
    if (!(cause instanceof TypeError)) throw cause;
    throw new PhiCacheError('ERR_CLI_USAGE', `${flag}: ${cause.message}`, {
      cause,
      hint: `Name where the secret is, not the secret: ${flag} env:VAR, file:/path, aws-sm://<arn-or-name>[#field] or vault-kv://host:port/<mount>/data/<path>#field.`,
    });
  }
  if (value.startsWith('file:')) await regularFile(value.slice('file:'.length), flag);
  return source;
}

function strings(value: CommandValues[string]): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

async function pem(
  path: CommandValues[string],
  field: 'ca' | 'cert' | 'key',
): Promise<Record<string, Buffer>> {
  if (typeof path !== 'string') return {};
  await regularFile(path, `--tls-${field}`);
  try {
    return { [field]: await readFile(path) };
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', `--tls-${field} ${path} cannot be read`, { cause });
  }
}

function address(text: string): RedisAddress {
  const match = /^([^:]+|\[[^\]]+\]):(\d{1,5})$/.exec(text);
  if (match === null) throw new PhiCacheError('ERR_CLI_USAGE', `${text} is not host:port`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) };
}

/** Cluster seeds are host and port only; checkRedisUrl has vetted the text. */
function urlAddress(text: string): RedisAddress {
  const url = new URL(text);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) };
}
