import { readFile } from 'node:fs/promises';
import { PhiCacheError } from '../errors.js';
import type { RedisAddress, RedisConnectionOptions } from '../store/redis/commands.js';
import type { CommandOptions, CommandValues } from './commands/command.js';

/** The Redis connection flags shared by every command that talks to Redis, so that all of them connect alike. */
export const redisConnectionFlags = {
  redis: { type: 'string', multiple: true },
  cluster: { type: 'boolean' },
  sentinel: { type: 'string', multiple: true },
  'sentinel-name': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  user: { type: 'string' },
  'password-env': { type: 'string' },
} as const satisfies CommandOptions;

export const redisConnectionHelp = [
  '  --redis <redis://|rediss://url>   the server (repeat for Cluster seeds)',
  '  --cluster                         the servers are a Redis Cluster',
  '  --sentinel <host:port>            a Sentinel (repeatable), with --sentinel-name <name> of the master',
  '  --tls-ca <file>                   CA certificate (PEM) to verify the server; implies TLS',
  '  --tls-cert <file> --tls-key <file>  client certificate and key for mutual TLS',
  '  --user <name>                     ACL user',
  '  --password-env <VAR>              environment variable holding the password (never on the command line)',
].join('\n');

/** Turns the connection flags into connection options, reading certificate files and the password variable. */
export async function redisConnectionFrom(values: CommandValues): Promise<RedisConnectionOptions> {
  const urls = strings(values.redis);
  const sentinels = strings(values.sentinel);
  const usage = (message: string) => new PhiCacheError('ERR_CLI_USAGE', message);
  if (urls.length === 0 && sentinels.length === 0)
    throw usage('give --redis <url> or --sentinel <host:port>');
  if (urls.length > 0 && sentinels.length > 0) throw usage('give --redis or --sentinel, not both');
  if (urls.length > 1 && values.cluster !== true) throw usage('several --redis urls need --cluster');

  const tls = {
    ...(await pem(values['tls-ca'], 'ca')),
    ...(await pem(values['tls-cert'], 'cert')),
    ...(await pem(values['tls-key'], 'key')),
  };
  const passwordVariable = values['password-env'];
  const password = typeof passwordVariable === 'string' ? process.env[passwordVariable] : undefined;
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

function strings(value: CommandValues[string]): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string');
}

async function pem(
  path: CommandValues[string],
  field: 'ca' | 'cert' | 'key',
): Promise<Record<string, Buffer>> {
  if (typeof path !== 'string') return {};
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

function urlAddress(text: string): RedisAddress {
  try {
    const url = new URL(text);
    return { host: url.hostname, port: Number(url.port || 6379) };
  } catch (cause) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${text} is not a redis:// url`, { cause });
  }
}
