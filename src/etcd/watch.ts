import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { WatchMoveReason } from '../core/diagnostics.js';
import type { Member, Members } from './members.js';
import { keyEventOf } from '../core/queue.js';
import type { PrefixWatchHandle, WatchHandlers } from './store.js';

/**
 * One watch for the whole prefix of a locker, on one member at a time. etcd3 resumes a
 * watcher from its last revision + 1 after a reconnect, so the stream is gap-free and
 * costs one stream however many names are registered.
 *
 * The watch follows the member that answers: when another member becomes the preferred
 * one (the watch's member stopped answering keepalives: frozen, cut off, slow), or the
 * stream drops and does not come back at once (a member without a raft leader cancels
 * `hasleader` streams), it moves — a new watcher on the other member from the last seen
 * revision + 1, so nothing is missed, and events seen twice are skipped by the view.
 *
 * A member can also fall behind while it still answers: cut off from its peers before it
 * noticed (or with its apply loop stuck), it keeps the stream open and sends nothing, and
 * keepalives forwarded through it may still succeed. So the watch checks its member's
 * freshness every `freshnessMs`: a serializable (member-local) read on it and on one other
 * member. If the watch's member does not answer within half a period, or is still below the
 * revision the other member had applied, after a short grace, the watch moves there.
 * A healthy member applies a committed revision within milliseconds; the cost is two
 * local reads per check, which touch no raft log.
 */
export class PrefixWatch implements PrefixWatchHandle {
  private watcher: Watcher | undefined;
  private member: Member;
  private closed = false;
  /** Highest revision a response of the current stream carried: where a moved watch resumes. */
  private lastRevision: bigint | undefined;
  private readonly unsubscribe: () => void;
  private moveTimer: ReturnType<typeof setTimeout> | undefined;
  private freshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Which other member the next freshness check compares with (rotates). */
  private probeTurn = 0;
  /** Moves made because the watch's member fell behind (for health and tests). */
  staleMoves = 0;

  /** Resolves once etcd has confirmed the watch: every later read is covered by it. */
  readonly ready: Promise<void>;

  /** Starts watching at once; `close()` works even before etcd ever answered. */
  constructor(
    private readonly members: Members,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly confirmMs: number,
    private readonly freshnessMs = 0,
    /** Told of every move, after it was made (diagnostics). */
    private readonly moved: (from: Member, to: Member, reason: WatchMoveReason, after: bigint) => void = () => {},
  ) {
    this.member = members.current;
    this.unsubscribe = members.onChange((m) => this.moveTo(m, 'preferred'));
    this.ready = this.open();
    this.scheduleCheck();
  }

  private scheduleCheck(): void {
    if (this.freshnessMs <= 0 || this.closed || this.members.all.length < 2) return;
    this.freshTimer = setTimeout(() => {
      this.freshTimer = undefined;
      void this.checkFreshness().finally(() => this.scheduleCheck());
    }, this.freshnessMs);
    this.freshTimer.unref?.();
  }

  /**
   * One freshness check (see the class comment). Reads the other member and the watch's
   * own at once; its own must answer within half a period (a member-local read takes
   * milliseconds), so a frozen member is left within 1.5 periods. A member below the other's
   * revision gets a grace of a quarter period to catch up (ordinary apply lag), then the
   * watch moves to the member that was ahead.
   */
  private async checkFreshness(): Promise<void> {
    const watched = this.member;
    if (this.lastRevision === undefined) return; // not confirmed yet: open() retries by itself
    const others = this.members.all.filter((m) => m !== watched);
    const other = others[this.probeTurn++ % others.length]!;
    const ownMs = Math.max(100, this.freshnessMs / 2);
    const [ahead, first] = await Promise.all([
      localRevision(other, this.prefix, this.freshnessMs).catch(() => undefined),
      localRevision(watched, this.prefix, ownMs).catch(() => undefined),
    ]);
    if (ahead === undefined || this.closed || this.member !== watched) return; // nothing to compare with
    let own = first;
    if (own !== undefined && own < ahead) {
      await new Promise((r) => setTimeout(r, Math.max(50, this.freshnessMs / 4)));
      own = await localRevision(watched, this.prefix, ownMs).catch(() => undefined);
    }
    if (this.closed || this.member !== watched) return;
    if (own === undefined || own < ahead) {
      this.staleMoves++;
      this.moveTo(other, own === undefined ? 'silent' : 'behind');
    }
  }

  private async open(): Promise<void> {
    const watcher = this.attach(this.member.client, undefined);
    await new Promise<void>((resolve, reject) => {
      // A member that accepts the connection but never answers (frozen) must not hold the
      // view up: the caller retries, on the member preferred by then.
      const timer = setTimeout(
        () => reject(new Error(`watch not confirmed by ${this.member.endpoint} within ${this.confirmMs} ms`)),
        this.confirmMs,
      );
      watcher.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
      watcher.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      watcher.once('end', () => {
        clearTimeout(timer);
        reject(new Error('watch closed before etcd confirmed it'));
      });
    });
  }

