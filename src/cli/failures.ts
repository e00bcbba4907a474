// What etcd's failures mean to someone at a terminal: a user or prefix etcd refuses
// (retrying cannot help), an endpoint that does not answer, a request etcd failed.
import { etcdFailureKind } from '../index.js';
import type { Connection } from './connection.js';
import { EtcdError, clean } from './messages.js';

/**
 * etcd refused who we are (wrong user or password, or no user where etcd requires one)
 * or what we may touch (the user's role does not cover the prefix). Retrying cannot
 * help: `run` and `once` stop (125), the other commands report it (3). Otherwise undefined.
 */
export function authFailure(err: unknown, conn: Connection): EtcdError | undefined {
  const { kind, message } = etcdFailureKind(err);
  if (kind !== 'authentication' && kind !== 'permission' && kind !== 'no-user') return undefined;
  const detail = clean(message.replace(/^.*?etcdserver: /s, ''));
  const at = `etcd at ${conn.endpoints}`;
  if (kind === 'no-user' || conn.user === undefined) {
    return new EtcdError(`${at} requires a user: ${detail} (give --user NAME or LOCKED_USER, and LOCKED_PASSWORD or --password-file)`);
  }
  if (kind === 'permission') return new EtcdError(`${at} refused user '${conn.user}' under prefix '${conn.prefix}': ${detail}`);
  return new EtcdError(`${at} refused user '${conn.user}': ${detail}`);
}

/** Turns an etcd failure into a sentence that names the endpoints; other errors pass through. */
export function etcdFailure(err: unknown, conn: Connection): EtcdError {
  const auth = authFailure(err, conn);
  if (auth) return auth;
  const { kind, message } = etcdFailureKind(err);
  const unreachable = kind === 'unreachable';
  const why = clean(message);
  return new EtcdError(
    unreachable ? `cannot reach etcd at ${conn.endpoints}: ${why}` : `etcd at ${conn.endpoints} failed the request: ${why}`,
  );
}
