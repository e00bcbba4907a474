// THE LOCAL VIEW of every queue under a prefix, and the only thing that says which key
// of a name is first. One owner for the prefix watch and every name's queue, so the
// rules of a consistent view live in one place:
//
// - The view is a snapshot at revision R (a range read) plus every watch event after R.
//   `revision` is explicit: everything at or below it is in the view.
// - One etcd revision can carry many events (`del --prefix`, a lease revoke or expiry,
//   a transaction): a watch response is applied whole, and `revision` advances only
//   after it, so no event of a revision is dropped for sharing it with another.
// - While a snapshot is pending (at start, or after the watch was re-created because it
//   missed events), events are buffered and replayed over the snapshot once it arrives,
//   never applied to the stale view and then wiped by it.
// - Re-reads are numbered: only the newest may install its snapshot.
// - Nobody may be judged first while the view is stale, nor before the view has
//   reached the revision of that candidate's own campaign write.
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Clock } from './clock.js';
import { EtcdUnavailableError } from './errors.js';
import { controlPrefix, nameOf } from '../etcd/keys.js';
import { Queue, type Candidate, type KeyEvent } from './queue.js';
import type { PrefixWatchHandle, Store } from '../etcd/store.js';

export interface ViewListener {
  /**
   * Queues of these names changed (or may have). `reread`: a snapshot replaced the view;
   * `names` then lists every name the view knew before or knows now, but a name whose
   * events were lost with the old watch may be in neither (a campaign we wrote and an
   * operator deleted while the watch was down): listeners judge everything they hold.
   */
  changed(names: ReadonlySet<string>, reread: boolean): void;
  /** etcd trouble while (re)starting the watch or reading the prefix; the view keeps trying. */
  trouble(err: Error): void;
  /** Connection state of the watch stream. */
  connected(up: boolean): void;
  /** Control records under `<prefix>/` changed (or may have, after a re-read). */
  control?(): void;
}

interface Pending {
  readonly epoch: number;
  readonly buffer: KeyEvent[][];
}

export class PrefixView {
  private queues = new Map<string, Queue>();
  /** Control records (hosts, drain orders, move requests): key → value. */
  private controls = new Map<string, string>();
  private readonly controlStart: string;
  /** Everything at or below this revision is in the view; undefined before the first snapshot. */
  private revision: bigint | undefined;
  /** Set while a snapshot is being read: events wait in its buffer. */
  private pending: Pending | undefined;
  /** Number of the newest re-read; an older one never installs its snapshot. */
  private epoch = 0;
  private watch: PrefixWatchHandle | undefined;
  private closed = false;
  private started: Promise<void> | undefined;
  private readyWaiters: (() => void)[] = [];
  private retryTimer: ReturnType<Clock['setTimeout']> | undefined;

  constructor(
    private readonly store: Store,
    readonly prefix: string,
    private readonly clock: Clock,
    private readonly timeoutMs: () => number,
    private readonly listener: ViewListener,
  ) {
    this.controlStart = controlPrefix(prefix);
  }

  /** Control records under `<prefix>/`, key → value, at the view's revision. */
  get control(): ReadonlyMap<string, string> {
    return this.controls;
  }

  /** Starts watching and reading (idempotent). */
  start(): void {
    this.started ??= this.open();
  }

  /** True while the view is current and holds everything up to `revision` (a write of ours, say). */
  reached(revision: bigint): boolean {
    return this.current && this.revision! >= revision;
  }

  /** True once a snapshot is installed and no re-read is pending: the view may be judged. */
  get current(): boolean {
    return this.revision !== undefined && this.pending === undefined;
  }

