// Cluster view: follow the leader of a name from any host, list every name under the
// prefix, force a hand-over. None of it campaigns or needs a lease: it reads etcd.
import { EventEmitter } from 'node:events';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { IRangeResponse, IWatchResponse, Watcher } from 'etcd3';
import { EtcdUnavailableError, LockerClosedError, describe } from './errors.js';
import { namePrefix, validateName } from './keys.js';
import { nameRange, readLeader, readPrefix, type PrefixSnapshot } from './reads.js';
import type { LockerCore } from './locker.js';
import { Queue, byCreate, candidateOf, keyEventOf, type Candidate } from './queue.js';

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
 * Leader changes of one name, read from etcd: a range read at revision R, then a watch
 * from R + 1, so no change between the two is missed. Costs one watcher on the
 * locker's client (etcd3 multiplexes them on one stream) and no lease.
 */
export class Observer extends EventEmitter<ObserverEvents> {
  private readonly queue = new Queue();
  private watcher: Watcher | undefined;
  private info: LeaderInfo | undefined;
  private ended = false;
  private closing: Promise<void> | undefined;
  private readyWaiters: { resolve(i: LeaderInfo): void; reject(e: Error): void }[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 5_000 }).next();
  private readonly unhook: () => void;

  constructor(
    private readonly core: LockerCore,
    readonly name: string,
  ) {
    super();
    validateName(name);
    if (core.closeSignal.aborted) throw new LockerClosedError(`observe '${name}'`);
    const onClose = (): void => void this.close();
    core.closeSignal.addEventListener('abort', onClose, { once: true });
    this.unhook = () => core.closeSignal.removeEventListener('abort', onClose);
    void this.connect();
  }

  /** The leader as last seen; undefined until the first read has answered. */
  get current(): LeaderInfo | undefined {
    return this.info;
  }

  /** True once the observer has ended. */
  get closed(): boolean {
    return this.ended;
  }

  /** Resolves with the leader found by the first read (at once if that happened already). */
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
      if (this.retryTimer) clearTimeout(this.retryTimer);
      for (const w of this.readyWaiters.splice(0)) w.reject(new LockerClosedError(`observe '${this.name}'`));
      const w = this.watcher;
      this.watcher = undefined;
      // A cancel that etcd does not answer (unreachable) must not hold close() up.
      if (w) await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500).unref())]);
      this.emit('close');
    })();
    return this.closing;
  }

  private async connect(): Promise<void> {
    if (this.ended) return;
    const p = namePrefix(this.core.prefix, this.name);
    let res: IRangeResponse;
    try {
      res = await this.core.client.kv.range(
        nameRange(this.core.prefix, this.name),
        { deadline: new Date(Date.now() + this.core.requestTimeoutMs()) },
      );
    } catch (err) {
      this.retry(new EtcdUnavailableError(`read of '${this.name}' for observe`, err));
      return;
    }
    if (this.ended) return;
    const revision = BigInt(res.header.revision);
    this.queue.invalidate();
    this.queue.reset(res.kvs.map(candidateOf), revision);
    this.update(this.info === undefined);
    // From R + 1: every change after the read, none before it twice. etcd3 resumes a
    // reconnecting watcher from its last revision + 1, so the stream stays gap-free.
    const w = this.core.client.watch().prefix(p).startRevision((revision + 1n).toString()).watcher();
    this.watcher = w;
    w.on('data', (r: IWatchResponse) => {
      if (this.watcher !== w || !r.events?.length) return;
      let changed = false;
      for (const ev of r.events) changed = this.queue.apply(keyEventOf(ev)) || changed;
      if (changed) this.update(false);
    });
    w.on('error', (err: unknown) => {
      // Fatal for this watcher, e.g. R + 1 was compacted while we were away: read again.
      if (this.watcher !== w || this.ended) return;
      this.watcher = undefined;
      void w.cancel().catch(() => {});
      this.retry(new EtcdUnavailableError(`watch of '${this.name}' for observe`, err));
    });
    this.backoff = new ExponentialBackoff({ initialDelay: 100, maxDelay: 5_000 }).next();
  }

  private retry(err: Error): void {
    if (this.ended) return;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.core.report(err);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, this.backoff.duration);
    this.backoff = this.backoff.next(undefined);
  }

  private update(first: boolean): void {
    const head = this.queue.head();
    const token = head?.createRevision.toString();
    if (this.info && this.info.key === head?.key && this.info.token === token) return;
    const info: LeaderInfo = { name: this.name, leader: head?.value, token, key: head?.key, since: first ? undefined : Date.now() };
    this.info = info;
    for (const w of this.readyWaiters.splice(0)) w.resolve(info);
    try {
      this.emit('change', info);
    } catch (e) {
      this.core.report(e instanceof Error ? e : new Error(describe(e)));
    }
  }
}

export function observe(core: LockerCore, name: string): Observer {
  return new Observer(core, name);
}

/** Every name under the prefix, read at one revision. */
export async function clusterStatus(core: LockerCore): Promise<NameStatus[]> {
  if (core.closeSignal.aborted) throw new LockerClosedError('read status');
  let snapshot: PrefixSnapshot;
  try {
    snapshot = await readPrefix(core.client, core.prefix, core.requestTimeoutMs());
  } catch (err) {
    throw new EtcdUnavailableError(`status read of prefix '${core.prefix}'`, err);
  }
  const out: NameStatus[] = [];
  for (const [name, cs] of snapshot.queues) {
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
export async function failover(core: LockerCore, name: string): Promise<string | undefined> {
  validateName(name);
  if (core.closeSignal.aborted) throw new LockerClosedError(`fail over '${name}'`);
  const range = nameRange(core.prefix, name);
  const deadline = (): { deadline: Date } => ({ deadline: new Date(Date.now() + core.requestTimeoutMs()) });
  let head: Candidate | undefined;
  try {
    head = await readLeader(core.client, core.prefix, name, core.requestTimeoutMs());
  } catch (err) {
    throw new EtcdUnavailableError(`read of the leader of '${name}'`, err);
  }
  if (!head) return undefined;
  const key = Buffer.from(head.key);
  let queue: Candidate[];
  try {
    const res = await core.client.kv.txn(
      {
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: head.createRevision.toString() }],
        success: [{ request_delete_range: { key } }, { request_range: range }],
        failure: [{ request_range: range }],
      },
      deadline(),
    );
    // On failure that leadership ended by itself meanwhile: whoever leads now is the answer.
    const read = res.responses[res.succeeded ? 1 : 0]?.response_range;
    queue = (read?.kvs ?? []).map(candidateOf).sort(byCreate);
  } catch (err) {
    throw new EtcdUnavailableError(`failover of '${name}' (delete of ${head.key})`, err);
  }
  return queue[0]?.value;
}
