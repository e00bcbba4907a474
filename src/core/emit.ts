// The one guard between the locker's state and user listeners: a listener that throws
// is reported, never allowed to unwind into the election logic that emitted.
import type { EventEmitter } from 'node:events';

export function safeEmit(emitter: EventEmitter, event: string | symbol, args: readonly unknown[], onThrow: (err: unknown) => void): void {
  try {
    emitter.emit(event, ...args);
  } catch (err) {
    try {
      onThrow(err);
    } catch {
      // The reporter itself failed (e.g. a throwing 'error' listener): nothing left to tell.
    }
  }
}
