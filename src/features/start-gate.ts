// WHO CAMPAIGNS FIRST when a fleet starts. Every host registers the same names at about the
// same time; whoever's campaigns landed first led them, and balancing then moved most of them
// (the bench: 650–1,350 of 2,000 names after a start of 8 hosts, each a fn started and aborted;
// the spread 3.3–6.7 s after the last host started), and whoever's standby campaigns landed
// first was every name's first standby (thousands of promotions followed). So a host
// registering a fleet's names (a joining host: core/campaign.ts JOINING_AT) holds back the
// campaigns of the names nobody queues for yet:
// 1. until the set of joining hosts it sees (their records) has stood still for SETTLE_MS — a
//    fleet's hosts boot within a second of each other (Kafka waits likewise before a new
//    consumer group's first rebalance: group.initial.rebalance.delay.ms);
// 2. then it campaigns for the names it is meant to lead (core/rendezvous.ts rendezvousAssign:
//    every host computes the same owners from the same names and hosts; weights count, a
//    draining host or one of weight 0 owns nothing, a name's preferred host owns it);
// 3. once every held name has a leader, for the names whose first standby it is meant to be
//    (per leader, spread over the other hosts, another zone than the leader's first); once
//    every one has two candidates, for the rest — a standby's campaign never queues ahead of
//    a leader's, in this host's writes or in etcd's;
// at most OWNER_WAIT_MS after the set settled (a host meant to lead a name may not register
// it) and MAX_HOLD_MS in all (a set that never stands still). Names with candidates already (a
// host joining a running fleet) are never held, nor try-locks, non-queue names, names of a
// host with balancing off, or a few names registered now and then. The gate only orders
// first campaigns: each held name campaigns by the deadline whatever happens, and who leads
// is still decided by etcd (lowest create revision).
import type { StartGateHook } from '../core/campaign.js';
import type { Clock, Timer } from '../core/clock.js';
import { rendezvousAssign } from '../core/rendezvous.js';
import type { PrefixView } from '../core/view.js';
import { nameOf, namePrefix } from '../etcd/keys.js';
import type { CampaignRequest } from '../etcd/store.js';
import { weightOf, type ControlRecords } from './control-records.js';

/** The host set must stand still this long before owners are decided. */
export const SETTLE_MS = 500;
/** After that, a name not ours waits at most this long for its owner's key. */
export const OWNER_WAIT_MS = 1_500;
/** A name is never held longer than this. */
export const MAX_HOLD_MS = 4_000;

/** What the gate needs from its locker. @internal */
export interface StartGateHost {
  readonly view: PrefixView;
  readonly prefix: string;
  readonly nodeId: string;
  readonly clock: Clock;
  /** This host's weight and zone (its record may not have landed yet). */
  readonly weight: number;
  readonly zone: string | undefined;
  /** True if `name` is a queue-mode singleton here (the kind that is moved; the gate is used only with balancing on). */
  gated(name: string): boolean;
  /** The preferred hosts of `name` as registered here. */
  prefer(name: string): readonly string[] | undefined;
  /** The control records as parsed now (mover.ts): the hosts, their weights and drains. */
  records(): ControlRecords;
}

interface Held {
  readonly name: string;
  readonly release: () => void;
  /** The host meant to lead it, decided once the set settled (undefined: none yet, or no eligible host). */
  owner: string | undefined;
  /** The host meant to be its first standby (undefined: none). */
  next: string | undefined;
  /** Candidates of the name seen, up to 2. */
  seen: number;
}

/** @internal */
export class StartGate implements StartGateHook {
  private readonly held = new Map<string, Held>();
  /**
   * Every name held in this round, released or not: the assignment is made over these (the
   * same names on every host), not over what is still held — after the first release the held
   * names differ from host to host, and owners computed from them would too.
   */
  private readonly round = new Set<string>();
  /** Held names with no candidate seen yet, and with one: the rounds after the leaders' wait for these to be 0. */
  private readonly fewer = [0, 0];
  /** The session lease of the campaigns held (one at a time). */
  private heldLease: string | undefined;
  private hostsSig = '';
  /** When the host set last changed, or the hold began if later: it settles SETTLE_MS after. */
  private lastChange = 0;
  private holdSince = 0;
  /** When the set settled in this hold; undefined before. */
  private settledAt: number | undefined;
  /** Every held name has its owner and first standby for the hosts seen now (decide()). */
  private decided = false;
  private timer: Timer | undefined;
  private closed = false;