  /** Resolves once the first snapshot is installed (or the view closed). */
  ready(): Promise<void> {
    if (this.revision !== undefined || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** The queue of `name`, leader first (empty when nobody campaigns). */
  queue(name: string): readonly Candidate[] {
    return this.queues.get(name)?.ordered() ?? [];
  }

  /** Every name with at least one candidate. */
  names(): IterableIterator<string> {
    return this.queues.keys();
  }

  /** Every name with its queue, leader first: one pass over the view (a planning pass reads them all). */
  *entries(): IterableIterator<[string, readonly Candidate[]]> {
    for (const [name, q] of this.queues) yield [name, q.ordered()];
  }

  head(name: string): Candidate | undefined {
    return this.queues.get(name)?.head();
  }

  /** Position of `key` in `name`'s queue (0 = leader), or undefined. */
  position(name: string, key: string): number | undefined {
    const i = this.queues.get(name)?.indexOf(key) ?? -1;
    return i < 0 ? undefined : i;
  }

  /**
   * What the view says of a campaign's key, written at revision `since` with create
   * revision `token`: 'unknown' while the view is stale or has not reached `since`
   * (the answer would be about an older etcd), else whether the key is 'first', merely
   * 'queued', or 'gone' (deleted, or replaced by a newer key of the same name).
   */
  judge(name: string, key: string, token: bigint, since: bigint): 'unknown' | 'first' | 'queued' | 'gone' {
    if (!this.reached(since)) return 'unknown';
    const q = this.queues.get(name);
    const mine = q?.get(key);
    if (!q || !mine || mine.createRevision !== token) return 'gone';
    return q.head() === mine ? 'first' : 'queued';
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) this.clock.clearTimeout(this.retryTimer);
    for (const w of this.readyWaiters.splice(0)) w();
    await this.watch?.close();
  }

  /** The etcd member the prefix watch is on (health reports). */
  get watchEndpoint(): string | undefined {
    return this.watch?.endpoint;
  }

  // ——— watch and snapshots ———

  private async open(): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    while (!this.closed) {
      this.stale();
      const watch = this.store.watchPrefix(this.prefix, {
        events: (evs) => this.watch === watch && this.onEvents(evs),
        reset: (ready) => this.watch === watch && this.lost(ready),
        connected: (up) => this.watch === watch && this.listener.connected(up),
      });
      this.watch = watch;
      try {
        await watch.ready;
      } catch (err) {
        this.watch = undefined;
        void watch.close();
        if (this.closed) return;
        this.listener.trouble(new EtcdUnavailableError(`watch of prefix '${this.prefix}'`, err));
        await this.sleep(backoff.duration);
        backoff = backoff.next(undefined);
        continue;
      }
      if (this.closed) {
        void watch.close();
        return;
      }
      this.listener.connected(true);
      // The watch is confirmed: a read issued now is covered by it (events after the
      // read's revision arrive on the watch, events up to it are skipped).
      this.resync();
      return;
    }
  }

  /** The view may have missed events: buffer from now on until a new snapshot arrives. */
  private stale(): Pending {
    const p: Pending = { epoch: ++this.epoch, buffer: [] };
    this.pending = p;
    return p;
  }

  /** The watch missed events: stale now; re-read once the new watch is confirmed. */
  private lost(ready: Promise<void>): void {
    const p = this.stale();
    void ready.then(() => this.read(p));
  }

  /** Reads a fresh snapshot (retrying until it works) and replays what arrived meanwhile. */
  private resync(): void {
    const p = this.stale();
    void this.read(p);
  }

  private async read(p: Pending): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    while (!this.closed && p.epoch === this.epoch) {
      try {
        const snap = await this.store.readPrefix(this.prefix, this.timeoutMs());
        if (this.closed || p.epoch !== this.epoch) return; // a newer re-read owns the view
        this.install(snap.queues, snap.control ?? new Map(), snap.revision, p.buffer);
        return;
      } catch (err) {
        if (this.closed || p.epoch !== this.epoch) return;
        this.listener.trouble(new EtcdUnavailableError(`read of prefix '${this.prefix}'`, err));
        await this.sleep(backoff.duration);
        backoff = backoff.next(undefined);
      }
    }
  }

  private install(queues: Map<string, Candidate[]>, control: Map<string, string>, revision: bigint, buffered: KeyEvent[][]): void {
    const changed = new Set<string>(this.queues.keys());
    const next = new Map<string, Queue>();
    for (const [name, cs] of queues) {
      next.set(name, new Queue(cs));
      changed.add(name);
    }
    this.queues = next;
    this.controls = control;
    this.revision = revision;
    this.pending = undefined;
    for (const evs of buffered) this.apply(evs, changed);
    for (const w of this.readyWaiters.splice(0)) w();
    this.listener.changed(changed, true);
    this.listener.control?.();
  }

  private onEvents(events: KeyEvent[]): void {
    if (this.pending) {
      this.pending.buffer.push(events);
      return;
    }
    const changed = new Set<string>();
    const control = this.apply(events, changed);
    if (changed.size > 0) this.listener.changed(changed, false);
    if (control) this.listener.control?.();
  }

  /** Applies one watch response whole; `revision` moves only after all its events. True if a control record changed. */
  private apply(events: readonly KeyEvent[], changed: Set<string>): boolean {
    const base = this.revision!;
    let top = base;
    let control = false;
    for (const ev of events) {
      // Already in the snapshot. Compared with the revision before this response, so
      // the other events of a revision are not skipped for sharing it.
      if (ev.modRevision <= base) continue;
      if (ev.modRevision > top) top = ev.modRevision;
      const name = nameOf(this.prefix, ev.key);
      if (name === undefined) {
        if (ev.key.startsWith(this.controlStart)) {
          if (ev.type === 'delete') this.controls.delete(ev.key);
          else this.controls.set(ev.key, ev.value);
          control = true;
        }
        continue;
      }
      let q = this.queues.get(name);
      if (!q) {
        if (ev.type === 'delete') continue;
        q = new Queue();
        this.queues.set(name, q);
      }
      if (q.apply(ev)) changed.add(name);
      if (q.size === 0) this.queues.delete(name);
    }
    this.revision = top;
    return control;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.retryTimer = this.clock.setTimeout(resolve, ms);
    });
  }
}
