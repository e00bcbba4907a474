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
}

export interface Timer {
  unref?(): unknown;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
};
