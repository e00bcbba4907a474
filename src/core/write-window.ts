// How many write batches (campaigns, key deletes, control records) one host has in flight,
// adapted to how fast etcd answers them.
//
// Why it matters: an etcd leader answers a LeaseKeepAlive only after it has applied every
// entry committed before it (etcd #6978: a renewal must see the lease's latest state), so a
// write burst that puts etcd's apply behind delays every keepalive of every host by as much.
// Eight hosts starting 2,000 names each with eight batches of 100 in flight apiece had etcd
// seconds behind, keepalives unanswered past renewDeadline and whole sessions lost — then
// re-campaigned under new leases, a collapse. A window that shrinks when batches come back
// slowly keeps etcd's backlog, and with it the keepalive round trip, short.
import type { Clock } from './clock.js';

/** Batches in flight at first, and the bounds. */
const START = 2;
const MIN = 1;
const MAX = 16;
/** A batch answered within this grows the window by one (additive increase)… */
const FAST_MS = 300;
/** …one slower than this, or failed, halves it (multiplicative decrease). */
const SLOW_MS = 1_000;

/** @internal */
export class WriteWindow {
  private size = START;
  private inFlight = 0;
  private readonly waiting = new Set<() => void>();

  constructor(private readonly clock: Clock) {}

  /**
   * A slot for one batch, or undefined when the window is full (then `wake` is called once a
   * slot may be free). The slot's `done(ok)` must be called when the batch was answered.
   */
  take(wake: () => void): { done(ok: boolean): void } | undefined {
    if (this.inFlight >= this.size) {
      this.waiting.add(wake);
      return undefined;
    }
    this.inFlight++;
    const sent = this.clock.now();
    let done = false;
    return {
      done: (ok) => {
        if (done) return;
        done = true;
        this.inFlight--;
        const ms = this.clock.now() - sent;
        if (!ok || ms > SLOW_MS) this.size = Math.max(MIN, Math.floor(this.size / 2));
        else if (ms < FAST_MS) this.size = Math.min(MAX, this.size + 1);
        const wake = [...this.waiting];
        this.waiting.clear();
        for (const w of wake) w();
      },
    };
  }

  /** Batches allowed in flight now (metrics, tests). */
  get limit(): number {
    return this.size;
  }
}
