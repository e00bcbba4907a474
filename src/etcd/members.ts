// The members of the etcd cluster, each with a client of its own, so that this process —
// not etcd3's random pick — chooses which member a keepalive, a campaign or the watch
// goes to. A sick member (cut off from its peers, frozen, slow) must cost no step-down:
// every call starts on the member that answered last and is hedged to the next one if it
// has not answered within a fraction of its time; whoever answers first becomes the
// preferred member, and the prefix watch follows it.
//
// Every call and stream carries etcd's `hasleader` metadata (what Go's clientv3 calls
// WithRequireLeader): a member that lost its raft leader refuses them at once, and cancels
// open streams, instead of answering nothing.
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import { Etcd3, type CallOptionsFactory, type IOptions } from 'etcd3';
import { countsAgainstMember } from './etcd3.js';
import { MemberStats, breakerState, type BreakerState } from './member-stats.js';

/** gRPC's interceptor shape, without a dependency on @grpc/grpc-js: add one metadata entry at call start. */
type NextCall = (options: unknown) => { start(metadata: { set(k: string, v: string): void }, listener: unknown, next?: unknown): void };
const requireLeader = (options: unknown, nextCall: NextCall): ReturnType<NextCall> => {
  const call = nextCall(options);
  const start = call.start.bind(call);
  call.start = (metadata, listener) => {
    metadata.set('hasleader', 'true');
    start(metadata, listener);
  };
  return call;
};

/** Adds the `hasleader` interceptor to the call options etcd3 builds for every call and stream. */
export function withRequireLeader(options: Omit<IOptions, 'hosts'>): Omit<IOptions, 'hosts'> {
  const user = options.defaultCallOptions;
  const factory: CallOptionsFactory = (context) => {
    const base = typeof user === 'function' ? user(context) : (user ?? {});
    const interceptors = [...((base as { interceptors?: unknown[] }).interceptors ?? []), requireLeader];
    return { ...base, interceptors } as ReturnType<Extract<CallOptionsFactory, (c: never) => unknown>>;
  };
  return { ...options, defaultCallOptions: factory };
}

export interface Member {
  readonly index: number;
  readonly endpoint: string;
  readonly client: Etcd3;
  /** What this host's calls to the member saw (member-stats.ts). */
  readonly stats: MemberStats;
  /** etcd3's circuit breaker for the member; undefined when its host policy is not a circuit breaker. */
  breaker(): BreakerState | undefined;
  /**
   * A second client for the member, made on first use, with neither breaker nor retries:
   * for polls of the member's own state (member-status.ts), which must ask even while the
   * breaker keeps calls off it, and must not open or hold it open for the election's calls;
   * and for keepalives, which no breaker may refuse (etcd-store.ts).
   */
  probe(): Etcd3;
}

/** etcd3's own per-host policy, built here when the options give none, so that its state can be read. */
const defaultHostPolicy = (): ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>> =>
  circuitBreaker(handleWhen(countsAgainstMember), { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(3) });

export class Members {
  readonly all: readonly Member[];
  /** The member that answered last: calls start there. */
  private preferred = 0;
  private readonly listeners = new Set<(m: Member) => void>();
  /** Probe clients made so far (closed with the members). */
  private readonly probes: Etcd3[] = [];

  constructor(hosts: readonly string[], options: Omit<IOptions, 'hosts'>) {
    this.all = hosts.map((endpoint, index) => {
      // etcd3 keeps the member's circuit breaker to itself: keep a reference to the policy
      // its host factory returns (called once per host, when the client is built).
      let policy: unknown;
      const factory = options.faultHandling?.host ?? defaultHostPolicy;
      const faultHandling = { ...options.faultHandling, host: (h: string) => (policy = factory(h)) as ReturnType<typeof factory> };
      const client = new Etcd3({ ...options, faultHandling, hosts: [endpoint] });
      let probe: Etcd3 | undefined;
      const makeProbe = (): Etcd3 => {
        probe = new Etcd3({ ...options, faultHandling: { ...options.faultHandling, host: () => noop, global: noop }, hosts: [endpoint] });
        this.probes.push(probe);
        return probe;
      };
      return { index, endpoint, client, stats: new MemberStats(), breaker: () => breakerState(policy), probe: () => probe ?? makeProbe() };
    });
  }

  /** Members to try, the preferred one first, then the others in a fixed rotation. */
  order(): Member[] {
    const n = this.all.length;
    return Array.from({ length: n }, (_, k) => this.all[(this.preferred + k) % n]!);
  }

  get current(): Member {
    return this.all[this.preferred]!;
  }

  /** Calls `fn` whenever the preferred member changes. */
  onChange(fn: (m: Member) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private answered(m: Member): void {
    if (m.index === this.preferred) return;
    this.preferred = m.index;
    for (const fn of [...this.listeners]) fn(m);
  }

  /**
   * Runs `op` on the preferred member; if it has not succeeded within `hedgeMs` (or
   * failed), also on the next member, and so on. Resolves with the first success (that
   * member becomes the preferred one); rejects when every member failed or `timeoutMs` passed.
   *
   * A preferred member that let the whole call time out without any answer — frozen, or
   * black-holed — stops being the preferred one: the next call starts on a member that
   * answered (even with an error such as "no leader" while the others elect a raft
   * leader), else on the next in the rotation. Without this, a call that is never hedged
   * (the lease grant) would go back to the frozen member attempt after attempt, and a
   * host that lost its session there could neither get a new lease nor revoke the old one
   * until the frozen member came back.
   */
  hedged<T>(op: (client: Etcd3, m: Member) => Promise<T>, hedgeMs: number, timeoutMs: number): Promise<T> {
    const order = this.order();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let started = 0;
      let lastError: unknown;
      /** Members whose call failed (a success ends the call). */
      const failed = new Set<Member>();
      const timers: ReturnType<typeof setTimeout>[] = [];
      const finish = (f: () => void): void => {
        if (done) return;
        done = true;
        for (const t of timers) clearTimeout(t);
        f();
      };
      const launch = (): void => {
        if (done || started >= order.length) return;
        const m = order[started++]!;
        m.stats.track(op(m.client, m)).then(
          (v) =>
            finish(() => {
              this.answered(m);
              resolve(v);
            }),
          (err: unknown) => {
            lastError = err;
            failed.add(m);
            if (failed.size === order.length) finish(() => reject(lastError));
            else launch(); // fail fast to the next member
          },
        );
        timers.push(setTimeout(launch, hedgeMs));
      };
      timers.push(
        setTimeout(
          () =>
            finish(() => {
              const first = order[0]!;
              if (order.length > 1 && first.index === this.preferred && !failed.has(first)) {
                this.answered(order.find((m) => failed.has(m)) ?? order[1]!);
              }
              reject(lastError ?? new Error(`no member answered within ${timeoutMs} ms`));
            }),
          timeoutMs,
        ),
      );
      launch();
    });
  }

  close(): void {
    for (const m of this.all) m.client.close();
    for (const p of this.probes.splice(0)) p.close();
  }
}
