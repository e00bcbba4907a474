// Who led what, when: the stamped events of a fleet of balance hosts (bench/child.ts),
// replayed in time order. Every host stamps on CLOCK_MONOTONIC (process.hrtime), shared by
// all processes of the machine, so one host's stop and another's start order correctly
// however late their batches reached the parent.

/**
 * One event of a fleet: a host's (kinds as bench/child.ts's BalanceEvent: 's' start, 'p' stop,
 * 'f' fn called, 'e' fn settled) or 'k', the host SIGKILLed (stamped by the parent right after
 * the kill; its leaderships and fn runs end there).
 */
export interface FleetEvent {
  k: 's' | 'p' | 'f' | 'e' | 'k';
  /** Name index (−1 for 'k'). */
  i: number;
  /** Host index in the fleet. */
  h: number;
  /** ms, process.hrtime.bigint() / 1e6. */
  t: number;
  /** Stop reason. */
  r?: string;
}

/** At equal stamps, endings before beginnings: a stop and the next start in one ms are no overlap. */
const rank: Record<FleetEvent['k'], number> = { p: 0, e: 0, k: 0, s: 1, f: 1 };

/** Leaderships at one moment: per name how many hosts lead it, per host how many names. */
export class Picture {
  /** Per name: hosts leading it. */
  readonly leaders: Uint8Array;
  /** Per host: names it leads. */
  readonly load: number[] = [];
  /** Names led by at least one host. */
  led = 0;
  readonly dead = new Set<number>();
  private readonly rows: Uint8Array[] = [];

  constructor(readonly names: number) {
    this.leaders = new Uint8Array(names);
  }

  apply(e: FleetEvent): void {
    if (this.dead.has(e.h)) return; // a killed host's batch that arrived after its kill
    if (e.k === 's') this.set(e.h, e.i, 1);
    else if (e.k === 'p') this.set(e.h, e.i, 0);
    else if (e.k === 'k') {
      const row = this.row(e.h);
      for (let i = 0; i < this.names; i++) if (row[i]) this.set(e.h, i, 0);
      this.dead.add(e.h);
    }
  }

  /** Does host h lead name i? */
  leads(h: number, i: number): boolean {
    return this.row(h)[i] === 1;
  }

  /** Every name led, every host of `hosts` within ⌊N/H⌋..⌈N/H⌉, every other host leading nothing. */
  spread(hosts: readonly number[]): boolean {
    if (this.led !== this.names) return false;
    const lo = Math.floor(this.names / hosts.length);
    const hi = Math.ceil(this.names / hosts.length);
    for (let h = 0; h < this.load.length; h++) {
      const l = this.load[h] ?? 0;
      if (hosts.includes(h) ? l < lo || l > hi : l !== 0) return false;
    }
    return hosts.every((h) => h < this.load.length || lo === 0);
  }

  loads(): Map<number, number> {
    return new Map(this.load.map((l, h) => [h, l]));
  }

  describe(ids: readonly string[]): string {
    const per = this.load.map((l, h) => `${ids[h] ?? h}:${l}`).join(' ');
    return `${this.led} of ${this.names} names led; ${per}`;
  }

  private row(h: number): Uint8Array {
    while (this.rows.length <= h) {
      this.rows.push(new Uint8Array(this.names));
      this.load.push(0);
    }
    return this.rows[h]!;
  }

  private set(h: number, i: number, on: 0 | 1): void {
    const row = this.row(h);
    if (row[i] === on) return;
    row[i] = on;
    this.load[h]! += on ? 1 : -1;
    if (on) {
      if (this.leaders[i]!++ === 0) this.led++;
    } else if (--this.leaders[i]! === 0) this.led--;
  }
}

/** The fleet's events sorted by stamp, and the questions the balance scenarios ask of them. */
export class Timeline {
  readonly events: FleetEvent[];

  constructor(
    events: readonly FleetEvent[],
    readonly names: number,
  ) {
    this.events = [...events].sort((a, b) => a.t - b.t || rank[a.k] - rank[b.k]);
  }

  /** The picture just before `t` (every event stamped earlier applied). */
  before(t: number): Picture {
    const p = new Picture(this.names);
    for (const e of this.events) {
      if (e.t >= t) break;
      p.apply(e);
    }
    return p;
  }

  /** The first moment in [from, to] at which `cond` holds (events stamped ≤ from applied first), or undefined. */
  first(from: number, cond: (p: Picture) => boolean, to = Infinity): number | undefined {
    const p = new Picture(this.names);
    let i = 0;
    for (; i < this.events.length && this.events[i]!.t <= from; i++) p.apply(this.events[i]!);
    if (cond(p)) return from;
    for (; i < this.events.length && this.events[i]!.t <= to; i++) {
      p.apply(this.events[i]!);
      if (cond(p)) return this.events[i]!.t;
    }
    return undefined;
  }

  /** Events of kind `k` stamped in (from, to]. */
  between(from: number, to: number, k: FleetEvent['k']): FleetEvent[] {
    return this.events.filter((e) => e.k === k && e.t > from && e.t <= to);
  }

  /** Leadership starts of names that had been led before (in this timeline), stamped in (from, to]. */
  moves(from: number, to: number): number {
    const seen = new Uint8Array(this.names);
    let n = 0;
    for (const e of this.events) {
      if (e.t > to) break;
      if (e.k !== 's') continue;
      if (seen[e.i] && e.t > from) n++;
      seen[e.i] = 1;
    }
    return n;
  }

  /**
   * Two hosts running fn of one name at once (fn called … fn settled, a killed host's run
   * ending at its kill), with the moment the second began; at most `limit` listed.
   */
  overlaps(ids: readonly string[], limit = 1_000): { name: number; a: string; b: string; t: number }[] {
    const open = new Int16Array(this.names).fill(-1);
    const dead = new Set<number>();
    const out: { name: number; a: string; b: string; t: number }[] = [];
    for (const e of this.events) {
      if (dead.has(e.h)) continue;
      if (e.k === 'f') {
        const other = open[e.i]!;
        if (other >= 0 && other !== e.h && out.length < limit) out.push({ name: e.i, a: ids[other] ?? '?', b: ids[e.h] ?? '?', t: e.t });
        open[e.i] = e.h;
      } else if (e.k === 'e') {
        if (open[e.i] === e.h) open[e.i] = -1;
      } else if (e.k === 'k') {
        dead.add(e.h);
        for (let i = 0; i < this.names; i++) if (open[i] === e.h) open[i] = -1;
      }
    }
    return out;
  }
}

/**
 * Fewest leadership moves from the loads `before` to every host of `hosts` within
 * ⌊N/H⌋..⌈N/H⌉ (a host not in `hosts`, e.g. a killed or drained one, gives up all it leads).
 */
export function fewest(before: ReadonlyMap<number, number>, hosts: readonly number[], names: number): number {
  const lo = Math.floor(names / hosts.length);
  const hi = Math.ceil(names / hosts.length);
  let surplus = 0;
  let deficit = 0;
  for (const [h, l] of before) surplus += hosts.includes(h) ? Math.max(0, l - hi) : l;
  for (const h of hosts) deficit += Math.max(0, lo - (before.get(h) ?? 0));
  return Math.max(surplus, deficit);
}
