import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { Member, Members } from './members.js';
import { keyEventOf } from './queue.js';
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
 */
export class PrefixWatch implements PrefixWatchHandle {
  private watcher: Watcher | undefined;
  private member: Member;
  private closed = false;
  /** Highest revision a response of the current stream carried: where a moved watch resumes. */
  private lastRevision: bigint | undefined;
  private readonly unsubscribe: () => void;
  private moveTimer: ReturnType<typeof setTimeout> | undefined;

  /** Resolves once etcd has confirmed the watch: every later read is covered by it. */
  readonly ready: Promise<void>;

  /** Starts watching at once; `close()` works even before etcd ever answered. */
  constructor(
    private readonly members: Members,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
    private readonly confirmMs: number,
  ) {
    this.member = members.current;
    this.unsubscribe = members.onChange((m) => this.moveTo(m));
    this.ready = this.open();
  }

  private async open(): Promise<void> {
    const watcher = this.attach(this.member.client, undefined);
    await new Promise<void>((resolve, reject) => {
      // A member that accepts the connection but never answers (frozen) must not hold the
      // view up: the caller retries, on the member preferred by then.
      const timer = setTimeout(() => reject(new Error(`watch not confirmed by ${this.member.endpoint} within ${this.confirmMs} ms`)), this.confirmMs);
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
    const seen = (rev: string | undefined): void => {
      if (rev === undefined) return;
      const r = BigInt(rev);
      if (this.lastRevision === undefined || r > this.lastRevision) this.lastRevision = r;
    };
    watcher.on('data', (res: IWatchResponse) => {
      if (this.watcher !== watcher) return;
      seen(res.header?.revision);
      // One response holds whole revisions: hand them over together.
      if (res.events?.length) this.handlers.events(res.events.map(keyEventOf));
    });
    watcher.on('connected', (res: { header?: { revision?: string } }) => {
      if (this.watcher !== watcher) return;
      seen(res?.header?.revision);
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
        if (next) this.moveTo(next);
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
  private moveTo(m: Member): void {
    if (this.closed || m === this.member) return;
    const old = this.watcher;
    this.member = m;
    // Before the first confirmation there is nothing to resume: open() retries on its own.
    if (!old || this.lastRevision === undefined) return;
    // Not awaited: the old member may never answer the cancel.
    void old.cancel().catch(() => {});
    this.attach(m.client, this.lastRevision + 1n);
  }

  /** The member the watch is on (for health and tests). */
  get endpoint(): string {
    return this.member.endpoint;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    if (this.moveTimer) clearTimeout(this.moveTimer);
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
  }
}
