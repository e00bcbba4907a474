// What kind of etcd failure an error is, read from etcd3's error classes (this layer is the
// one that knows them) and, where etcd3 hands over a plain Error (watch cancellations), from
// etcd's own words. The CLI words its messages and exit statuses from it; applications can
// tell "fix the credentials" from "retry later" the same way.
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { describe } from '../core/errors.js';

/**
 * - `authentication`: etcd refused the user or its password;
 * - `permission`: the user's role does not cover the key (or prefix);
 * - `no-user`: etcd requires a user and none was given;
 * - `unreachable`: no member answered, or in time (unavailable, deadline, refused);
 * - `other`: etcd answered with another failure.
 */
export type EtcdFailureKind = 'authentication' | 'permission' | 'no-user' | 'unreachable' | 'other';

/** The kind of etcd failure `err` is (its `cause` chain searched, up to 10 deep), with the message of the error that said so. */
export function etcdFailureKind(err: unknown): { kind: EtcdFailureKind; message: string } {
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 10; e = e instanceof Error ? e.cause : undefined, depth++) {
    const text = describe(e);
    // Watch errors arrive as plain Errors: "Watcher canceled: rpc error: code = PermissionDenied desc = …".
    if (e instanceof EtcdAuthenticationFailedError || /etcdserver: authentication failed/i.test(text))
      return { kind: 'authentication', message: text };
    if (e instanceof EtcdPermissionDeniedError || /etcdserver: permission denied|code = PermissionDenied/i.test(text))
      return { kind: 'permission', message: text };
    if (e instanceof GRPCUnauthenticatedError || /etcdserver: user name is empty|code = Unauthenticated/i.test(text))
      return { kind: 'no-user', message: text };
  }
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause instanceof GRPCUnavailableError)) cause = cause.cause;
  const unreachable =
    cause instanceof GRPCUnavailableError ||
    cause instanceof GRPCDeadlineExceededError ||
    // The library's own deadline for a call no member answered at all (a peer that accepts and stays silent).
    /UNAVAILABLE|deadline|timed out|ECONNREFUSED|no member answered/i.test(describe(cause));
  return { kind: unreachable ? 'unreachable' : 'other', message: describe(cause) };
}
