// Virtual time for the deterministic simulation: one queue of everything that will
// happen (timers of every host, network deliveries), run in order. With a seed, every
// choice (latencies, losses, faults, and Math.random inside the code under test) comes
// from one PRNG, so a failing schedule is replayed exactly from its seed.
import type { Clock, Timer } from '../../../src/clock.js';

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
  private items: Item[] = [];
  /** Hosts whose callbacks are held (a SIGSTOPped process). */
  readonly paused = new Set<string>();
  /** Killed hosts: nothing of theirs runs any more. */
  readonly dead = new Set<string>();
  steps = 0;

  constructor(private readonly chooser: Chooser) {}

  at(ms: number, fn: () => void, owner?: string): Item {
    const it: Item = { at: Math.max(this.now, ms), seq: ++this.seq, fn, owner, cancelled: owner !== undefined && this.dead.has(owner) };
    if (!it.cancelled) this.items.push(it);
    return it;
  }

  after(ms: number, fn: () => void, owner?: string): Item {
    return this.at(this.now + Math.max(0, ms), fn, owner);
  }

  /** Drops every pending item of `owner` (a killed process). */
  drop(owner: string): void {
    this.dead.add(owner);
    for (const it of this.items) if (it.owner === owner) it.cancelled = true;
  }

  pending(owner?: string): number {
    return this.items.filter((it) => !it.cancelled && (owner === undefined || it.owner === owner)).length;
  }

  /** A clock for one host: its timers belong to it (held while it is paused). */
  clock(owner: string): Clock {
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => this.after(ms, fn, owner) as unknown as Timer,
      clearTimeout: (t) => {
        if (t) (t as unknown as Item).cancelled = true;
      },
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

  private next(until: number): Item | undefined {
    let min = Infinity;
    this.items = this.items.filter((it) => !it.cancelled);
    for (const it of this.items) {
      if (it.owner !== undefined && this.paused.has(it.owner)) continue;
      if (it.at < min) min = it.at;
    }
    if (min === Infinity || min > until) return undefined;
    // Each owner (a host's event loop; the network) handles its own items in order; only
    // the order across owners is a choice.
    const heads = new Map<string, Item>();
    for (const it of this.items) {
      if (it.at !== min || (it.owner !== undefined && this.paused.has(it.owner))) continue;
      const o = it.owner ?? '';
      const h = heads.get(o);
      if (!h || it.seq < h.seq) heads.set(o, it);
    }
    const due = [...heads.values()].sort((a, b) => a.seq - b.seq);
    const pick = due.length === 1 ? due[0]! : due[this.chooser.choose(due.length, min)]!;
    pick.cancelled = true;
    return pick;
  }
}

/** Lets every pending promise callback (and setImmediate) run. */
export async function flush(): Promise<void> {
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
}
