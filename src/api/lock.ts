// The two one-shot holds of a name, after the locker (locker.ts) has validated the call:
// a try-lock (campaign once, only if nobody else does) and a lock (a waiting mutex: run fn
// once elected, release as soon as it settles). Both are an ordinary registration in the
// machine's 'try' or 'lock' mode (core/mode-policy.ts); what is theirs is how the caller
// waits for the answer, and how an abort or a timeout takes the registration back out.
import { untilAborted } from '../core/abort.js';
import type { Clock } from '../core/clock.js';
import { LockCancelledError, LockerClosedError, NotLeaderError } from '../core/errors.js';
import type { Leadership, Singleton, SingletonFunction, TryLockResult } from './singleton.js';

/** What a try-lock and a lock need of their locker. */
export interface LockHost {
  readonly clock: Clock;
  /** True once the locker began to close. */
  closed(): boolean;
  /** Registers `fn` under `name` in `mode` without campaigning yet; throws as `register` does. */
  add(name: string, fn: SingletonFunction, mode: 'try' | 'lock'): Singleton;
  /** Campaigns now, or once a retiring registration of the name has left (registry.ts). */
  begin(s: Singleton): void;
}

/**
 * Campaigns with the registered try-lock `s` and resolves with its single campaign's
 * answer. On abort the try-lock leaves: a key it wrote is taken back out, an fn that just
 * started is stopped. The outcome then settles to nobody.
 */
export function awaitTryLock(host: LockHost, s: Singleton, signal: AbortSignal | undefined): Promise<TryLockResult> {
  const outcome = s.outcome();
  host.begin(s);
  return untilAborted(
    () => outcome,
    signal,
    `tryLock('${s.name}')`,
    () => {
      outcome.catch(() => {});
      void s.remove();
    },
  );
}

/**
 * Queues for `name`, runs `fn` once elected, releases as soon as fn settles; resolves with
 * fn's value or rejects with its error. `timeoutMs` and `signal` cancel the waiting only
 * (never a running fn), with a LockCancelledError. Throws synchronously as `add` does.
 */
export function lock<T>(
  host: LockHost,
  name: string,
  fn: (leadership: Leadership) => T | Promise<T>,
  signal: AbortSignal | undefined,
  timeout: number | undefined,
): Promise<T> {
  let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  let cancelled: LockCancelledError | undefined;
  const s = host.add(
    name,
    async (_remove, l) => {
      try {
        result = { ok: true, value: await fn(l) };
      } catch (error) {
        result = { ok: false, error };
        throw error;
      }
    },
    'lock',
  );
  const cancel = (why: 'timeout' | 'aborted', reason?: unknown): void => {
    if (result !== undefined || s.isLeader || cancelled) return; // only waiting is cancelled
    cancelled = new LockCancelledError(name, why, reason);
    void s.remove();
  };
  const onAbort = (): void => cancel('aborted', signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const timer = timeout !== undefined ? host.clock.setTimeout(() => cancel('timeout'), timeout) : undefined;
  host.begin(s);
  return s.released().then(() => {
    signal?.removeEventListener('abort', onAbort);
    if (timer) host.clock.clearTimeout(timer);
    if (result?.ok) return result.value;
    if (result) throw result.error;
    if (cancelled) throw cancelled;
    if (host.closed()) throw new LockerClosedError(`lock '${name}'`);
    throw new NotLeaderError(name, 'lost before fn could run');
  });
}