  private attach(client: Etcd3, from: bigint | undefined): Watcher {
    let builder = client.watch().prefix(this.prefix);
    if (from !== undefined) builder = builder.startRevision(from.toString());
    const watcher = builder.watcher();
    this.watcher = watcher;
    // Where this stream resumes — ours after a move, etcd3's own when it re-creates the
    // watcher on the same member after a dropped stream — must be a revision every event up
    // to which was delivered. etcd3 takes the header revision of every response, but the
    // created response of a resumed watch carries the member's current revision and comes
    // *before* the catch-up events (etcd sends those from its sync loop, and sends a long
    // catch-up in parts, each with the current revision): a move or drop right then would
    // skip them — a deposed leader that never hears of its key's delete. So etcd3's
    // bookkeeping is replaced on this watcher by `delivered` below.
    (watcher as unknown as { updateRevision(res: IWatchResponse): void }).updateRevision = (res) => {
      const through = delivered(res, watcher.request.start_revision);
      if (through === undefined) return;
      // Responses of one stream come in revision order: the resume point only grows.
      watcher.request.start_revision = (through + 1n).toString();
      if (this.watcher === watcher && (this.lastRevision === undefined || through > this.lastRevision)) this.lastRevision = through;
    };
    watcher.on('data', (res: IWatchResponse) => {
      if (this.watcher !== watcher) return;
      // One response holds whole revisions: hand them over together.
      if (res.events?.length) this.handlers.events(res.events.map(keyEventOf));
    });
    watcher.on('connected', () => {
      if (this.watcher !== watcher) return;
      if (this.moveTimer) clearTimeout(this.moveTimer);
      this.moveTimer = undefined;
      this.handlers.connected(true);
    });
    watcher.on('disconnected', () => {
      if (this.watcher !== watcher) return;
      this.handlers.connected(false);
      // etcd3 re-dials the same member; if that does not work at once, go elsewhere.
      if (this.moveTimer || this.closed) return;
      this.moveTimer = setTimeout(() => {
        this.moveTimer = undefined;
        if (this.watcher !== watcher || this.closed) return;
        const next = this.members.order().find((m) => m !== this.member);
        if (next) this.moveTo(next, 'dropped');
      }, 300);
    });
    watcher.on('error', () => {
      // Non-recoverable for this watcher (e.g. its start revision was compacted while we
      // were away): the view goes stale at once; a fresh watch starts at the current
      // revision, and the view re-reads once etcd confirmed it.
      if (this.watcher !== watcher || this.closed) return;
      this.lastRevision = undefined;
      let confirmed!: () => void;
      this.handlers.reset(new Promise<void>((r) => (confirmed = r)));
      // etcd3 has already dropped a cancelled watcher (a cancel request for it would go to
      // an id etcd no longer knows), and a new one attached from inside its emit is lost:
      // start over on the next turn of the event loop.
      const reopen = (): void => {
        if (this.closed) return;
        this.member = this.members.current;
        this.open().then(confirmed, () => setTimeout(reopen, 500));
      };
      setImmediate(reopen);
    });
    return watcher;
  }

  /** Moves the watch to `m`, resuming after the last revision seen. */
  private moveTo(m: Member, reason: WatchMoveReason): void {
    if (this.closed || m === this.member) return;
    const old = this.watcher;
    const from = this.member;
    this.member = m;
    // Before the first confirmation there is nothing to resume: open() retries on its own.
    if (!old || this.lastRevision === undefined) return;
    // Not awaited: the old member may never answer the cancel.
    void old.cancel().catch(() => {});
    this.attach(m.client, this.lastRevision + 1n);
    this.moved(from, m, reason, this.lastRevision);
  }

  /** The member the watch is on (for health and tests). */
  get endpoint(): string {
    return this.member.endpoint;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    if (this.moveTimer) clearTimeout(this.moveTimer);
    if (this.freshTimer) clearTimeout(this.freshTimer);
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
  }
}

/**
 * Up to which revision a watch response has certainly delivered every event, if it tells:
 * the created response of a watch that started at the current revision (no start revision
 * asked): its header revision; a response with events: the highest of their revisions; a
 * progress notification (no events; etcd sends them only to watchers that caught up): its
 * header revision. Not the created response of a resumed watch: its catch-up is still to come.
 */
function delivered(res: IWatchResponse, startRevision: unknown): bigint | undefined {
  if (res.created) return startRevision === undefined || startRevision === null ? BigInt(res.header.revision) : undefined;
  if (res.events?.length) return res.events.reduce((m, e) => (BigInt(e.kv.mod_revision) > m ? BigInt(e.kv.mod_revision) : m), 0n);
  return res.header?.revision !== undefined ? BigInt(res.header.revision) : undefined;
}

/**
 * The revision member `m` has applied, from a serializable read of one key (count only):
 * answered locally, without the raft leader — exactly what tells a stale member apart.
 * (With `hasleader`, a member that knows it lost its leader refuses: that counts as stale.)
 */
async function localRevision(m: Member, prefix: string, timeoutMs: number): Promise<bigint> {
  const res = await m.stats.track(
    m.client.kv.range({ key: Buffer.from(prefix), serializable: true, count_only: true }, { deadline: new Date(Date.now() + timeoutMs) }),
  );
  return BigInt(res.header.revision);
}
