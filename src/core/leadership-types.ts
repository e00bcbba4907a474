// What fn gets and why a leadership stops: the types the per-name machine (core), the
// features (metrics, run-once) and the public face (the Singleton handle) share.
import type { ComparatorBuilder } from '../etcd/etcd3.js';

/**
 * Why this host stopped leading a name: the `stop` event's reason, the `reason` of the
 * NotLeaderError a leadership's signal aborts with, and the `reason` label of
 * `locked_leaderships_stopped_total`. `STOP_REASONS` lists every value.
 */
export type StopReason =
  /** `remove()` was called: the name is un-registered here. */
  | 'removed'
  /** The lease is, or may be, lost (etcd unreachable past renewDeadline, paused process): the locker re-campaigns with a new lease. */
  | 'lost'
  /** Our election key was deleted by someone else (`failover`, an operator): we queue again at the back. */
  | 'deposed'
  /** fn threw or rejected: we step down and queue again after a backoff. */
  | 'error'
  /** The singleton's health check failed twice in a row and a standby queues: handed over; we queue again once the check passes. */
  | 'unhealthy'
  /** Handed over gracefully to another host (balance, drain, or a `failover` request): we queue again at the back. */
  | 'handover'
  /** The locker was closed. */
  | 'closed';

/** What the elected host gets: who it is, the fencing token, and a signal aborted when it ends. */
export interface Leadership {
  readonly name: string;
  readonly nodeId: string;
  /** Election key: `<prefix><name>/<lease id hex>`. */
  readonly key: string;
  /** Create revision of `key` (decimal string): grows with every new leadership of the name. Use it as a fencing token. */
  readonly token: string;
  /** Aborted, with a NotLeaderError, when this leadership ends for any reason. */
  readonly signal: AbortSignal;
  /** Wall-clock time (ms since epoch) at which this leadership started. */
  readonly since: number;
  /** False once the leadership ended, or once the step-down deadline passed even if the timer has not fired yet. */
  readonly active: boolean;
  /** Throws a NotLeaderError unless `active`: a cheap check before each unit of work. */
  check(): void;
  /**
   * An etcd transaction guarded by this leadership: `If(CreateRevision(key) == token)`.
   * `await leadership.fence().then(client.put('k').value('v')).commit()` writes only
   * while this leadership's key still exists — a deposed or paused old leader's write fails.
   */
  fence(): ComparatorBuilder;
}

/**
 * The function a host registers. Runs only while elected; may return a promise.
 * `remove()` called from inside fn ends this leadership and un-registers the name; it
 * resolves at once (it does not wait for fn, which is what it would wait for), and the
 * name is handed over as soon as fn returns.
 */
export type SingletonFunction = (remove: () => Promise<void>, leadership: Leadership) => unknown;
