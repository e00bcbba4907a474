// Drives placement.ts on a locker: keeps the control records parsed, the balance passes
// and the moves and promotions they start. The rules themselves are in placement.ts; the
// requests under way in pending.ts; drain orders and the wait for a drain in drain.ts; the
// requester side of a graceful failover in handover-request.ts; this host's record under
// its lease in host-record.ts; which hosts are up, and since when, in host-presence.ts.
import type { Clock, Timer } from '../core/clock.js';
import { EtcdUnavailableError } from '../core/errors.js';
import { moveKey, nextKey } from '../etcd/keys.js';
import { EMPTY_CONTROL, liveRequests, parseControl, type ControlRecords, type MoveRequest } from './control-records.js';
import { HostRecord } from './host-record.js';
import { HostPresence } from './host-presence.js';
import { Drains } from './drain.js';
import { deleteIfUnchanged } from './handover-request.js';
import { Pending } from './pending.js';
import { StartGate } from './start-gate.js';
import { DEFAULT_BALANCE_CONCURRENCY, handsOver, planMoves, planPromotions, standsAside, type PlannedMove } from './placement.js';
import type { Session } from '../core/session.js';
import type { ControlStore, HandOverPast } from '../etcd/store.js';
import type { ControlWriter } from './control-writes.js';
import type { PrefixView } from '../core/view.js';

/** What the mover needs from its locker. @internal */
export interface MoverHost {
  readonly view: PrefixView;
  /** Every etcd access of the mover: control records and reads (etcd-store.ts; the simulation's own). */
  readonly store: ControlStore;
  /** The store's puts and guarded deletes of control records, batched (control-writes.ts). */
  readonly writes: ControlWriter;
  readonly prefix: string;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly ttl: number;
  readonly balanceConcurrency: number;
  /** After a host's record disappears, balancing holds still this long (0: not at all). */
  readonly respreadDelayMs: number;
  /** Published in this host's record: its relative share (1 = as everyone) and failure domain. */
  readonly weight: number;
  readonly zone: string | undefined;
  session(): Session | undefined;
  requestTimeoutMs(): number;
  /** Hands a name over if this host leads it (Singleton.handOver); `past`: the standbys ahead of the target go with our key. */
  handOver(name: string, past?: HandOverPast): boolean;
  /** Re-queues at the back if this host is queued (not leading) for `name` (Singleton.stepBack); `past`: with the standbys ahead of the one promoted. */
  stepBack(name: string, past?: HandOverPast): boolean;
  /** True if this host runs `name` as a queue-mode singleton (the kind that is moved). */
  movable(name: string): boolean;
  /** The preferred hosts of `name` as registered here (SingletonOptions.prefer). */
  prefer(name: string): readonly string[] | undefined;
  /** False when no name registered here has preferred hosts: a pass then asks none. */
  anyPrefer(): boolean;
  /** A preferred host leads its names again once it has been up this long. */
  readonly preferHoldDownMs: number;
  /** Names registered here, to judge again after control records changed. */
  judge(names: Iterable<string> | 'all'): void;
  report(err: Error): void;
}

/** Leaderships must stand still this long before standbys are balanced. */
const QUIET_MS = 500;
/** After an unanswered delete of an orphaned request, sweep again this much later. */
const SWEEP_RETRY_MS = 1_000;
/** At most one planning pass per this many ms… */
const MIN_PASS_GAP_MS = 200;
/** …and per this many times the last pass took: planning gets at most a quarter of the event loop. */
const PASS_GAP_OVER_PASS = 3;
/**
 * Promotions of first standbys planned per pass. Each is one stand-aside (a delete and a
 * campaign, both batched with the pass's others): cheap, so standbys spread within a pass
 * or two of the leaderships, before a crash can need them.
 */
const PROMOTIONS_PER_PASS = 256;
/** Moves in flight of a draining host whose balancing is off. */
const DRAIN_CONCURRENCY = DEFAULT_BALANCE_CONCURRENCY;

