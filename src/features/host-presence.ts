// Which hosts are up, as their host records (`<prefix>/hosts/<id>`) show, and since when.
// Three rules of the mover read it: the respread delay (a host that disappeared holds
// balancing still for a while), the preferred hosts' hold-down (a host gets its preferred
// names back only once it has been up for a while) and the join hold (while a host's names'
// campaigns are going out, balancing waits for them). All are fed by the same record
// changes, so they live here together; each asks for a pass again when its wait ends.
import type { Clock, Timer } from '../core/clock.js';

/**
 * A host's `joining` holds balancing at most this long (from when this host first saw it):
 * a host whose campaigns cannot get in (etcd refusing its writes) must not hold the fleet's
 * balancing for good. 100,000 names take a second host ~25 s on a loaded 2-core machine.
 */
export const JOIN_HOLD_MAX_MS = 30_000;

/** What the tracker needs of the mover's host (MoverHost). @internal */
export interface HostPresenceHost {
  readonly clock: Clock;
  /** After a host's record disappears, balancing holds still this long (0: not at all). */
  readonly respreadDelayMs: number;
  /** A preferred host leads its names again once it has been up this long. */
  readonly preferHoldDownMs: number;
}

/** @internal */
export class HostPresence {
  /** Node id → its lease and since when (local time) its record has named that lease. */
  private readonly upSince = new Map<string, { lease: string; since: number }>();
  /** Node id → when its host record disappeared, while the respread delay holds balancing. */
  private readonly goneAt = new Map<string, number>();
  /** Node id → since when (local time) its record says it is joining. */
  private readonly joiningSince = new Map<string, number>();
  private sawRecords = false;
  /** The one timer of both rules, and when it fires (Infinity: none). */
  private timer: Timer | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    private readonly host: HostPresenceHost,
    /** Called when a hold-down or the respread delay ends: plan again. */
    private readonly wake: () => void,
  ) {}

  /**
   * The host records changed (`leaseByHost`: node id → lease). A record whose lease changed
   * is a restart: the hold-down counts from there. Hosts already up when this host first
   * sees the prefix count as up for long (we cannot tell, and a fleet starting together
   * should not wait).
   */
  update(leaseByHost: ReadonlyMap<string, string>, joining: ReadonlySet<string> = new Set()): void {
    const now = this.host.clock.now();
    for (const id of joining) if (!this.joiningSince.has(id)) this.joiningSince.set(id, now);
    for (const id of this.joiningSince.keys()) if (!joining.has(id)) this.joiningSince.delete(id);
    if (this.host.respreadDelayMs > 0) {
      for (const id of this.upSince.keys()) if (!leaseByHost.has(id)) this.goneAt.set(id, now);
      for (const id of this.goneAt.keys()) if (leaseByHost.has(id)) this.goneAt.delete(id);
    }
    for (const [id, lease] of leaseByHost) {
      if (this.upSince.get(id)?.lease !== lease) this.upSince.set(id, { lease, since: this.sawRecords ? now : -Infinity });
    }
    for (const id of this.upSince.keys()) if (!leaseByHost.has(id)) this.upSince.delete(id);
    this.sawRecords = true;
  }

  /** True once host `id` has been up for the hold-down; else wakes when it will have been. */
  settled(id: string): boolean {
    const up = this.upSince.get(id);
    if (up === undefined) return false;
    const at = up.since + this.host.preferHoldDownMs;
    const now = this.host.clock.now();
    if (now >= at) return true;
    this.wakeAt(at);
    return false;
  }

  /**
   * True while a host disappeared less than respreadDelayMs ago and has not come back: its
   * leaderships have failed over already (that never waits), but the spread over the others
   * and their standby order hold still, so a restart within the delay takes its share back
   * without every name having moved twice (Helix's delayed rebalance). Wakes when the delay
   * ends.
   */
  holding(): boolean {
    if (this.goneAt.size === 0) return false;
    const now = this.host.clock.now();
    let until = 0;
    for (const [id, at] of this.goneAt) {
      if (now - at >= this.host.respreadDelayMs) this.goneAt.delete(id);
      else until = Math.max(until, at + this.host.respreadDelayMs);
    }
    if (this.goneAt.size === 0) return false;
    this.wakeAt(until);
    return true;
  }

  /**
   * True while a host's record says it is joining — its names' campaigns are going out, so
   * the shares computed from the queues would count only the part that has landed, and moves
   * made now would be made again (a fleet started at once moved 500–1,700 names for a spread
   * that needs a few hundred) — for at most JOIN_HOLD_MAX_MS. Wakes when that ends.
   */
  joining(): boolean {
    if (this.joiningSince.size === 0) return false;
    const now = this.host.clock.now();
    let until = -Infinity;
    for (const at of this.joiningSince.values()) if (now - at < JOIN_HOLD_MAX_MS) until = Math.max(until, at + JOIN_HOLD_MAX_MS);
    if (until === -Infinity) return false;
    this.wakeAt(until);
    return true;
  }

  /**
   * Plans again at `at`: one timer, at the earliest moment either rule asked for — the pass
   * it brings asks both rules again, and each asks for its next moment then.
   */
  private wakeAt(at: number): void {
    if (this.closed || at >= this.timerAt) return;
    if (this.timer) this.host.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.host.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.wake();
    }, at - this.host.clock.now());
  }

  close(): void {
    this.closed = true;
    if (this.timer) this.host.clock.clearTimeout(this.timer);
  }
}
