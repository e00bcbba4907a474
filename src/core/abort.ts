// One rule for `{ signal }` on calls that wait: an aborted signal rejects the call with an
// AbortedError at once (also when it was aborted before the call); what the call started
// may be undone by `undo` (a try-lock takes its key back out) or simply not waited for
// (a read already sent is answered to nobody).
import { AbortedError } from './errors.js';

export interface SignalOption {
  /** Stops waiting: the call rejects with an AbortedError whose cause is the signal's reason. */
  signal?: AbortSignal;
}

export function checkSignal(signal: unknown, operation: string): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!(signal instanceof AbortSignal)) throw new TypeError(`${operation}: options.signal must be an AbortSignal, got ${typeof signal}`);
  return signal;
}

/** `work` unless `signal` aborts first; `undo` runs on abort (never throws out). */
export function untilAborted<T>(work: () => Promise<T>, signal: AbortSignal | undefined, operation: string, undo?: () => void): Promise<T> {
  if (!signal) return work();
  if (signal.aborted) return Promise.reject(new AbortedError(operation, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(new AbortedError(operation, signal.reason));
      try {
        undo?.();
      } catch {
        // undo is best effort; the rejection above is the answer
      }
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work().then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