/** @internal */
export class Mover {
  private rec: ControlRecords = EMPTY_CONTROL;
  /** Moves of our leaderships under way (`from` our key, `to` the target's node id). */
  private readonly inFlight: Pending<{ readonly from: string; readonly to: string }>;
  /** Promotions of another first standby we asked for (planPromotions); `key` is our standby key. */
  private readonly stepping: Pending<{ readonly key: string }>;
  private passTimer: Timer | undefined;
  /** Keys of orphaned requests of ours being deleted. */
  private readonly sweeping = new Set<string>();
  /** This host's record under its lease (host-record.ts). */
  private readonly record: HostRecord;
  private closed = false;
  /** Joining ends once the view reaches this revision (this host's campaigns in its own view). */
  private joinedAt: bigint | undefined;
  private loadsSig = '';
  private lastPass = -Infinity;
  /** How long the last pass took (ms): the next waits at least PASS_GAP_OVER_PASS times that. */
  private lastPassMs = 0;
  private quietSince = 0;
  /**
   * While this host drains: true until a pass finds none of its leaderships left to move
   * and none in flight. Its stand-asides as a first standby wait for that (placement.ts:
   * standsAside): the hand-overs come first.
   */
  private drainLeads = false;
  private quietTimer: Timer | undefined;
  /** Which hosts are up and since when: the respread delay and the preferred hosts' hold-down (host-presence.ts). */
  private readonly presence: HostPresence;
  /** A pass to sweep orphaned requests again after a delete went unanswered. */
  private sweepTimer: Timer | undefined;
  /** Drain orders, and drains waited for (`locker.drain()`). */
  readonly drains: Drains;
  /** Who campaigns first for names nobody queues for, when a fleet starts (start-gate.ts). */
  readonly startGate: StartGate;

  constructor(private readonly host: MoverHost) {
    this.inFlight = new Pending(host, moveKey, () => this.schedule());
    this.stepping = new Pending(host, nextKey, () => this.schedule());
    this.record = new HostRecord(host);
    this.presence = new HostPresence(host, () => this.schedule());
    this.drains = new Drains(host, (nodeId) => this.rec.draining.has(nodeId));
    this.startGate = new StartGate({
      view: host.view,
      prefix: host.prefix,
      nodeId: host.nodeId,
      clock: host.clock,
      weight: host.weight,
      zone: host.zone,
      // Balancing on: the locker wires the gate to its campaigns only then (runtime.ts).
      gated: (name) => host.movable(name),
      prefer: (name) => host.prefer(name),
      records: () => this.rec,
    });
  }

  // ——— the rules, on the current view ———

  standsAside(name: string, key: string): boolean {
    const q = this.host.view.queue(name);
    return standsAside(q, key, this.host.nodeId, this.rec, this.rec.moves.get(name), this.rec.nexts.get(name), !this.drainLeads);
  }

  handsOver(name: string, key: string): boolean {
    return handsOver(this.host.view.queue(name), key, this.rec.moves.get(name));
  }

  get draining(): boolean {
    return this.rec.draining.has(this.host.nodeId);
  }

  // ——— driven by the locker ———

  /** Control records changed: re-parse, judge the names they concern, plan again. */
  controlChanged(): void {
    this.joinedIfSeen();
    // An operator's `del --prefix` takes our record too: without it our keys look foreign.
    this.record.check();
    const before = this.rec;
    this.rec = parseControl(this.host.prefix, this.host.view.control);
    this.presence.update(this.rec.leaseByHost, this.rec.joining);
    this.startGate.hostsChanged();
    const drainChanged = before.draining.size !== this.rec.draining.size || [...before.draining].some((d) => !this.rec.draining.has(d));
    if (this.draining && !before.draining.has(this.host.nodeId)) this.drainLeads = true;
    else if (!this.draining) this.drainLeads = false;
    if (drainChanged) this.host.judge('all');
    else {
      const names = new Set<string>([...this.rec.moves.keys(), ...before.moves.keys(), ...this.rec.nexts.keys()]);
      if (names.size > 0) this.host.judge(names);
    }
    this.schedule();
    this.drains.wake();
  }

  /** Queues changed: finish the moves that happened, plan again. */
  viewChanged(names: ReadonlySet<string>): void {
    this.joinedIfSeen();
    this.startGate.viewChanged(names);
    if (this.stepping.size > 0) {
      for (const name of names) {
        const st = this.stepping.get(name);
        // Done once our key is no longer the first standby (we re-queued, or it changed otherwise).
        if (st && this.host.view.queue(name)[1]?.key !== st.key) this.stepping.end(name);
      }
    }
    if (this.inFlight.size > 0) {
      for (const name of names) {
        const m = this.inFlight.get(name);
        if (m && this.host.view.head(name)?.key !== m.from) this.inFlight.end(name);
      }
    }
    this.schedule();
    this.drains.wake();
  }

  /**
   * This host's names' campaigns are going out (campaign.ts): the others hold balancing
   * meanwhile. Resolves once the record says so — at the latest after a request timeout (the
   * campaigns wait for it; a record that cannot be written must not hold them for good).
   */
  joining(on: boolean, seenAt?: bigint): Promise<void> {
    // Not joining only once this host's own view shows its campaigns: a host whose event loop
    // or watch lags seconds behind etcd (the bench's start, 8 hosts on 2 cores) was handed
    // names it could not see it was next for — leaderless until it caught up (6 s seen).
    if (!on && seenAt !== undefined && !this.host.view.reached(seenAt)) {
      this.joinedAt = seenAt;
      return Promise.resolve();
    }
    this.joinedAt = undefined;
    return new Promise((resolve) => {
      const timer = this.host.clock.setTimeout(resolve, this.host.requestTimeoutMs());
      void this.record.setJoining(on).then(() => {
        this.host.clock.clearTimeout(timer);
        resolve();
      });
    });
  }

