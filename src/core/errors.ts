// Errors carry a brand so the type guards keep working across duplicate copies of
// the package (the same reason cockatiel brands its errors).

const brand = Symbol.for('locked.error');

abstract class LockedError extends Error {
  readonly [brand] = true;
}

/** The locker's lease is gone, or may be gone: leadership ended without a hand-over. */
export class LeaseLostError extends LockedError {
  override readonly name = 'LeaseLostError';
  constructor(
    message: string,
    /** Lease id (decimal string) that was lost. */
    readonly leaseId: string,
  ) {
    super(message);
  }
}

/** An operation was attempted on a locker that is closed or closing. */
export class LockerClosedError extends LockedError {
  override readonly name = 'LockerClosedError';
  constructor(what: string) {
    super(`locker is closed: cannot ${what}`);
  }
}

/** The user's function threw or rejected while leading. */
export class LeaderFunctionError extends LockedError {
  override readonly name = 'LeaderFunctionError';
  constructor(
    readonly singleton: string,
    override readonly cause: unknown,
  ) {
    super(`the function of singleton '${singleton}' failed: ${describe(cause)}`, { cause });
  }
}

/** etcd could not be reached or answered with an error; the locker keeps retrying. */
export class EtcdUnavailableError extends LockedError {
  override readonly name = 'EtcdUnavailableError';
  constructor(
    readonly operation: string,
    override readonly cause: unknown,
  ) {
    super(`etcd ${operation} failed: ${describe(cause)}`, { cause });
  }
}

/** A leadership was asked to act (e.g. `check()`) after it ended. */
export class NotLeaderError extends LockedError {
  override readonly name = 'NotLeaderError';
  constructor(
    readonly singleton: string,
    readonly reason: string,
  ) {
    super(`not the leader of '${singleton}' any more (${reason})`);
  }
}

/** `locker.lock()` stopped waiting: its `timeout` passed or its `signal` aborted. Nothing is left queued. */
export class LockCancelledError extends LockedError {
  override readonly name = 'LockCancelledError';
  constructor(
    readonly lock: string,
    readonly reason: 'timeout' | 'aborted',
    override readonly cause?: unknown,
  ) {
    super(`lock '${lock}' not acquired: ${reason === 'timeout' ? 'timed out while waiting' : 'aborted while waiting'}`, { cause });
  }
}

/** A call gave up because its `signal` aborted (`ready`, `leader`, `status`, `tryLock`…); the signal's reason is the cause. */
export class AbortedError extends LockedError {
  override readonly name = 'AbortedError';
  constructor(
    /** What stopped waiting, e.g. "ready", "leader('job')". */
    readonly operation: string,
    override readonly cause?: unknown,
  ) {
    super(`${operation} aborted by its signal${cause === undefined ? '' : `: ${describe(cause)}`}`, { cause });
  }
}

/** A singleton's health check (`healthy` option, `locked run --check`) failed: this host is no candidate until it passes. */
export class HealthCheckError extends LockedError {
  override readonly name = 'HealthCheckError';
  constructor(
    readonly singleton: string,
    /** Failures in a row so far. */
    readonly failures: number,
    /** Why this one failed. */
    readonly reason: string,
    /** What the host does about it. */
    consequence: string,
  ) {
    super(`health check of '${singleton}' failed (${reason}${failures > 1 ? `, ${failures} times in a row` : ''}): ${consequence}`);
  }
}

/** A graceful hand-over (`failover` without force, `drain`) did not happen as asked. */
export class HandOverError extends LockedError {
  override readonly name = 'HandOverError';
  constructor(
    readonly singleton: string,
    /** What went wrong: 'not-queued' (the target does not queue for the name), 'timeout' (the leader did not act), 'other' (someone else leads now). */
    readonly kind: 'not-queued' | 'timeout' | 'other',
    message: string,
    /** Node id leading when the call gave up. */
    readonly leader: string | undefined,
  ) {
    super(message);
  }
}

/**
 * `drain({ nodeId })`, `undrain({ nodeId })` or `failover(name, { to })` named a node id
 * that no live host holds — a typo, or a host not started yet: a drain order for it
 * would move nothing and resolve at once. `{ force: true }` (drain, undrain) writes the
 * order anyway, for a host about to start.
 */
export class HostNotFoundError extends LockedError {
  override readonly name = 'HostNotFoundError';
  constructor(
    /** What was asked, e.g. "drain('web-7')". */
    readonly operation: string,
    /** The node id asked for. */
    readonly nodeId: string,
    /** Node ids of the live hosts (host records and queued candidates), sorted. */
    readonly liveIds: readonly string[],
    hint: string,
  ) {
    super(
      `${operation}: no live host has node id '${nodeId}' (live: ${liveIds.length > 0 ? liveIds.join(', ') : 'none'})${hint ? `; ${hint}` : ''}`,
    );
  }
}

const has = (e: unknown, name: string): boolean =>
  typeof e === 'object' && e !== null && brand in e && (e as { name?: unknown }).name === name;

export const isLeaseLostError = (e: unknown): e is LeaseLostError => has(e, 'LeaseLostError');
export const isLockerClosedError = (e: unknown): e is LockerClosedError => has(e, 'LockerClosedError');
export const isLeaderFunctionError = (e: unknown): e is LeaderFunctionError => has(e, 'LeaderFunctionError');
export const isEtcdUnavailableError = (e: unknown): e is EtcdUnavailableError => has(e, 'EtcdUnavailableError');
export const isAbortedError = (e: unknown): e is AbortedError => has(e, 'AbortedError');
export const isHealthCheckError = (e: unknown): e is HealthCheckError => has(e, 'HealthCheckError');
export const isLockCancelledError = (e: unknown): e is LockCancelledError => has(e, 'LockCancelledError');
export const isHandOverError = (e: unknown): e is HandOverError => has(e, 'HandOverError');
export const isNotLeaderError = (e: unknown): e is NotLeaderError => has(e, 'NotLeaderError');
export const isHostNotFoundError = (e: unknown): e is HostNotFoundError => has(e, 'HostNotFoundError');

export function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** A value as an error message shows it: a string quoted, an array listed, an object or a function by its kind. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(describeValue).join(', ')}]`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}
