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

/** Requests in a full batch (batcher.ts: BATCH): the window's unit. */
const FULL = 100;
/** Requests in flight at first, and the bounds: 2, 1 and 16 full batches. */
const START = 2 * FULL;
const MIN = FULL;
const MAX = 16 * FULL;
/** A batch answered within this grows the window by its size, at most a full batch (additive increase)… */
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
   *
   * `requests` is the batch's size: the window counts requests, not batches, so that a
   * stream of small batches (a few control records at a time) does not hold the room full
   * batches of campaigns wait for — etcd's apply cost is per request. An empty window
   * takes one batch of any size. An `urgent` batch is never refused (it still counts, so
   * the others wait for it): key deletes of hand-overs, whose names have no leader until
   * they land, must not queue behind a registration's campaigns.
   */
  take(wake: () => void, requests = FULL, urgent = false): { done(ok: boolean): void } | undefined {
    if (!urgent && this.inFlight > 0 && this.inFlight + requests > this.size) {
      this.waiting.add(wake);
      return undefined;
    }
    this.inFlight += requests;
    const sent = this.clock.now();
    let done = false;
    return {
      done: (ok) => {
        if (done) return;
        done = true;
        this.inFlight -= requests;
        const ms = this.clock.now() - sent;
        if (!ok || ms > SLOW_MS) this.size = Math.max(MIN, Math.floor(this.size / 2));
        else if (ms < FAST_MS) this.size = Math.min(MAX, this.size + Math.min(FULL, requests));
        const wake = [...this.waiting];
        this.waiting.clear();
        for (const w of wake) w();
      },
    };
  }

  /** Full batches' worth of requests allowed in flight now (metrics, tests). */
  get limit(): number {
    return this.size / FULL;
  }
}
