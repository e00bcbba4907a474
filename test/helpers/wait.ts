/**
 * Polling and waiting with deadlines and descriptive failures.
 */
import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';

export function sleep(ms: number): Promise<void> {
  return delay(ms);
}

export interface WaitForOptions {
  /** Give up after this long. */
  timeoutMs: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** What we were waiting for; goes into the timeout error. */
  message: string;
}

/**
 * Call `fn` until it returns a truthy value (which is returned). An attempt
 * that throws counts as "not yet"; the last error and last value are put in
 * the timeout error. Each attempt starts after the previous one settled, so
 * a slow `fn` is never run concurrently with itself.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions): Promise<NonNullable<T>> {
  const interval = opts.intervalMs ?? 50;
  const start = Date.now();
  const deadline = start + opts.timeoutMs;
  let attempts = 0;
  let lastValue: unknown;
  let lastError: unknown;
  for (;;) {
    attempts += 1;
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      lastValue = v;
      lastError = undefined;
    } catch (e) {
      lastError = e;
    }
    const now = Date.now();
    if (now >= deadline) {
      const detail =
        lastError !== undefined
          ? `last error: ${lastError instanceof Error ? (lastError.stack ?? lastError.message) : String(lastError)}`
          : `last value: ${describeValue(lastValue)}`;
      const err = new Error(`timed out after ${now - start} ms (${attempts} attempts) waiting for: ${opts.message}; ${detail}`);
      if (lastError !== undefined) err.cause = lastError;
      throw err;
    }
    await delay(Math.min(interval, Math.max(0, deadline - now)));
  }
}

function describeValue(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(v);
  }
}

/**
 * Resolve with the arguments of the next `event` on `emitter`; reject if it
 * does not come within `timeoutMs`, or if 'error' is emitted first (unless
 * `event` is 'error' itself).
 */
export function once<A extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string | symbol,
  opts: { timeoutMs: number; message?: string },
): Promise<A> {
  return new Promise<A>((resolve, reject) => {
    const onEvent = (...args: unknown[]): void => {
      cleanup();
      resolve(args as A);
    };
    const onError = (err: unknown): void => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new Error(`timed out after ${opts.timeoutMs} ms waiting for event ${String(event)}${opts.message ? ` (${opts.message})` : ''}`),
      );
    }, opts.timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      if (event !== 'error') emitter.off('error', onError);
    };
    emitter.on(event, onEvent);
    if (event !== 'error') emitter.on('error', onError);
  });
}