  /** The view moved: a joining that waited for it to show this host's campaigns ends. */
  private joinedIfSeen(): void {
    if (this.joinedAt !== undefined && this.host.view.reached(this.joinedAt)) void this.joining(false);
  }

  /**
   * A new session's names start (runtime.ts becameReady: granted, and the view current):
   * publish this host's record under its lease (the sign that its keys are ours).
   */
  sessionReady(session: Session): void {
    this.record.publish(session);
  }

  /**
   * Plans (and sweeps) soon: after a `failover()` of this host, whose final delete of its
   * request may have gone unanswered while no event would bring a pass.
   */
  sweepSoon(): void {
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.record.close();
    if (this.passTimer) this.host.clock.clearTimeout(this.passTimer);
    if (this.quietTimer) this.host.clock.clearTimeout(this.quietTimer);
    if (this.sweepTimer) this.host.clock.clearTimeout(this.sweepTimer);
    this.presence.close();
    this.startGate.close();
    this.inFlight.clear();
    this.stepping.clear();
    this.drains.close();
  }

  /**
   * Plans soon, once per burst of events and at most every MIN_PASS_GAP_MS — or three times
   * as long as the last pass took, if more: a pass reads every queue (O(names × candidates)),
   * which must not eat the event loop of a host with thousands of names while moves stream
   * in (at 100,000 names a pass takes ~100 ms on a loaded core; every 200 ms it was half the
   * host's CPU).
   */
  private schedule(): void {
    if (this.closed || this.passTimer) return;
    const gap = Math.max(MIN_PASS_GAP_MS, PASS_GAP_OVER_PASS * this.lastPassMs);
    const wait = Math.max(50, this.lastPass + gap - this.host.clock.now());
    this.passTimer = this.host.clock.setTimeout(() => {
      this.passTimer = undefined;
      this.lastPass = this.host.clock.now();
      this.pass();
      this.lastPassMs = this.host.clock.now() - this.lastPass;
    }, wait);
  }

  private pass(): void {
    const session = this.host.session();
    if (this.closed || !session || !this.host.view.current) return;
    this.sweepOrphans();
    if (!this.draining && this.host.balanceConcurrency === 0) return;
    const limit = (this.host.balanceConcurrency || DRAIN_CONCURRENCY) - this.inFlight.size;
    const view = this.host.view;
    const rec = liveRequests(this.rec, (name) => view.head(name)?.key);
    const queues = view.entries();
    // A host that disappeared (the respread delay) or is joining holds balancing still.
    const holding = this.presence.holding() || this.presence.joining();
    const moves = planMoves({
      queues,
      rec,
      self: this.host.nodeId,
      balance: this.host.balanceConcurrency > 0 && !holding,
      inFlight: new Map([...this.inFlight.entries()].map(([name, m]) => [name, m.to])),
      limit,
      movable: (name) => this.host.movable(name),
      ...(this.host.anyPrefer() ? { prefer: (name: string) => this.host.prefer(name) } : {}),
      settled: (id) => this.presence.settled(id),
    });
    for (const m of moves) this.start(m, session);
    if (this.drainLeads && this.inFlight.size === 0 && moves.length === 0) {
      // Every leadership that can leave has left: now the stand-asides (judged afresh).
      this.drainLeads = false;
      this.host.judge('all');
    }
    if (this.host.balanceConcurrency === 0 || this.draining || holding || moves.length > 0) return;
    // Standbys move only once leaderships stand still: a standby that steps back while a
    // leader hands a name to it would send the name to whoever is behind it instead.
    if (!this.leadershipsQuiet(rec)) return;
    const promotions = planPromotions({
      queues: view.entries(),
      rec,
      self: this.host.nodeId,
      inFlight: new Map(),
      stepping: new Set(this.stepping.names()),
      limit: Math.min(PROMOTIONS_PER_PASS, this.host.balanceConcurrency - this.stepping.size),
      movable: (name) => this.host.movable(name),
    });
    for (const p of promotions) this.promote(p, session);
  }

