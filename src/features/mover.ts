// Drives placement.ts on a locker: keeps the control records parsed, this host's record
// under its lease, the balance passes and their moves in flight, drains, and the
// requester side of a graceful failover. The rules themselves are in placement.ts.
import { untilAborted } from '../core/abort.js';
import { sleep, wallTime, type Clock, type Timer } from '../core/clock.js';
import { EtcdUnavailableError, HandOverError } from '../core/errors.js';
import { drainKey, hostKey, moveKey, namePrefix, nextKey, validateName } from '../etcd/keys.js';
import {
  DEFAULT_BALANCE_CONCURRENCY,
  EMPTY_CONTROL,
  handsOver,
  hostsStatus,
  liveRequests,
  parseControl,
  planMoves,
  planPromotions,
  standsAside,
  type ControlRecords,
  type HostStatus,
  type MoveRequest,
} from './placement.js';
import type { Candidate } from '../core/queue.js';
import type { Session } from '../core/session.js';
import type { ControlStore } from '../etcd/store.js';
import type { DrainOptions } from '../api/options.js';
import type { PrefixView } from '../core/view.js';

/** What the mover needs from its locker. @internal */
export interface MoverHost {
  readonly view: PrefixView;
  /** Every etcd access of the mover: control records and reads (etcd-store.ts; the simulation's own). */
  readonly store: ControlStore;
  readonly prefix: string;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly ttl: number;
  readonly balanceConcurrency: number;
  /** Published in this host's record: its relative share (1 = as everyone) and failure domain. */
  readonly weight: number;
  readonly zone: string | undefined;
  session(): Session | undefined;
  requestTimeoutMs(): number;
  /** Hands a name over if this host leads it (Singleton.handOver). */
  handOver(name: string): boolean;
  /** Re-queues at the back if this host is queued (not leading) for `name` (Singleton.stepBack). */
  stepBack(name: string): boolean;
  /** True if this host runs `name` as a queue-mode singleton (the kind that is moved). */
  movable(name: string): boolean;
  /** Names registered here, to judge again after control records changed. */
  judge(names: Iterable<string> | 'all'): void;
  report(err: Error): void;
}

/**
 * Requests this host started and has not seen done yet — moves of its leaderships, or
 * promotions of another first standby — by name. Each ends when the view shows it done,
 * when it failed, or at its timeout; ending deletes the request record it wrote (if still
 * ours) and plans again.
 */
class Pending<T extends object> {
  private readonly items = new Map<string, T & { written: string | undefined; landed?: Promise<unknown>; readonly timer: Timer }>();

  constructor(
    private readonly host: MoverHost,
    /** The request record's key for a name (moveKey or nextKey). */
    private readonly keyOf: (prefix: string, name: string) => string,
    private readonly ended: () => void,
  ) {}

  get size(): number {
    return this.items.size;
  }

  get(name: string): (T & { written: string | undefined; landed?: Promise<unknown> }) | undefined {
    return this.items.get(name);
  }

  names(): IterableIterator<string> {
    return this.items.keys();
  }

  entries(): IterableIterator<[string, T & { written: string | undefined }]> {
    return this.items.entries();
  }

  begin(name: string, data: T): T & { written: string | undefined; landed?: Promise<unknown> } {
    const old = this.items.get(name);
    if (old) this.host.clock.clearTimeout(old.timer); // (the planners skip names in flight: not expected)
    const timer = this.host.clock.setTimeout(() => this.end(name), Math.max(5_000, 3 * this.host.ttl * 1000));
    const item = { ...data, written: undefined, timer };
    this.items.set(name, item);
    return item;
  }

  end(name: string): void {
    const item = this.items.get(name);
    if (!item) return;
    this.items.delete(name);
    this.host.clock.clearTimeout(item.timer);
    const { written, landed } = item;
    if (written !== undefined) {
      // After the write has landed (or failed): a delete that overtook it would leave the
      // request behind, acted on for as long as its leader leads.
      const key = this.keyOf(this.host.prefix, name);
      void (landed ?? Promise.resolve()).finally(() => deleteIfUnchanged(this.host.store, key, written, this.host.requestTimeoutMs()));
    }
    this.ended();
  }

  /** On close: timers off, records left to their lease. */
  clear(): void {
    for (const item of this.items.values()) this.host.clock.clearTimeout(item.timer);
    this.items.clear();
  }
}

