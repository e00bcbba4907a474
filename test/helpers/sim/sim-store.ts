// One host's Store over the simulated network: every request and answer takes a
// random time, a cut link loses them (the caller times out), an answer can be lost
// after its request was applied, and the watch delivers in order, late, or — after a
// cancel — starts over at the current revision with a reset.
import type { KeyEvent } from '../../../src/core/queue.js';
import type { Candidate } from '../../../src/core/queue.js';
import type {
  CampaignRequest,
  CampaignResult,
  ControlStore,
  ControlWrite,
  FencedPut,
  KeyWatchHandle,
  PrefixSnapshot,
  PrefixWatchHandle,
  ResignRequest,
  StoredKey,
  WatchHandlers,
} from '../../../src/etcd/store.js';
import type { EtcdModel } from './etcd-model.js';
import type { Scheduler } from './scheduler.js';

export interface NetworkKnobs {
  /** One-way latency in ms: [min, max]. */
  latency: [number, number];
  /** Probability that an answer is lost after its request was applied. */
  lossAfterApply: number;
}

export class SimStore implements ControlStore {
  /** While false, nothing gets through (requests time out, watch events wait). */
  up = true;
  /** While true, keepalives alone get no answer (they sit on a frozen member; the rest goes elsewhere). */
  keepalivesDown = false;
  /** Answers of this many next campaign writes are lost after being applied. */
  loseCampaignAnswers = 0;
  private watchState:
    | {
        prefix: string;
        handlers: WatchHandlers;
        unwatch: (() => void) | undefined;
        queue: { at: number; epoch: number; evs: KeyEvent[] }[];
        pumping: boolean;
        epoch: number;
        closed: boolean;
        confirms: (() => void)[];
      }
    | undefined;

  constructor(
    private readonly host: string,
    private readonly model: EtcdModel,
    private readonly sched: Scheduler,
    private readonly random: () => number,
    readonly knobs: NetworkKnobs,
  ) {}

  private delay(): number {
    const [a, b] = this.knobs.latency;
    return a + Math.floor(this.random() * (b - a + 1));
  }