  /**
   * Deletes standby requests of ours that no promotion is waiting for (their delete failed,
   * e.g. under load): left behind, one would keep its leader's standbys re-queueing for as
   * long as that leader leads. Move requests of ours are deleted only once void (their
   * leader key gone: liveRequests()) and no move of ours waits for them — `failover()` writes
   * them under our node id too, and waits while its leader key exists. A move request of a
   * requester that is no live host (a `failover()` whose process died before its `finally`:
   * such requests have no lease) is deleted by whoever sees it once it is void or nobody it
   * could go to queues: left behind it would stay for good, and act again whenever its leader
   * key reappears (a host that re-queues on the same lease writes the same key).
   */
  private sweepOrphans(): void {
    const orphans: string[] = [];
    for (const [name, req] of this.rec.nexts) {
      if (req.by === this.host.nodeId && !this.stepping.get(name)) orphans.push(nextKey(this.host.prefix, name));
    }
    for (const [name, req] of this.rec.moves) {
      const live = this.host.view.head(name)?.key === req.from;
      if (req.by === this.host.nodeId) {
        if (!live && !this.inFlight.get(name)) orphans.push(moveKey(this.host.prefix, name));
        continue;
      }
      const requesterGone = req.by === undefined || !this.rec.leaseByHost.has(req.by);
      const queue = this.host.view.queue(name);
      const unreachable = req.to === undefined ? queue.length < 2 : !queue.some((c) => c.value === req.to);
      if (requesterGone && (!live || unreachable)) orphans.push(moveKey(this.host.prefix, name));
    }
    for (const key of orphans) {
      const raw = this.host.view.control.get(key);
      if (raw === undefined || this.sweeping.has(key)) continue;
      this.sweeping.add(key);
      void deleteIfUnchanged(this.host.writes, key, raw, this.host.requestTimeoutMs()).then((done) => {
        this.sweeping.delete(key);
        // Unanswered (cut off, overloaded): sweep again in a while — no event may come to
        // plan again, and a request left behind stays in etcd for good if it has no lease.
        if (!done && !this.closed && !this.sweepTimer) {
          this.sweepTimer = this.host.clock.setTimeout(() => {
            this.sweepTimer = undefined;
            this.schedule();
          }, SWEEP_RETRY_MS);
        }
      });
    }
  }

  /** True once no move is under way and who-leads-how-many has not changed for QUIET_MS; else plans again then. */
  private leadershipsQuiet(rec: ControlRecords): boolean {
    const counts = new Map<string, number>();
    for (const [, queue] of this.host.view.entries()) {
      const v = queue[0]?.value;
      if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const sig = [...counts].sort((a, b) => (a[0] < b[0] ? -1 : 1)).join(';');
    const now = this.host.clock.now();
    if (sig !== this.loadsSig || this.inFlight.size > 0 || rec.moves.size > 0) {
      this.loadsSig = sig;
      this.quietSince = now;
    }
    if (now - this.quietSince >= QUIET_MS) return true;
    if (!this.quietTimer) {
      this.quietTimer = this.host.clock.setTimeout(() => {
        this.quietTimer = undefined;
        this.schedule();
      }, QUIET_MS);
    }
    return false;
  }

  /**
   * Makes `to` the first standby of `name` in our place: directly if it is right behind us,
   * or past standbys of ours in one transaction (promotesPast), else by a request.
   */
  private promote({ name, from, to, position, past }: PlannedMove, session: Session): void {
    const key = this.host.view.queue(name)[1]?.key;
    if (key === undefined) return;
    const st = this.stepping.begin(name, { key });
    if (position === 2 || past) {
      if (!this.host.stepBack(name, past)) this.stepping.end(name);
      return;
    }
    const sent = this.request(nextKey(this.host.prefix, name), name, { from, to }, session, 'standby request', () =>
      this.stepping.end(name),
    );
    st.written = sent.written;
    st.landed = sent.landed;
  }

  /**
   * Writes a request under our lease (it goes with us if we die) and judges the name again
   * once it landed; `failed` ends the move or promotion. Returns the value written and the
   * write (settled once it landed or failed).
   */
  private request(
    key: string,
    name: string,
    req: { from: string; to: string },
    session: Session,
    what: string,
    failed: () => void,
  ): { written: string; landed: Promise<unknown> } {
    const value = JSON.stringify({ ...req, by: this.host.nodeId } satisfies MoveRequest);
    const landed = this.host.writes
      .put(key, value, session.leaseId, this.host.requestTimeoutMs())
      .then(() => this.host.judge([name]))
      .catch((err: unknown) => {
        this.host.report(new EtcdUnavailableError(`write of the ${what} of '${name}'`, err));
        failed();
      });
    return { written: value, landed };
  }

  private start({ name, from, to, position, past }: PlannedMove, session: Session): void {
    const m = this.inFlight.begin(name, { from, to });
    // Next in line, or reachable past our own standbys: a hand-over, at once.
    if (position === 1 || past) {
      if (!this.host.handOver(name, past)) this.inFlight.end(name);
      return;
    }
    // Candidates between us and the target step aside once they see the request.
    const sent = this.request(moveKey(this.host.prefix, name), name, { from, to }, session, 'move request', () => this.inFlight.end(name));
    m.written = sent.written;
    m.landed = sent.landed;
  }
}