  constructor(private readonly host: StartGateHost) {}

  /** Names held now (tests, diagnostics). */
  get size(): number {
    return this.held.size;
  }

  /** core/campaign.ts StartGateHook: false when `req` is never held (its name has candidates, a try-lock, …). */
  mayHold(req: CampaignRequest): boolean {
    return this.holdable(req) !== undefined;
  }

  /** The name of `req` if it may be held (no candidate yet, queue mode, not a try-lock), else undefined. */
  private holdable(req: CampaignRequest): string | undefined {
    if (this.closed || req.tryOnly) return undefined;
    const name = nameOf(this.host.prefix, req.key);
    return name !== undefined && this.host.gated(name) && this.host.view.queue(name).length === 0 ? name : undefined;
  }

  /** core/campaign.ts StartGateHook: holds `req` (a promise settled when it may go), or undefined: send now. */
  hold(req: CampaignRequest): Promise<void> | undefined {
    const name = this.holdable(req);
    if (name === undefined) return undefined;
    // A new session's campaigns: those of an earlier lease go now (they fail; their names campaign again).
    if (this.heldLease !== req.leaseId) this.releaseAll();
    this.heldLease = req.leaseId;
    const existing = this.held.get(name);
    if (existing) this.release(existing);
    if (this.held.size === 0) {
      this.holdSince = this.lastChange = this.host.clock.now();
      this.settledAt = undefined;
      this.round.clear();
    }
    this.round.add(name);
    return new Promise<void>((resolve) => {
      this.held.set(name, { name, release: resolve, owner: undefined, next: undefined, seen: 0 });
      this.decided = false;
      this.count(0, 1);
      // One check once this turn's holds are all in (one timer for the lot).
      this.timer ??= this.host.clock.setTimeout(() => this.check(), 0);
    });
  }

  /** The control records changed (mover.ts): a host came, left, began or ended joining, changed weight or drain. */
  hostsChanged(): void {
    const rec = this.host.records();
    const ids = [...rec.leaseByHost.keys()].filter((id) => this.candidate(id, rec)).sort();
    const sig = ids.map((id) => `${id}:${weightOf(id, rec)}`).join(',');
    if (sig === this.hostsSig) return;
    this.hostsSig = sig;
    this.lastChange = this.host.clock.now();
    if (this.held.size === 0) return;
    // Settled already: owners follow the hosts (one done joining that never queued for a name owns it no more).
    this.decided = false;
    this.check();
  }

  /** Queues changed (mover.ts): held names that got candidates; a round goes once every held name has its predecessors' keys. */
  viewChanged(names: ReadonlySet<string>): void {
    if (this.held.size === 0) return;
    const before = [this.allLed, this.allQueuedTwice];
    for (const name of names) {
      const h = this.held.get(name);
      if (!h || h.seen >= 2) continue;
      const seen = Math.min(2, this.host.view.queue(name).length);
      if (seen > h.seen) {
        this.count(h.seen, -1);
        this.count(seen, 1);
        h.seen = seen;
      }
    }
    if (this.settledAt !== undefined && ((this.allLed && !before[0]) || (this.allQueuedTwice && !before[1]))) this.check();
  }

  /** Every held name has a candidate (its leader, normally): the first standbys' round may go. */
  private get allLed(): boolean {
    return this.fewer[0] === 0;
  }

  /** Every held name has two: the rest may go. */
  private get allQueuedTwice(): boolean {
    return this.fewer[0] === 0 && this.fewer[1] === 0;
  }

  /** Counts a held name by the candidates seen (two or more are not counted). */
  private count(seen: number, by: number): void {
    if (seen < 2) this.fewer[seen]! += by;
  }

  /** Everything held goes now (the locker closes). */
  close(): void {
    this.closed = true;
    if (this.timer) this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.releaseAll();
  }

  private release(h: Held): void {
    if (this.held.get(h.name) !== h) return;
    this.held.delete(h.name);
    this.count(h.seen, -1);
    if (this.held.size === 0) this.round.clear();
    h.release();
  }

  /**
   * A host that may own names: one joining (registering a fleet's names now, like this one;
   * a host running, or a tool such as `locked drain` with a session but no names, registers
   * nothing to wait for) and not draining.
   */
  private candidate(id: string, rec: ControlRecords): boolean {
    return rec.joining.has(id) && !rec.draining.has(id);
  }

