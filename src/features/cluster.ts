// Cluster view: follow the leader of a name from any host, list every name under the
// prefix, force a hand-over. None of it campaigns or needs a lease: it reads etcd.
import { EventEmitter } from 'node:events';
import { safeEmit } from '../core/emit.js';
import { EtcdUnavailableError, LockerClosedError, describe } from '../core/errors.js';
import { namePrefix, validateName } from '../etcd/keys.js';
import { wallTime, type Clock } from '../core/clock.js';
import type { PrefixView } from '../core/view.js';
import type { Candidate } from '../core/queue.js';
import type { ControlStore, PrefixSnapshot } from '../etcd/store.js';

/** What the cluster view needs of its locker. @internal */
export interface ClusterHost {
  readonly prefix: string;
  readonly store: ControlStore;
  readonly clock: Clock;
  readonly view: PrefixView;
  /** Aborted when the locker closes. */
  readonly closeSignal: AbortSignal;
  requestTimeoutMs(): number;
  report(err: Error): void;
  /** Calls `fn` whenever the view of `name` changed; returns the unsubscribe. */
  watchName(name: string, fn: () => void): () => void;
}

export interface NameStatus {
  name: string;
  /** Node id of the leader, or undefined. */
  leader: string | undefined;
  /** Fencing token (create revision, decimal string) of the leader's key. */
  token: string | undefined;
  /** Node ids in queue order, leader first. */
  candidates: string[];
}

/** The leader of one name as an observer sees it. */
export interface LeaderInfo {
  name: string;
  /** Node id of the leader, or undefined while nobody campaigns for the name. */
  leader: string | undefined;
  /** Fencing token (create revision of the leader's key, decimal string). */
  token: string | undefined;
  /** The leader's election key, `<prefix><name>/<lease hex>`. */
  key: string | undefined;
  /**
   * Wall-clock time (ms since epoch) at which this observer saw this leadership (or the
   * vacancy) begin — a few ms after it did. Undefined for the state found by the first
   * read: etcd keeps no timestamps, so how long that leader had been leading is unknown.
   */
  since: number | undefined;
}

export interface ObserverEvents {
  /** The leader changed (new key, or nobody). Also emitted once for the state found by the first read. */
  change: [info: LeaderInfo];
  /** etcd trouble; the observer keeps retrying. Without a listener it goes to the locker's `error`. */
  error: [error: Error];
  /** The observer ended: `close()` or the locker closed. */
  close: [];
}

/**
 * Leader changes of one name, from the locker's view of its prefix (the same view that
 * elects its own singletons: snapshot plus gap-free watch). Costs no etcd request of
 * its own and no lease.
 */
export class Observer extends EventEmitter<ObserverEvents> {
  private info: LeaderInfo | undefined;
  private ended = false;
  private closing: Promise<void> | undefined;
  private readyWaiters: { resolve(i: LeaderInfo): void; reject(e: Error): void }[] = [];
  private readonly unhook: () => void;

  /** @internal */
  constructor(
    private readonly core: ClusterHost,
    readonly name: string,
  ) {
    super();
    validateName(name);
    if (core.closeSignal.aborted) throw new LockerClosedError(`observe '${name}'`);
    const onClose = (): void => void this.close();
    core.closeSignal.addEventListener('abort', onClose, { once: true });
    const unwatch = core.watchName(name, () => this.update());
    this.unhook = () => {
      unwatch();
      core.closeSignal.removeEventListener('abort', onClose);
    };
    void core.view.ready().then(() => this.update());
  }

  /** The leader as last seen; undefined until the first read has answered. */
  get current(): LeaderInfo | undefined {
    return this.info;
  }

  /** True once the observer has ended. */
  get closed(): boolean {
    return this.ended;
  }

  /**
   * Resolves with the leader found by the first read (at once if that happened already).
   * That read is the locker's view, which trails etcd by the watch's delay.
   */
  ready(): Promise<LeaderInfo> {
    if (this.info) return Promise.resolve(this.info);
    if (this.ended) return Promise.reject(new LockerClosedError(`observe '${this.name}'`));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Stops watching. Idempotent; the locker's close() calls it too. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.ended = true;
      this.unhook();
      for (const w of this.readyWaiters.splice(0)) w.reject(new LockerClosedError(`observe '${this.name}'`));
      safeEmit(this, 'close', [], (e) => this.core.report(e instanceof Error ? e : new Error(describe(e))));
    })();
    return this.closing;
  }

  private update(): void {
    if (this.ended || !this.core.view.current) return;
    const first = this.info === undefined;
    const head = this.core.view.head(this.name);
    const token = head?.createRevision.toString();
    if (this.info && this.info.key === head?.key && this.info.token === token) return;
    const info: LeaderInfo = {
      name: this.name,
      leader: head?.value,
      token,
      key: head?.key,
      since: first ? undefined : wallTime(this.core.clock),
    };
    this.info = info;
    for (const w of this.readyWaiters.splice(0)) w.resolve(info);
    safeEmit(this, 'change', [info], (e) => this.core.report(e instanceof Error ? e : new Error(describe(e))));
  }
}

/** @internal */
export function observe(core: ClusterHost, name: string): Observer {
  return new Observer(core, name);
}

/** Every name under the prefix, read at one revision. */
/** @internal */
export async function clusterStatus(core: ClusterHost): Promise<NameStatus[]> {
  if (core.closeSignal.aborted) throw new LockerClosedError('read status');
  let snapshot: PrefixSnapshot;
  try {
    snapshot = await core.store.readPrefix(core.prefix, core.requestTimeoutMs());
  } catch (err) {
    throw new EtcdUnavailableError(`status read of prefix '${core.prefix}'`, err);
  }
  const out: NameStatus[] = [];
  for (const [name, cs] of snapshot.queues as Map<string, Candidate[]>) {
    out.push({ name, leader: cs[0]?.value, token: cs[0]?.createRevision.toString(), candidates: cs.map((c) => c.value) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Deletes the leader's key, guarded by its create revision so that only the leadership
 * that was read is deposed (never a newer one). The deposed host stops with reason
 * 'deposed' and queues again at the back. The same transaction reads the queue at the
 * revision of the delete, whose head is — by the protocol's definition — the new leader.
 *
 * Not graceful: the deposed leader and its successor learn of the delete from the same
 * watch event, so their work can overlap by the watch latency. Fence your writes.
 */
/** @internal */
export async function failover(core: ClusterHost, name: string): Promise<string | undefined> {
  validateName(name);
  if (core.closeSignal.aborted) throw new LockerClosedError(`fail over '${name}'`);
  const range = namePrefix(core.prefix, name);
  let head: Candidate | undefined;
  try {
    head = (await core.store.readQueue(range, core.requestTimeoutMs(), true))[0];
  } catch (err) {
    throw new EtcdUnavailableError(`read of the leader of '${name}'`, err);
  }
  if (!head) return undefined;
  let queue: Candidate[];
  try {
    // If that leadership ended by itself meanwhile, nothing is deleted: whoever leads now is the answer.
    queue = await core.store.depose(head.key, head.createRevision, range, core.requestTimeoutMs());
  } catch (err) {
    throw new EtcdUnavailableError(`failover of '${name}' (delete of ${head.key})`, err);
  }
  return queue[0]?.value;
}
