// How to reach etcd, from flags, the environment and defaults: endpoints, prefix, TLS
// files, and the etcd user with its password.
import { readFileSync } from 'node:fs';
import { ExponentialBackoff } from 'cockatiel';
import type { LockerOptions } from '../index.js';
import type { Values } from './commands.js';
import { UsageError, describe, say } from './messages.js';

/** The etcd client options besides the endpoints. */
export type EtcdOptions = NonNullable<LockerOptions['etcd']>;

/** How to reach etcd, from flags, environment and defaults. */
export interface Connection {
  /** As given (for messages and the child's environment). */
  endpoints: string;
  hosts: string[];
  prefix: string;
  /** The etcd user, if any (for messages). */
  user: string | undefined;
  etcd: EtcdOptions;
}

export function connection(values: Values, env: NodeJS.ProcessEnv = process.env): Connection {
  const endpoints = values.endpoints ?? env['LOCKED_ENDPOINTS'] ?? '127.0.0.1:2379';
  const list = endpoints
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (list.length === 0) throw new UsageError(`--endpoints must name at least one etcd endpoint, got '${endpoints}'`);
  const prefix = values.prefix ?? env['LOCKED_PREFIX'] ?? 'locked/';
  const etcd: EtcdOptions = {
    // etcd3's default watch backoff grows to 30 s: after an outage the locker's watch,
    // and with it every campaign, would come back up to 30 s after etcd did.
    faultHandling: { watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next() },
  };
  // Each TLS file from its flag, else from the environment; messages name where it came from.
  const file = (flag: 'cacert' | 'cert' | 'key'): { from: string; path: string } | undefined => {
    const fromFlag = values[flag];
    if (fromFlag !== undefined) return { from: `--${flag}`, path: fromFlag };
    const name = `LOCKED_${flag.toUpperCase()}`;
    const fromEnv = env[name];
    return fromEnv !== undefined && fromEnv !== '' ? { from: name, path: fromEnv } : undefined;
  };
  const cacert = file('cacert');
  const cert = file('cert');
  const key = file('key');
  const tls = cacert !== undefined || cert !== undefined || key !== undefined;
  if ((cert === undefined) !== (key === undefined)) {
    const only = (cert ?? key)!.from;
    throw new UsageError(`a client certificate and its key go together (--cert/LOCKED_CERT and --key/LOCKED_KEY), got only ${only}`);
  }
  if (tls) {
    etcd.credentials = {
      rootCertificate: cacert !== undefined ? readFlagFile(cacert.from, cacert.path) : undefined,
      privateKey: key !== undefined ? readFlagFile(key.from, key.path) : undefined,
      certChain: cert !== undefined ? readFlagFile(cert.from, cert.path) : undefined,
    } as NonNullable<EtcdOptions['credentials']>;
  }
  const user = credentials(values, env);
  if (user) etcd.auth = user;
  // etcd3 chooses TLS by scheme: bare host:port means https once TLS files are given.
  const hosts = list.map((h) => (/^https?:\/\//.test(h) ? h : `${tls ? 'https' : 'http'}://${h}`));
  return { endpoints: list.join(','), hosts, prefix, user: user?.username, etcd };
}

/**
 * The etcd user and password: --user NAME or LOCKED_USER names the user; the password
 * comes from --password-file (its first line), else LOCKED_PASSWORD. `--user NAME:PASSWORD`
 * (etcdctl's form) works too, with a warning: every user of the host sees it in ps.
 * LOCKED_PASSWORD is deleted from `env` once read, so the program of `run` and `once`
 * (and anything else started from here) does not inherit it.
 */
function credentials(values: Values, env: NodeJS.ProcessEnv): { username: string; password: string } | undefined {
  const envPassword = env['LOCKED_PASSWORD'];
  delete env['LOCKED_PASSWORD'];
  const envPasswordFile = env['LOCKED_PASSWORD_FILE'];
  const passwordFile = values['password-file'] ?? (envPasswordFile === '' ? undefined : envPasswordFile);
  const passwordFrom = values['password-file'] !== undefined ? '--password-file' : 'LOCKED_PASSWORD_FILE';
  let name = values.user ?? env['LOCKED_USER'];
  if (name === '') name = undefined;
  if (name === undefined) {
    if (passwordFile !== undefined) throw new UsageError(`${passwordFrom} needs a user: --user NAME or LOCKED_USER`);
    if (envPassword !== undefined && envPassword !== '')
      throw new UsageError('LOCKED_PASSWORD is set but no user is given: --user NAME or LOCKED_USER');
    return undefined;
  }
  // Only the flag takes etcdctl's NAME:PASSWORD; LOCKED_USER is a name as it stands.
  const colon = values.user !== undefined ? name.indexOf(':') : -1;
  if (colon === 0) throw new UsageError(`--user must be NAME or NAME:PASSWORD, got an empty NAME in '${name.slice(0, 1)}…'`);
  if (colon > 0) {
    const username = name.slice(0, colon);
    if (passwordFile !== undefined) throw new UsageError(`--user ${username}:… and ${passwordFrom} both give a password: give it once`);
    say(`warning: --user ${username}:PASSWORD shows the password in ps to every user of this host; use LOCKED_PASSWORD or --password-file`);
    return { username, password: name.slice(colon + 1) };
  }
  if (passwordFile !== undefined) {
    const text = readFlagFile(passwordFrom, passwordFile).toString('utf8');
    // The first line: `echo secret > file` leaves a newline that is no part of the password.
    const password = text.replace(/\r?\n[\s\S]*$/, '');
    if (password === '') throw new UsageError(`${passwordFrom} '${passwordFile}' is empty (the password is its first line)`);
    return { username: name, password };
  }
  if (envPassword !== undefined) return { username: name, password: envPassword };
  throw new UsageError(
    `no password for etcd user '${name}': set LOCKED_PASSWORD, give --password-file FILE, or --user ${name}:PASSWORD (shown in ps)`,
  );
}

function readFlagFile(from: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${from} file '${path}': ${describe(err)}`);
  }
}