  /** A request applied at etcd after one delay, answered after another; lost if the link is down either way. */
  private call<T>(timeoutMs: number, apply: () => T, loseAnswer = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        timer.cancelled = true;
        f();
      };
      const timer = this.sched.after(
        timeoutMs,
        () => finish(() => reject(new Error(`deadline exceeded after ${timeoutMs} ms`))),
        this.host,
      );
      // The request travels (not owned by the host: a paused host's sent request still arrives).
      this.sched.after(this.delay(), () => {
        if (!this.up) return;
        let result: { ok: true; value: T } | { ok: false; err: unknown };
        try {
          result = { ok: true, value: apply() };
        } catch (err) {
          result = { ok: false, err };
        }
        if (loseAnswer || this.random() < this.knobs.lossAfterApply) return; // applied, answer lost
        this.sched.after(
          this.delay(),
          () => {
            if (!this.up) return;
            finish(() => (result.ok ? resolve(result.value) : reject(result.err)));
          },
          this.host,
        );
      });
    });
  }

  grant(ttl: number, timeoutMs: number): Promise<string> {
    return this.call(timeoutMs, () => this.model.grant(ttl));
  }

  keepAlive(leaseId: string, timeoutMs: number): Promise<number> {
    if (this.keepalivesDown)
      return new Promise((_, reject) =>
        this.sched.after(timeoutMs, () => reject(new Error(`keepalive: deadline exceeded after ${timeoutMs} ms`)), this.host),
      );
    return this.call(timeoutMs, () => this.model.keepAlive(leaseId));
  }

  revoke(leaseId: string, timeoutMs: number): Promise<void> {
    return this.call(timeoutMs, () => this.model.revoke(leaseId));
  }

  campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
    const lose = this.loseCampaignAnswers > 0;
    if (lose) this.loseCampaignAnswers--;
    return this.call(
      timeoutMs,
      () =>
        requests.map((r) => {
          try {
            const res = this.model.campaign(r.namePrefix, r.key, r.value, r.leaseId, r.tryOnly === true);
            const mine = res.candidates.find((c) => c.key === r.key);
            return { revision: res.revision, candidates: res.candidates, createRevision: mine?.createRevision };
          } catch (err) {
            return err as Error;
          }
        }),
      lose,
    );
  }

  resign(requests: readonly ResignRequest[], timeoutMs: number): Promise<void> {
    return this.call(timeoutMs, () => void this.model.resign(requests));
  }

  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot> {
    return this.call(timeoutMs, () => {
      const queues = new Map<string, { key: string; value: string; createRevision: bigint }[]>();
      const control = new Map<string, string>();
      for (const kv of this.model.range(prefix)) {
        const slash = kv.key.indexOf('/', prefix.length);
        if (slash === prefix.length) control.set(kv.key, kv.value);
        if (slash <= prefix.length) continue;
        const name = kv.key.slice(prefix.length, slash);
        const list = queues.get(name) ?? [];
        list.push({ key: kv.key, value: kv.value, createRevision: kv.create });
        queues.set(name, list);
      }
      return { revision: this.model.revision, queues, control };
    });
  }

  // ——— ControlStore ———

  put(key: string, value: string, leaseId: string | undefined, timeoutMs: number): Promise<bigint> {
    return this.call(timeoutMs, () => this.model.put(key, value, leaseId).mod);
  }

  remove(key: string, ifValue: string | undefined, timeoutMs: number): Promise<void> {
    return this.call(timeoutMs, () => void this.model.deleteKey(key, ifValue, 'control'));
  }

  writeControl(writes: readonly ControlWrite[], timeoutMs: number): Promise<void> {
    return this.call(timeoutMs, () => this.model.writeControl(writes));
  }

  get(key: string, timeoutMs: number): Promise<StoredKey | undefined> {
    return this.call(timeoutMs, () => {
      const kv = this.model.kvs.get(key);
      return kv ? { value: kv.value, createRevision: kv.create, modRevision: kv.mod } : undefined;
    });
  }

  readQueue(namePrefix: string, timeoutMs: number, leaderOnly = false): Promise<Candidate[]> {
    return this.call(timeoutMs, () => {
      const q = this.model.range(namePrefix).map((kv) => ({ key: kv.key, value: kv.value, createRevision: kv.create }));
      return leaderOnly ? q.slice(0, 1) : q;
    });
  }

  depose(key: string, createRevision: bigint, namePrefix: string, timeoutMs: number): Promise<Candidate[]> {
    return this.call(timeoutMs, () => this.model.depose(key, createRevision, namePrefix));
  }

  putFenced(w: FencedPut, timeoutMs: number): Promise<bigint | 'deposed' | 'conflict'> {
    return this.call(timeoutMs, () => this.model.putFenced(w.fence, w.key, w.value, w.modRevision, w.leaseId));
  }

  /** Puts of one key, in order, each after a delay; lost while the link is down (a watch that breaks only costs speed). */
  watchKey(key: string, onPut: (value: string) => void): KeyWatchHandle {
    let closed = false;
    let unwatch: (() => void) | undefined;
    let last = 0;
    const ready = this.call(2_000, () => {
      if (closed) return;
      unwatch = this.model.watch(key, this.model.revision + 1n, (evs) => {
        for (const e of evs) {
          if (e.key !== key || e.type !== 'put') continue;
          last = Math.max(last, this.sched.now + this.delay());
          const value = e.value;
          this.sched.at(last, () => !closed && this.up && onPut(value), this.host);
        }
      });
    });
    return {
      ready,
      close: async () => {
        closed = true;
        unwatch?.();
      },
    };
  }

  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle {
    const st = {
      prefix,
      handlers,
      unwatch: undefined as (() => void) | undefined,
      queue: [] as { at: number; epoch: number; evs: KeyEvent[] }[],
      pumping: false,
      epoch: 0,
      closed: false,
      confirms: [] as (() => void)[],
    };
    this.watchState = st;
    // etcd3 re-dials an unconfirmed watch stream after a while; 2 s stands for that here.
    const open = (): Promise<void> =>
      this.call(2_000, () => {
        // Created at the current revision: later events only.
        const epoch = ++st.epoch;
        st.unwatch = this.model.watch(prefix, this.model.revision + 1n, (evs) => this.deliver(st, epoch, evs));
      });
    const ready = open();
    return {
      ready,
      close: async () => {
        st.closed = true;
        st.unwatch?.();
      },
    };
  }

  /** Watch events reach the host in order, each response after a delay, held while the link is down. */
  private deliver(st: NonNullable<SimStore['watchState']>, epoch: number, evs: KeyEvent[]): void {
    st.queue.push({ at: this.sched.now + this.delay(), epoch, evs });
    if (!st.pumping) this.pump(st);
  }

  /** One item at a time, so responses of one stream are never reordered. */
  private pump(st: NonNullable<SimStore['watchState']>): void {
    const head = st.queue[0];
    if (!head || st.closed) {
      st.pumping = false;
      return;
    }
    st.pumping = true;
    this.sched.at(
      head.at,
      () => {
        if (st.closed) return;
        if (!this.up) return void this.sched.after(50, () => this.pump(st), this.host);
        st.queue.shift();
        if (head.epoch === st.epoch) st.handlers.events(head.evs);
        this.pump(st);
      },
      this.host,
    );
  }

  /**
   * etcd cancels the watch (its start revision was compacted): undelivered events are
   * lost; the host hears of it, and a new watch starts at the then current revision.
   */
  cancelWatch(): void {
    const st = this.watchState;
    // etcd can only cancel a watch it has created: one still being created is no fault
    // (cancelling it here let its late creation overtake the reopen, whose confirmation
    // then never came: a host waited on a re-read for ever, as no real watch does).
    if (!st || st.closed || !st.unwatch) return;
    st.unwatch?.();
    st.unwatch = undefined;
    const epoch = ++st.epoch; // the old stream's undelivered events are dropped
    const ready = new Promise<void>((r) => st.confirms.push(r));
    const reopen = (): void => {
      if (st.closed || epoch !== st.epoch) return;
      if (!this.up) return void this.sched.after(100, reopen);
      const e2 = ++st.epoch;
      st.unwatch = this.model.watch(st.prefix, this.model.revision + 1n, (evs) => this.deliver(st, e2, evs));
      // Confirms every reset still waiting (a second cancel may have overtaken the first).
      const waiting = st.confirms.splice(0);
      this.sched.after(this.delay(), () => waiting.forEach((c) => c()), this.host);
    };
    // The host hears of the cancel, then re-creates the watch (etcd-store does so from its
    // error handler): no event of the new stream can reach it before the reset. (Reopening
    // on a timer of its own let new events overtake the reset in the model: a view applied
    // them over the gap and judged a campaign on a queue missing a key.)
    this.sched.after(
      this.delay(),
      () => {
        if (st.closed) return;
        st.handlers.reset(ready);
        this.sched.after(this.delay(), reopen);
      },
      this.host,
    );
  }
}
