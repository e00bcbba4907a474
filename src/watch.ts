import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { keyEventOf } from './queue.js';
import type { PrefixWatchHandle, WatchHandlers } from './store.js';

/**
 * One watch for the whole prefix of a locker. etcd3 gives each watcher's manager one
 * gRPC stream and resumes from the last seen revision + 1 after a reconnect, so a
 * single watch is gap-free and costs one stream however many names are registered
 * (per-name watches would be 10,000 create requests queued one at a time).
 */
export class PrefixWatch implements PrefixWatchHandle {
  private watcher: Watcher | undefined;
  private closed = false;

  /** Resolves once etcd has confirmed the watch: every later read is covered by it. */
  readonly ready: Promise<void>;

  /** Starts watching at once; `close()` works even before etcd ever answered. */
  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private readonly handlers: WatchHandlers,
  ) {
    this.ready = this.open();
  }

  private async open(): Promise<void> {
    const watcher = this.client.watch().prefix(this.prefix).watcher();
    this.watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => {
      // One response holds whole revisions: hand them over together.
      if (this.watcher !== watcher || !res.events?.length) return;
      this.handlers.events(res.events.map(keyEventOf));
    });
    watcher.on('connected', () => this.watcher === watcher && this.handlers.connected(true));
    watcher.on('disconnected', () => this.watcher === watcher && this.handlers.connected(false));
    watcher.on('error', () => {
      // Non-recoverable for this watcher (e.g. its start revision was compacted while we
      // were away): the view goes stale at once; a fresh watch starts at the current
      // revision, and the view re-reads once etcd confirmed it.
      if (this.watcher !== watcher || this.closed) return;
      let confirmed!: () => void;
      this.handlers.reset(new Promise<void>((r) => (confirmed = r)));
      // etcd3 has already dropped a cancelled watcher (a cancel request for it would go to
      // an id etcd no longer knows), and a new one attached from inside its emit is lost:
      // start over on the next turn of the event loop.
      const reopen = (): void => {
        if (this.closed) return;
        this.open().then(confirmed, () => setTimeout(reopen, 500));
      };
      setImmediate(reopen);
    });
    await new Promise<void>((resolve, reject) => {
      watcher.once('connected', () => resolve());
      watcher.once('error', reject);
      watcher.once('end', () => reject(new Error('watch closed before etcd confirmed it')));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
  }
}
