// Virtual time for the deterministic simulation: one queue of everything that will
// happen (timers of every host, network deliveries), run in order. With a seed, every
// choice (latencies, losses, faults, and Math.random inside the code under test) comes
// from one PRNG, so a failing schedule is replayed exactly from its seed.
import type { Clock, Timer } from '../../../src/core/clock.js';

/** Virtual wall-clock time at virtual 0 (2026-01-01T00:00:00Z). */
const WALL_EPOCH = Date.UTC(2026, 0, 1);

/** mulberry32: small, fast, good enough to pick schedules. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Item {
  at: number;
  seq: number;
  fn: () => void;
  /** Owner (a host id) — a paused or dead owner's items wait or vanish. */
  owner: string | undefined;
  cancelled: boolean;
}

/**
 * Picks which of several items due at the same time runs first. Seeded runs pick at
 * random; exhaustive runs replay a prefix of choices and enumerate the rest.
 */
export interface Chooser {
  /** `now`: the virtual time of the choice (exhaustive runs explore a window of it). */
  choose(n: number, now: number): number;
}

export class Scheduler {
  now = 0;
  private seq = 0;
  /** Items by (at, seq): a binary heap. Cancelled items are dropped when they reach the top. */
  private heap: Item[] = [];
  /** Items of paused owners taken off the heap; back on it once their owner wakes. */
  private held: Item[] = [];
  /** Hosts whose callbacks are held (a SIGSTOPped process). */
  readonly paused = new Set<string>();
  /** Killed hosts: nothing of theirs runs any more. */
  readonly dead = new Set<string>();
  steps = 0;

  constructor(private readonly chooser: Chooser) {}

  at(ms: number, fn: () => void, owner?: string): Item {
    const it: Item = { at: Math.max(this.now, ms), seq: ++this.seq, fn, owner, cancelled: owner !== undefined && this.dead.has(owner) };
    if (!it.cancelled) this.push(it);
    return it;
  }

  after(ms: number, fn: () => void, owner?: string): Item {
    return this.at(this.now + Math.max(0, ms), fn, owner);
  }

  /** Drops every pending item of `owner` (a killed process). */
  drop(owner: string): void {
    this.dead.add(owner);
    for (const it of this.heap) if (it.owner === owner) it.cancelled = true;
    for (const it of this.held) if (it.owner === owner) it.cancelled = true;
  }

  pending(owner?: string): number {
    let n = 0;
    for (const it of [...this.heap, ...this.held]) if (!it.cancelled && (owner === undefined || it.owner === owner)) n++;
    return n;
  }

  /** A clock for one host: its timers belong to it (held while it is paused). */
  clock(owner: string): Clock {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => this.after(ms, fn, owner) as unknown as Timer,
      clearTimeout: (t) => {
        if (t) (t as unknown as Item).cancelled = true;
      },
      // Wall time too is virtual (records and `since` stamps): a schedule replays byte for byte.
      wall: () => WALL_EPOCH + this.now,
    };
  }

  /** Runs everything due up to `until` (virtual ms), letting promises settle after each item. */
  async run(until: number): Promise<void> {
    for (;;) {
      await flush();
      const next = this.next(until);
      if (!next) break;
      this.now = Math.max(this.now, next.at);
      this.steps++;
      next.fn();
    }
    this.now = Math.max(this.now, until);
    await flush();
  }

  private isPaused(it: Item): boolean {
    return it.owner !== undefined && this.paused.has(it.owner);
  }

  private next(until: number): Item | undefined {
    if (this.held.length > 0) {
      const still: Item[] = [];
      for (const it of this.held) {
        if (it.cancelled) continue;
        if (this.isPaused(it)) still.push(it);
        else this.push(it);
      }
      this.held = still;
    }
    let top: Item | undefined;
    while ((top = this.heap[0])) {
      if (top.cancelled) this.pop();
      else if (this.isPaused(top)) this.held.push(this.pop()!);
      else break;
    }
    if (!top || top.at > until) return undefined;
    const min = top.at;
    // Each owner (a host's event loop; the network) handles its own items in order; only
    // the order across owners is a choice. The heap yields the items due at `min` by seq.
    const group: Item[] = [];
    while (this.heap[0] && this.heap[0].at === min) {
      const it = this.pop()!;
      if (it.cancelled) continue;
      if (this.isPaused(it)) this.held.push(it);
      else group.push(it);
    }
    const seen = new Set<string>();
    const due: Item[] = [];
    for (const it of group) {
      const o = it.owner ?? '';
      if (seen.has(o)) continue;
      seen.add(o);
      due.push(it);
    }
    const pick = due.length === 1 ? due[0]! : due[this.chooser.choose(due.length, min)]!;
    pick.cancelled = true;
    for (const it of group) if (it !== pick) this.push(it);
    return pick;
  }

  private static before(a: Item, b: Item): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(it: Item): void {
    const h = this.heap;
    h.push(it);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!Scheduler.before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Item | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && Scheduler.before(h[l]!, h[m]!)) m = l;
        if (r < h.length && Scheduler.before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Lets every pending promise callback (and setImmediate) run. */
export async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}
