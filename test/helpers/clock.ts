// A manual clock for unit tests of timing logic (the Clock interface of src/core/clock.ts).
import type { Clock, Timer } from '../../src/core/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

export class FakeClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, Pending>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), seq: id, fn });
    return { id } as Timer;
  }

  clearTimeout(timer: Timer): void {
    this.timers.delete((timer as { id: number }).id);
  }

  /** Moves time forward, firing due timers in order and letting promises settle between them. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const next = [...this.timers.values()].filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers.delete(next.seq);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
    await settle();
  }

  /** Moves time forward without firing anything: a paused process or a blocked event loop. */
  jump(ms: number): void {
    this.t += ms;
  }
}

/** Lets pending promise callbacks and immediates run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
