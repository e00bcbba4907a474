import { performance } from 'node:perf_hooks';

/**
 * A monotonic clock in milliseconds. Wall-clock time is never used for leadership
 * decisions: NTP steps would move deadlines. `performance.now()` keeps counting
 * while the process is stopped (SIGSTOP), which is what the step-down rule needs.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  clearTimeout(timer: Timer): void;
  /** Wall-clock ms since the epoch, for display and records only (never for a decision); default Date.now(). */
  wall?(): number;
}

/** Wall-clock time for what people read (an observer's `since`, a drain order's date); virtual in the simulation. */
export function wallTime(clock: Clock): number {
  return clock.wall ? clock.wall() : Date.now();
}

/** Waits `ms` on `clock`; resolves early (without rejecting) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clock.clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface Timer {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};
