// What etcd's failures mean to someone at a terminal: a user or prefix etcd refuses
// (retrying cannot help), an endpoint that does not answer, a request etcd failed.
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import type { Connection } from './connection.js';
import { EtcdError, clean, describe } from './messages.js';

/**
 * etcd refused who we are (wrong user or password, or no user where etcd requires one)
 * or what we may touch (the user's role does not cover the prefix). Retrying cannot
 * help: `run` and `once` stop (125), the other commands report it (3). Otherwise undefined.
 */
export function authFailure(err: unknown, conn: Connection): EtcdError | undefined {
  let kind: 'authentication' | 'permission' | 'no user' | undefined;
  let detail = '';
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 10; e = e instanceof Error ? e.cause : undefined, depth++) {
    const text = describe(e);
    // Watch errors arrive as plain Errors: "Watcher canceled: rpc error: code = PermissionDenied desc = …".
    if (e instanceof EtcdAuthenticationFailedError || /etcdserver: authentication failed/i.test(text)) kind = 'authentication';
    else if (e instanceof EtcdPermissionDeniedError || /etcdserver: permission denied|code = PermissionDenied/i.test(text))
      kind = 'permission';
    else if (e instanceof GRPCUnauthenticatedError || /etcdserver: user name is empty|code = Unauthenticated/i.test(text)) kind = 'no user';
    else continue;
    detail = clean(text.replace(/^.*?etcdserver: /s, ''));
    break;
  }
  if (kind === undefined) return undefined;
  const at = `etcd at ${conn.endpoints}`;
  if (kind === 'no user' || conn.user === undefined) {
    return new EtcdError(`${at} requires a user: ${detail} (give --user NAME or LOCKED_USER, and LOCKED_PASSWORD or --password-file)`);
  }
  if (kind === 'permission') return new EtcdError(`${at} refused user '${conn.user}' under prefix '${conn.prefix}': ${detail}`);
  return new EtcdError(`${at} refused user '${conn.user}': ${detail}`);
}

/** Turns an etcd failure into a sentence that names the endpoints; other errors pass through. */
export function etcdFailure(err: unknown, conn: Connection): EtcdError {
  const auth = authFailure(err, conn);
  if (auth) return auth;
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause instanceof GRPCUnavailableError)) cause = cause.cause;
  const unreachable =
    cause instanceof GRPCUnavailableError ||
    cause instanceof GRPCDeadlineExceededError ||
    // The library's own deadline for a call no member answered at all (a peer that accepts and stays silent).
    /UNAVAILABLE|deadline|timed out|ECONNREFUSED|no member answered/i.test(describe(cause));
  const why = clean(describe(cause));
  return new EtcdError(
    unreachable ? `cannot reach etcd at ${conn.endpoints}: ${why}` : `etcd at ${conn.endpoints} failed the request: ${why}`,
  );
}