  /** Owners of the held names among the hosts seen now, this host included (its record may not be in yet). */
  private decide(): void {
    const rec = this.host.records();
    const self = this.host.nodeId;
    const hosts: { id: string; weight: number }[] = [];
    if (!rec.draining.has(self)) hosts.push({ id: self, weight: this.host.weight });
    for (const id of rec.leaseByHost.keys()) {
      if (id !== self && this.candidate(id, rec)) hosts.push({ id, weight: weightOf(id, rec) });
    }
    const eligible = hosts.filter((x) => x.weight > 0);
    if (eligible.length === 1 && eligible[0]!.id === self) {
      // Alone (a fleet's first host, or a host on its own): every name is ours, no standby to order.
      for (const h of this.held.values()) h.owner = self;
      this.decided = true;
      return;
    }
    const ids = new Set(eligible.map((x) => x.id));
    const key = (name: string): string => namePrefix(this.host.prefix, name);
    const nameByKey = new Map([...this.round].map((name) => [key(name), name]));
    const owners = rendezvousAssign([...nameByKey.keys()], hosts, (np) => this.host.prefer(nameByKey.get(np)!)?.find((id) => ids.has(id)));
    // First standbys, per leader: spread evenly over the other hosts (another zone than the
    // leader's where there is one) — what placement.ts planPromotions would otherwise reach by
    // stand-asides, thousands of them after a start where whoever's campaigns landed first
    // was every name's first standby.
    const zoneOf = (id: string): string | undefined => (id === self ? this.host.zone : rec.zones.get(id));
    const byLeader = new Map<string, string[]>();
    for (const [np, owner] of owners) {
      let l = byLeader.get(owner);
      if (!l) byLeader.set(owner, (l = []));
      l.push(np);
    }
    const nexts = new Map<string, string>();
    for (const [leader, nps] of byLeader) {
      const lz = zoneOf(leader);
      const others = eligible.filter((x) => x.id !== leader).map((x) => ({ id: x.id, weight: 1 }));
      const away = lz === undefined ? others : others.filter((x) => zoneOf(x.id) !== lz);
      for (const [np, next] of rendezvousAssign(nps, away.length > 0 ? away : others)) nexts.set(np, next);
    }
    for (const h of this.held.values()) {
      h.owner = owners.get(key(h.name));
      h.next = nexts.get(key(h.name));
    }
    this.decided = true;
  }

  /** Releases what may go now (see the rounds above) and sets the one timer for the next moment something may. */
  private check(): void {
    if (this.timer) this.host.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.held.size === 0 || this.closed) return;
    const now = this.host.clock.now();
    if (now - this.holdSince >= MAX_HOLD_MS) return this.releaseAll();
    if (this.settledAt === undefined) {
      if (now - this.lastChange < SETTLE_MS) return this.wake(Math.min(this.lastChange + SETTLE_MS, this.holdSince + MAX_HOLD_MS));
      this.settledAt = now;
      this.decide();
      const before = this.held.size;
      this.releaseOwn(false);
      // The others a turn later at the earliest: behind this host's own in its write queue.
      if (this.held.size < before) return this.wake(now);
    }
    if (now - this.settledAt >= OWNER_WAIT_MS) return this.releaseAll();
    if (!this.decided) this.decide();
    this.releaseOwn(this.allLed);
    if (this.allQueuedTwice) return this.releaseAll();
    this.wake(Math.min(this.settledAt + OWNER_WAIT_MS, this.holdSince + MAX_HOLD_MS));
  }

  /**
   * The names this host is meant to lead (or that nobody may: every host draining or of
   * weight 0 — nobody is worth waiting for) and, once every held name has a leader
   * (`standbys`), those it is meant to be first standby of.
   */
  private releaseOwn(standbys: boolean): void {
    const self = this.host.nodeId;
    for (const h of [...this.held.values()]) {
      if (h.owner === self || h.owner === undefined || (standbys && h.next === self)) this.release(h);
    }
  }

  private releaseAll(): void {
    for (const h of [...this.held.values()]) this.release(h);
  }

  private wake(at: number): void {
    if (this.held.size > 0) this.timer = this.host.clock.setTimeout(() => this.check(), Math.max(0, at - this.host.clock.now()));
  }
}
