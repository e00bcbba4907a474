// A locker for the commands that never campaign (status, leader, failover, drain,
// undrain): it holds no lease, it is an etcd client with the prefix; and asking it with
// a deadline for the whole command, so an unreachable etcd is an answer, not a hang.
import { isHandOverError, isHostNotFoundError, locked, type Locker } from '../index.js';
import type { Connection } from './connection.js';
import { etcdFailure } from './failures.js';
import { UsageError, describe } from './messages.js';

/**
 * etcd3 retries a call up to three times across endpoints, each bounded by the
 * locker's request timeout (2 s with ttl 3); this caps the whole command so an
 * unreachable etcd is reported within ~10 s whatever the retries do (--timeout).
 */
export const DEFAULT_COMMAND_DEADLINE_MS = 9_000;

/** What a read-mostly command works with. */
export interface ViewContext {
  locker: Locker;
  conn: Connection;
  /** The whole command's deadline for etcd's answers. */
  timeoutMs: number;
  json: boolean;
}

export function viewLocker(conn: Connection, id: string | undefined): Locker {
  // ttl only sets the request timeout here (max(⅔ ttl, 2 s)); no lease is ever granted.
  return locked(conn.hosts, { prefix: conn.prefix, ttl: 3, handleSignals: false, etcd: conn.etcd, ...(id ? { id } : {}) });
}

/**
 * The locker of `run` and `once`, which campaign for a program: signals are theirs (the
 * program must stop before the key is released), and close() waits for fn — the program —
 * which SIGKILL ends after the grace period.
 */
export function programLocker(
  conn: Connection,
  plan: {
    id: string;
    ttl: number;
    graceMs: number;
    weight?: number | undefined;
    zone?: string | undefined;
    preferHoldDownMs?: number | undefined;
    respreadDelayMs?: number | undefined;
  },
  command: 'run' | 'once',
): Locker {
  try {
    return locked(conn.hosts, {
      id: plan.id,
      prefix: conn.prefix,
      ttl: plan.ttl,
      handleSignals: false,
      stopTimeoutMs: plan.graceMs + 1_000,
      ...(plan.weight !== undefined ? { weight: plan.weight } : {}),
      ...(plan.zone !== undefined ? { zone: plan.zone } : {}),
      ...(plan.preferHoldDownMs !== undefined || plan.respreadDelayMs !== undefined
        ? {
            balance: {
              ...(plan.preferHoldDownMs !== undefined ? { preferHoldDownMs: plan.preferHoldDownMs } : {}),
              ...(plan.respreadDelayMs !== undefined ? { respreadDelayMs: plan.respreadDelayMs } : {}),
            },
          }
        : {}),
      etcd: conn.etcd,
    });
  } catch (err) {
    throw new UsageError(describe(err), command);
  }
}

/** `work`, or an EtcdError naming the endpoints if it fails or takes longer than ctx.timeoutMs. */
export async function ask<T>(ctx: ViewContext, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ctx.timeoutMs / 1000} s (timed out)`)), ctx.timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    // A hand-over that did not happen as asked, or an unknown host, is an answer, not an etcd failure.
    if (isHandOverError(err) || isHostNotFoundError(err)) throw err;
    throw etcdFailure(err, ctx.conn);
  } finally {
    clearTimeout(timer);
  }
}