/** Leaderships must stand still this long before standbys are balanced. */
const QUIET_MS = 500;
/** At most one planning pass per this many ms. */
const MIN_PASS_GAP_MS = 200;
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
  private recordFor: Session | undefined;
  private waiters = new Set<() => void>();
  private closed = false;
  private putting = false;
  private loadsSig = '';
  private lastPass = -Infinity;
  private quietSince = 0;
  private quietTimer: Timer | undefined;

  constructor(private readonly host: MoverHost) {
    this.inFlight = new Pending(host, moveKey, () => this.schedule());
    this.stepping = new Pending(host, nextKey, () => this.schedule());
  }

  // ——— the rules, on the current view ———

  standsAside(name: string, key: string): boolean {
    return standsAside(this.host.view.queue(name), key, this.host.nodeId, this.rec, this.rec.moves.get(name), this.rec.nexts.get(name));
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
    // An operator's `del --prefix` takes our record too: without it our keys look foreign.
    const mine = this.recordFor;
    if (
      mine &&
      !mine.ended &&
      !this.putting &&
      this.host.view.current &&
      !this.host.view.control.has(hostKey(this.host.prefix, this.host.nodeId))
    ) {
      void this.putRecord(mine);
    }
    const before = this.rec;
    this.rec = parseControl(this.host.prefix, this.host.view.control);
    const drainChanged = before.draining.size !== this.rec.draining.size || [...before.draining].some((d) => !this.rec.draining.has(d));
    if (drainChanged) this.host.judge('all');
    else {
      const names = new Set<string>([...this.rec.moves.keys(), ...before.moves.keys(), ...this.rec.nexts.keys()]);
      if (names.size > 0) this.host.judge(names);
    }
    this.schedule();
    this.wake();
  }

  /** Queues changed: finish the moves that happened, plan again. */
  viewChanged(names: ReadonlySet<string>): void {
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
    this.wake();
  }

  /** A new session: publish this host's record under its lease (the sign that its keys are ours). */
  sessionGranted(session: Session): void {
    this.recordFor = session;
    void this.putRecord(session);
  }

  close(): void {
    this.closed = true;
    if (this.passTimer) this.host.clock.clearTimeout(this.passTimer);
    if (this.quietTimer) this.host.clock.clearTimeout(this.quietTimer);
    this.inFlight.clear();
    this.stepping.clear();
    for (const w of [...this.waiters]) w();
  }

  private async putRecord(session: Session): Promise<void> {
    this.putting = true;
    try {
      await this.putRecordNow(session);
    } finally {
      this.putting = false;
    }
  }

  private async putRecordNow(session: Session): Promise<void> {
    let wait = 50;
    while (!this.closed && this.recordFor === session && !session.ended) {
      try {
        const { weight, zone } = this.host;
        const value = JSON.stringify({ lease: session.hex, ...(weight !== 1 ? { weight } : {}), ...(zone !== undefined ? { zone } : {}) });
        await this.host.store.put(hostKey(this.host.prefix, this.host.nodeId), value, session.leaseId, this.host.requestTimeoutMs());
        return;
      } catch (err) {
        if (this.closed || session.ended) return;
        this.host.report(new EtcdUnavailableError(`write of the host record of '${this.host.nodeId}'`, err));
        await sleep(this.host.clock, wait);
        wait = Math.min(wait * 2, 2000);
      }
    }
  }

  /**
   * Plans soon, once per burst of events and at most every MIN_PASS_GAP_MS: a pass reads
   * every queue (O(names × candidates)), which must not eat the event loop of a host with
   * thousands of names while moves stream in.
   */
  private schedule(): void {
    if (this.closed || this.passTimer) return;
    const wait = Math.max(50, this.lastPass + MIN_PASS_GAP_MS - this.host.clock.now());
    this.passTimer = this.host.clock.setTimeout(() => {
      this.passTimer = undefined;
      this.lastPass = this.host.clock.now();
      this.pass();
    }, wait);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private pass(): void {
    const session = this.host.session();
    if (this.closed || !session || !this.host.view.current) return;
    this.sweepOrphans();
    if (!this.draining && this.host.balanceConcurrency === 0) return;
    const limit = (this.host.balanceConcurrency || DRAIN_CONCURRENCY) - this.inFlight.size;
    const view = this.host.view;
    const rec = liveRequests(this.rec, (name) => view.head(name)?.key);
    const queues = (function* () {
      for (const name of view.names()) yield [name, view.queue(name)] as [string, readonly Candidate[]];
    })();
    const moves = planMoves({
      queues,
      rec,
      self: this.host.nodeId,
      balance: this.host.balanceConcurrency > 0,
      inFlight: new Map([...this.inFlight.entries()].map(([name, m]) => [name, m.to])),
      limit,
      movable: (name) => this.host.movable(name),
    });
    for (const m of moves) this.start(m.name, m.from, m.to, m.position, session);
    if (this.host.balanceConcurrency === 0 || this.draining || moves.length > 0) return;
    // Standbys move only once leaderships stand still: a standby that steps back while a
    // leader hands a name to it would send the name to whoever is behind it instead.
    if (!this.leadershipsQuiet(rec)) return;
    const promotions = planPromotions({
      queues: (function* () {
        for (const name of view.names()) yield [name, view.queue(name)] as [string, readonly Candidate[]];
      })(),
      rec,
      self: this.host.nodeId,
      inFlight: new Map(),
      stepping: new Set(this.stepping.names()),
      limit: Math.min(PROMOTIONS_PER_PASS, this.host.balanceConcurrency - this.stepping.size),
      movable: (name) => this.host.movable(name),
    });
    for (const p of promotions) this.promote(p.name, p.from, p.to, p.position, session);
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
      void deleteIfUnchanged(this.host.store, key, raw, this.host.requestTimeoutMs()).finally(() => this.sweeping.delete(key));
    }
  }

  /** True once no move is under way and who-leads-how-many has not changed for QUIET_MS; else plans again then. */
  private leadershipsQuiet(rec: ControlRecords): boolean {
    const counts = new Map<string, number>();
    for (const name of this.host.view.names()) {
      const v = this.host.view.head(name)?.value;
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

  /** Makes `to` the first standby of `name` in our place: directly if it is right behind us, else by a request. */
  private promote(name: string, from: string, to: string, position: number, session: Session): void {
    const key = this.host.view.queue(name)[1]?.key;
    if (key === undefined) return;
    const st = this.stepping.begin(name, { key });
    if (position === 2) {
      if (!this.host.stepBack(name)) this.stepping.end(name);
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
    const landed = this.host.store
      .put(key, value, session.leaseId, this.host.requestTimeoutMs())
      .then(() => this.host.judge([name]))
      .catch((err: unknown) => {
        this.host.report(new EtcdUnavailableError(`write of the ${what} of '${name}'`, err));
        failed();
      });
    return { written: value, landed };
  }

  private start(name: string, from: string, to: string, position: number, session: Session): void {
    const m = this.inFlight.begin(name, { from, to });
    if (position === 1) {
      if (!this.host.handOver(name)) this.inFlight.end(name);
      return;
    }
    // Candidates between us and the target step aside once they see the request.
    const sent = this.request(moveKey(this.host.prefix, name), name, { from, to }, session, 'move request', () => this.inFlight.end(name));
    m.written = sent.written;
    m.landed = sent.landed;
  }

  // ——— drain ———

  /** Writes a drain order for `nodeId` (no lease: it holds until undrain). */
  async order(nodeId: string, on: boolean): Promise<void> {
    const key = drainKey(this.host.prefix, nodeId);
    const timeoutMs = this.host.requestTimeoutMs();
    try {
      if (on)
        await this.host.store.put(key, JSON.stringify({ at: new Date(wallTime(this.host.clock)).toISOString() }), undefined, timeoutMs);
      else await this.host.store.remove(key, undefined, timeoutMs);
    } catch (err) {
      throw new EtcdUnavailableError(`${on ? 'write' : 'delete'} of the drain order of '${nodeId}'`, err);
    }
  }

  /**
   * Resolves once `nodeId` is draining in the view and leads no name that an eligible
   * candidate queues for. `onMove` hears of each leadership that left it.
   */
  async drained(nodeId: string, options: DrainOptions, begin: () => Promise<void> = async () => {}): Promise<void> {
    const view = this.host.view;
    view.start();
    await view.ready();
    // What the host leads before the drain order is written (`begin`): a hand-over that
    // reaches this view before the order does still counts as moved.
    const led = new Set<string>();
    for (const name of view.names()) if (view.queue(name)[0]?.value === nodeId) led.add(name);
    await begin();
    const check = (): boolean => {
      if (!view.current || !this.rec.draining.has(nodeId)) return false;
      let done = true;
      const now = new Set<string>();
      for (const name of view.names()) {
        const q = view.queue(name);
        if (q[0]?.value !== nodeId) continue;
        now.add(name);
        if (q.some((c) => c.value !== nodeId && !this.rec.draining.has(c.value))) done = false;
      }
      for (const name of led) if (!now.has(name)) options.onMove?.(name, view.head(name)?.value);
      led.clear();
      for (const n of now) led.add(n);
      return done;
    };
    await untilAborted(
      () =>
        new Promise<void>((resolve) => {
          const w = (): void => {
            if (this.closed || check()) {
              this.waiters.delete(w);
              resolve();
            }
          };
          this.waiters.add(w);
          w();
        }),
      options.signal,
      `drain of '${nodeId}'`,
    );
  }

  // ——— status ———

  hosts(queues: Iterable<[string, readonly Candidate[]]>, control: ReadonlyMap<string, string>): HostStatus[] {
    return hostsStatus(queues, parseControl(this.host.prefix, control));
  }
}

/** Deletes `key` only while it still holds `value` (a newer request is someone else's). */
async function deleteIfUnchanged(store: ControlStore, key: string, value: string, timeoutMs: number): Promise<void> {
  try {
    await store.remove(key, value, timeoutMs);
  } catch {
    // Left behind it is void: a request names the leadership it concerns, which is gone.
  }
}

/**
 * @internal
 * The node ids of the live hosts — those with a host record (kept under the host's
 * lease) or a key in some queue (an older locked writes no record) — sorted, and the
 * ids with a drain order, live or not: one snapshot of the prefix.
 */
export async function knownHosts(
  store: ControlStore,
  prefix: string,
  timeoutMs: number,
): Promise<{ live: string[]; draining: ReadonlySet<string> }> {
  let snap;
  try {
    snap = await store.readPrefix(prefix, timeoutMs);
  } catch (err) {
    throw new EtcdUnavailableError(`read of the hosts under prefix '${prefix}'`, err);
  }
  const rec = parseControl(prefix, snap.control ?? new Map());
  const live = new Set(rec.leaseByHost.keys());
  for (const queue of snap.queues.values()) for (const c of queue) live.add(c.value);
  return { live: [...live].sort(), draining: rec.draining };
}

/**
 * @internal
 * The requester's side of a graceful failover: writes `<prefix>/move/<name>` naming the
 * current leader's key (and the target), then waits until that key is gone. The leader
 * drains fn before it deletes its key, so the next leader starts after it stopped.
 */
export async function requestHandOver(
  store: ControlStore,
  clock: Clock,
  prefix: string,
  name: string,
  by: string,
  options: { to?: string; timeoutMs: number; requestTimeoutMs: number },
): Promise<string | undefined> {
  validateName(name);
  const { to, timeoutMs, requestTimeoutMs } = options;
  const readQueue = (): Promise<Candidate[]> => store.readQueue(namePrefix(prefix, name), requestTimeoutMs);
  let queue: Candidate[];
  try {
    queue = await readQueue();
  } catch (err) {
    throw new EtcdUnavailableError(`read of the queue of '${name}'`, err);
  }
  const head = queue[0];
  if (!head) return undefined;
  if (to !== undefined) {
    if (head.value === to) return to;
    if (!queue.some((c) => c.value === to)) {
      throw new HandOverError(
        name,
        'not-queued',
        `cannot hand '${name}' to '${to}': it does not queue for the name (candidates: ${queue.map((c) => c.value).join(', ')})`,
        head.value,
      );
    }
    // A draining host stands aside whenever another may lead: the move could never land.
    let draining: boolean;
    try {
      draining = (await store.get(drainKey(prefix, to), requestTimeoutMs)) !== undefined;
    } catch (err) {
      throw new EtcdUnavailableError(`read of the drain order of '${to}'`, err);
    }
    if (draining) throw new HandOverError(name, 'other', `cannot hand '${name}' to '${to}': it is draining (undrain it first)`, head.value);
  } else if (queue.length < 2) {
    return head.value; // nobody else queues: the name stays where it is
  }
  const value = JSON.stringify({ from: head.key, ...(to !== undefined ? { to } : {}), by } satisfies MoveRequest);
  const key = moveKey(prefix, name);
  try {
    await store.put(key, value, undefined, requestTimeoutMs);
  } catch (err) {
    // Its answer may be what was lost: the request has no lease, so take it back out.
    await deleteIfUnchanged(store, key, value, requestTimeoutMs);
    throw new EtcdUnavailableError(`write of the move request of '${name}'`, err);
  }
  const until = clock.now() + timeoutMs;
  try {
    for (;;) {
      let now: Candidate | undefined;
      try {
        now = (await readQueue())[0];
      } catch {
        now = head; // unanswered read: try again until the deadline
      }
      if (now?.key !== head.key) {
        if (to !== undefined && now?.value !== to) {
          throw new HandOverError(
            name,
            'other',
            `'${name}' went to '${now?.value ?? 'nobody'}' instead of '${to}' (the target left the queue meanwhile?)`,
            now?.value,
          );
        }
        return now?.value;
      }
      if (clock.now() >= until) {
        throw new HandOverError(
          name,
          'timeout',
          `the leader '${head.value}' of '${name}' did not hand over within ${timeoutMs} ms (cut off from etcd, or an older locked that does not read move requests?); ` +
            `force it with failover --force, which deletes its key without waiting for its work to stop`,
          head.value,
        );
      }
      await sleep(clock, 50);
    }
  } finally {
    await deleteIfUnchanged(store, key, value, requestTimeoutMs);
  }
}
