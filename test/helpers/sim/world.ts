// The deterministic simulation: the real Locker / PrefixView / Singleton / Session /
// ReleaseGate code of several hosts, on one in-memory etcd, with virtual time and a
// seeded schedule of faults. Invariants are checked at every step that could break them.
import { Locker } from '../../../src/locker.js';
import type { Leadership, Singleton, SingletonFunction } from '../../../src/singleton.js';
import { EtcdModel, type Kv } from './etcd-model.js';
import { Scheduler, rng, type Chooser } from './scheduler.js';
import { SimStore } from './sim-store.js';

export interface WorldOptions {
  seed: number;
  hosts: number;
  names: number;
  /** Virtual ms of faults and operations; the run then heals and goes quiet for liveness. */
  horizonMs: number;
  ttl: number;
  /** Faults and operations in the horizon. */
  faults: number;
  /** Choice of the order among simultaneous events (default: seeded random). */
  chooser?: Chooser;
  /** Network latency range in ms (default [0, 15]). */
  latency?: [number, number];
  /** Probability that an applied request's answer is lost (default 0.02). */
  lossAfterApply?: number;
  /** Check that every name has a leader after the quiet period (default true). */
  liveness?: boolean;
  /** Instead of random registrations and faults: what this scenario does (exhaustive runs). */
  script?: (w: World) => void;
}

export interface Violation {
  at: number;
  what: string;
}

export interface WorldResult {
  seed: number;
  violations: Violation[];
  steps: number;
  faults: Record<string, number>;
  leaderships: number;
  /** Overlaps excused because the operator deleted the running leader's key, or it woke from a pause. */
  excused: number;
  trace: string[];
}

type FnKind = 'work' | 'quick' | 'fail' | 'remove';

interface Running {
  host: SimHost;
  name: string;
  key: string;
  token: string;
  lease: string;
  since: number;
}

export class SimHost {
  alive = true;
  closed = false;
  /** Virtual time of the last wake from a pause. */
  wokeAt = -Infinity;
  readonly runs = new Map<string, Running>();
  constructor(
    readonly id: string,
    readonly store: SimStore,
    readonly locker: Locker,
  ) {}
}

export const PREFIX = 'sim/';

export class World {
  readonly sched: Scheduler;
  readonly model: EtcdModel;
  readonly random: () => number;
  readonly hosts: SimHost[] = [];
  readonly violations: Violation[] = [];
  readonly trace: string[] = [];
  readonly faults: Record<string, number> = {};
  private readonly names: string[];
  /** Keys deleted by the operator: their leader may still run while the next one starts. */
  private readonly forced = new Set<string>();
  private leaderships = 0;
  /** Set when the faults end: nothing may break the network again. */
  private healed = false;
  private excused = 0;
  private failOnce = new Set<string>();
  private readonly stopDelayMaxMs: number;

  constructor(readonly opts: WorldOptions) {
    this.random = rng(opts.seed);
    const random = this.random;
    this.sched = new Scheduler(opts.chooser ?? { choose: (n) => Math.floor(random() * n) });
    this.model = new EtcdModel(() => this.sched.now);
    this.model.onDelete = (kvs, cause, rev) => {
      this.log(`etcd@${rev}: ${cause} deletes ${kvs.map((kv) => `${kv.key}@${kv.create}`).join(' ')}`);
      this.released(kvs, cause);
    };
    this.model.onPut = (kv) => this.log(`etcd@${kv.mod}: put ${kv.key} (${kv.value})`);
    this.names = Array.from({ length: opts.names }, (_, i) => `n${i}`);
    // fn honours its signal within this: less than the margin ttl − renewDeadline (ttl/3).
    this.stopDelayMaxMs = Math.floor((opts.ttl * 1000) / 3 / 2);
  }

  private log(line: string): void {
    this.trace.push(`${String(this.sched.now).padStart(6)} ${line}`);
    if (this.trace.length > 400) this.trace.shift();
  }

  private violate(what: string): void {
    this.violations.push({ at: this.sched.now, what });
    this.log(`VIOLATION ${what}`);
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }

  private addHost(i: number): SimHost {
    const id = `h${i}`;
    const store = new SimStore(id, this.model, this.sched, this.random, {
      latency: this.opts.latency ?? [0, 15],
      lossAfterApply: this.opts.lossAfterApply ?? 0.02,
    });
    // A closed loopback port: the etcd3 client of a simulated host is never used.
    const locker = new Locker(
      '127.0.0.1:9',
      { id, ttl: this.opts.ttl, prefix: PREFIX, handleSignals: false, clock: this.sched.clock(id), stopTimeout: this.opts.ttl },
      store,
    );
    locker.on('error', () => {});
    const h = new SimHost(id, store, locker);
    this.hosts.push(h);
    return h;
  }

  // ——— fn and its invariants ———

  private fnFor(h: SimHost, kind: FnKind): SingletonFunction {
    return (remove, l) => {
      this.fnStarted(h, l);
      const end = (): void => this.fnEnded(h, l.name, l.token);
      switch (kind) {
        case 'quick':
          end();
          return undefined;
        case 'fail':
          // Fails on its first run on each host, then works like 'work'.
          if (!this.failOnce.has(`${h.id}/${l.name}`)) {
            this.failOnce.add(`${h.id}/${l.name}`);
            return new Promise((_, reject) =>
              this.sched.after(
                Math.floor(this.random() * 200),
                () => {
                  end();
                  reject(new Error('fn failed on purpose'));
                },
                h.id,
              ),
            );
          }
          return this.work(h, l, end);
        case 'remove':
          this.sched.after(Math.floor(this.random() * 500), () => void remove(), h.id);
          return this.work(h, l, end);
        case 'work':
          return this.work(h, l, end);
      }
    };
  }

  /** Runs until the signal aborts, then needs a little longer to stop (less than the safety margin). */
  private work(h: SimHost, l: Leadership, end: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const stop = (): void => {
        this.sched.after(
          Math.floor(this.random() * this.stopDelayMaxMs),
          () => {
            end();
            resolve();
          },
          h.id,
        );
      };
      if (l.signal.aborted) stop();
      else l.signal.addEventListener('abort', stop, { once: true });
    });
  }

  private fnStarted(h: SimHost, l: Leadership): void {
    this.leaderships++;
    const head = this.model.head(`${PREFIX}${l.name}/`);
    const lease = leaseOfKey(l.key);
    this.log(`${h.id} starts ${l.name} token ${l.token}`);
    if (h.runs.has(l.name))
      this.violate(
        `${h.id} starts ${l.name} (token ${l.token}) while its previous run (token ${h.runs.get(l.name)!.token}) has not settled`,
      );
    // A key the operator deleted may still look first to its host (the delete is on its
    // way): that host starts, and stops as 'deposed' when the delete arrives.
    const mineForced = this.forced.has(`${l.key}@${l.token}`);
    if (!mineForced && (head?.key !== l.key || head.create.toString() !== l.token)) {
      const view = h.locker.view as unknown as { revision: bigint };
      this.violate(
        `${h.id} starts ${l.name} with key ${l.key}@${l.token}, but etcd's first key is ${head ? `${head.key}@${head.create}` : 'none'} ` +
          `(its view at ${view.revision}: ${h.locker.view
            .queue(l.name)
            .map((c) => `${c.key}@${c.createRevision}`)
            .join(' ')})`,
      );
    }
    for (const g of this.hosts) {
      const r = g.runs.get(l.name);
      if (!r || g === h || !g.alive || this.sched.paused.has(g.id)) continue;
      if (mineForced || this.forced.has(`${r.key}@${r.token}`) || this.sched.now - g.wokeAt <= this.stopDelayMaxMs + 50) {
        this.excused++;
        continue;
      }
      this.violate(`${h.id} starts ${l.name} (token ${l.token}) while ${g.id} runs it (token ${r.token}, since ${r.since})`);
    }
    h.runs.set(l.name, { host: h, name: l.name, key: l.key, token: l.token, lease, since: this.sched.now });
  }

  private fnEnded(h: SimHost, name: string, token: string): void {
    const r = h.runs.get(name);
    if (r?.token === token) h.runs.delete(name);
    this.log(`${h.id} fn of ${name} token ${token} settled`);
  }

  /** Keys left etcd: never by our own hand while fn runs on them. */
  private released(kvs: readonly Kv[], cause: string): void {
    for (const kv of kvs) {
      if (cause === 'operator') this.forced.add(`${kv.key}@${kv.create}`);
      for (const h of this.hosts) {
        for (const r of h.runs.values()) {
          if (r.key !== kv.key || r.token !== kv.create.toString()) continue;
          if (cause === 'operator') continue;
          if (!h.alive) continue;
          // A paused (or just woken) process cannot stop: expiry then is the price of the pause.
          if (cause === 'expiry' && (this.sched.paused.has(h.id) || this.sched.now - h.wokeAt <= this.stopDelayMaxMs + 50)) continue;
          this.violate(`${kv.key}@${kv.create} released by ${cause} while ${h.id}'s fn of ${r.name} still runs on it`);
        }
      }
    }
  }

  // ——— the run ———

  async run(): Promise<WorldResult> {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const realRandom = Math.random;
    // cockatiel's backoff jitter uses Math.random: make it part of the seed.
    Math.random = this.random;
    try {
      await this.play();
    } catch (err) {
      this.violate(`the simulation threw: ${(err as Error)?.stack ?? String(err)}`);
    } finally {
      Math.random = realRandom;
      process.off('unhandledRejection', onUnhandled);
    }
    for (const u of unhandled) this.violate(`unhandled rejection: ${(u as Error)?.stack ?? String(u)}`);
    return {
      seed: this.opts.seed,
      violations: this.violations,
      steps: this.sched.steps,
      faults: this.faults,
      leaderships: this.leaderships,
      excused: this.excused,
      trace: this.trace,
    };
  }

  private async play(): Promise<void> {
    const { ttl, horizonMs } = this.opts;
    // etcd's lessor sweep, every 500 ms.
    const sweep = (): void => {
      this.model.expire();
      this.sched.after(500, sweep);
    };
    this.sched.after(500, sweep);
    const kinds: FnKind[] = ['work', 'work', 'work', 'quick', 'fail', 'remove'];
    for (let i = 0; i < this.opts.hosts; i++) this.addHost(i);
    if (this.opts.script) {
      this.opts.script(this);
    } else {
      for (const h of this.hosts) {
        for (const name of this.names) {
          const kind = this.pick(kinds);
          this.sched.after(Math.floor(this.random() * 300), () => this.register(h, name, kind), h.id);
        }
      }
      // The faults and operations of this schedule, at random times in the horizon.
      for (let i = 0; i < this.opts.faults; i++) {
        const at = 500 + Math.floor(this.random() * horizonMs);
        this.sched.at(at, () => this.fault());
      }
    }
    await this.sched.run(horizonMs + 500);
    // Heal everything (for good: timers of earlier faults must not undo it), then a quiet period long enough for any lease to expire and every name to settle.
    this.healed = true;
    for (const h of this.hosts) {
      h.store.up = true;
      h.store.knobs.lossAfterApply = 0; // healthy: the quiet period judges liveness
      if (this.sched.paused.delete(h.id)) h.wokeAt = this.sched.now;
    }
    // Names removed on purpose come back, so every name has candidates again.
    for (const h of this.hosts) {
      if (!h.alive || h.closed) continue;
      for (const name of this.names) {
        if (!h.locker.singletons()[name]) this.register(h, name, 'work');
      }
    }
    // A failing fn fails once per host: its backoff is short.
    const quiet = 3 * ttl * 1000 + 3_000;
    await this.sched.run(this.sched.now + quiet);
    if (this.opts.liveness !== false) this.checkLiveness();
    // Close every host; after a TTL nothing of ours may be left in etcd or in the scheduler.
    for (const h of this.hosts) if (h.alive && !h.closed) void this.close(h);
    await this.sched.run(this.sched.now + (ttl + 2) * 1000);
    for (const h of this.hosts) {
      if (!h.alive) continue;
      if (h.runs.size > 0) this.violate(`${h.id} still runs ${[...h.runs.keys()].join(', ')} after close()`);
      const left = this.sched.pending(h.id);
      if (left > 0) this.violate(`${h.id} left ${left} timers behind after close()`);
    }
    if (this.model.kvs.size > 0) this.violate(`keys left in etcd after every host closed: ${[...this.model.kvs.keys()].join(', ')}`);
    if (this.model.leases.size > 0)
      this.violate(`leases left in etcd a TTL after every host closed: ${[...this.model.leases.keys()].join(', ')}`);
  }

  register(h: SimHost, name: string, kind: FnKind): void {
    if (!h.alive || h.closed || h.locker.singletons()[name]) return;
    try {
      const s = h.locker.register(name, this.fnFor(h, kind));
      s.on('stop', (reason, l) => this.log(`${h.id} stops ${name} token ${l.token}: ${reason}`));
      this.log(`${h.id} registers ${name} (${kind})`);
    } catch (err) {
      this.violate(`register ${name} on ${h.id} threw: ${(err as Error).message}`);
    }
  }

  private checkLiveness(): void {
    for (const name of this.names) {
      const leaders = this.hosts.filter((h) => h.alive && !h.closed && h.locker.singletons()[name]?.isLeader);
      const candidates = this.hosts.filter((h) => h.alive && !h.closed && h.locker.singletons()[name]);
      const idle = candidates.filter((h) => !['queued', 'leading'].includes((h.locker.singletons()[name] as Singleton).phase));
      if (candidates.length > 0 && (leaders.length !== 1 || idle.length > 0)) {
        const phases = candidates
          .map(
            (h) =>
              `${h.id}:${(h.locker.singletons()[name] as Singleton).phase}(lease ${h.locker.health().leaseId}, view ${h.locker.view.current ? 'current' : 'stale'}, ${h.locker.health().lastError})`,
          )
          .join(' ');
        const keys = this.model
          .range(`${PREFIX}${name}/`)
          .map((kv) => `${kv.key}@${kv.create}`)
          .join(' ');
        this.violate(
          `after the quiet period ${name} has ${leaders.length} leaders among ${candidates.length} registered hosts, ${idle.length} of them not queued (${phases}); etcd: ${keys || 'no keys'}`,
        );
      }
    }
  }

  private async close(h: SimHost): Promise<void> {
    h.closed = true;
    await h.locker.close();
  }

  private count(kind: string): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  /** Runs `fn` at virtual time `ms`. */
  at(ms: number, fn: () => void): void {
    this.sched.at(ms, fn);
  }

  /** The host's link goes dark for `ms` (a black-holed connection). */
  cut(h: SimHost, ms: number): void {
    this.count('blackhole');
    this.log(`fault: ${h.id} cut off for ${ms} ms`);
    h.store.up = false;
    this.sched.after(ms, () => (h.store.up = true));
    // (the heal sets up = true for good; a later timer only repeats it)
  }

  /** SIGSTOP for `ms`: nothing of the host runs meanwhile. */
  pause(h: SimHost, ms: number): void {
    if (this.sched.paused.has(h.id)) return;
    this.count('pause');
    this.log(`fault: ${h.id} paused for ${ms} ms`);
    this.sched.paused.add(h.id);
    this.sched.after(ms, () => {
      if (this.sched.paused.delete(h.id)) {
        h.wokeAt = this.sched.now;
        this.log(`${h.id} woke`);
      }
    });
  }

  /** SIGKILL: the process and its fns are gone at once; its lease expires by itself. */
  kill(h: SimHost): void {
    this.count('kill');
    this.log(`fault: ${h.id} killed`);
    h.alive = false;
    h.runs.clear();
    this.sched.drop(h.id);
    this.sched.paused.delete(h.id);
  }

  /** `etcdctl del --prefix`: one revision, many deletes. */
  deletePrefix(prefix: string): void {
    this.count(prefix === PREFIX ? 'del-prefix-all' : 'del-prefix-name');
    const n = this.model.deletePrefix(prefix);
    this.log(`fault: etcdctl del --prefix ${prefix} (${n} keys, one revision)`);
  }

  /** Compaction cancels the host's watch: undelivered events are lost. */
  cancelWatch(h: SimHost): void {
    this.count('watch-cancel');
    this.log(`fault: ${h.id}'s watch cancelled (compaction)`);
    this.model.compact();
    h.store.cancelWatch();
  }

  remove(h: SimHost, name: string, comeBackAfterMs?: number): void {
    const s = h.locker.singletons()[name];
    if (!s || !h.alive || h.closed) return;
    this.count('remove');
    this.log(`op: ${h.id} removes ${name}`);
    void s
      .remove()
      .then(() => comeBackAfterMs !== undefined && this.sched.after(comeBackAfterMs, () => this.register(h, name, 'work'), h.id));
  }

  closeHost(h: SimHost): void {
    if (!h.alive || h.closed) return;
    this.count('close');
    this.log(`op: ${h.id} closes`);
    void this.close(h);
  }

  /** A try-lock of a name (a pidlock-style user). */
  tryLock(h: SimHost, name: string): void {
    if (!h.alive || h.closed || h.locker.singletons()[name]) return;
    this.count('try-lock');
    this.log(`op: ${h.id} try-locks ${name}`);
    h.locker.tryLock(name, this.fnFor(h, 'remove')).then(
      (res) => this.log(`${h.id} try-lock ${name}: ${res.acquired ? 'acquired' : `taken by ${res.holder}`}`),
      (err: unknown) => this.log(`${h.id} try-lock ${name} failed: ${(err as Error).message}`),
    );
  }

  /** A critical section under `locker.lock()`, sometimes with a timeout. */
  lock(h: SimHost, name: string): void {
    if (!h.alive || h.closed || h.locker.singletons()[name]) return;
    this.count('lock');
    const timeout = this.random() < 0.5 ? Math.floor(this.random() * 2000) : undefined;
    this.log(`op: ${h.id} locks ${name}${timeout !== undefined ? ` (timeout ${timeout} ms)` : ''}`);
    const holdMs = Math.floor(this.random() * this.stopDelayMaxMs);
    h.locker
      .lock(
        name,
        (l) => {
          this.fnStarted(h, l);
          return new Promise<number>((resolve) =>
            this.sched.after(
              holdMs,
              () => {
                this.fnEnded(h, name, l.token);
                resolve(holdMs);
              },
              h.id,
            ),
          );
        },
        timeout !== undefined ? { timeout } : {},
      )
      .then(
        (v) => this.log(`${h.id} lock ${name} done (${v})`),
        (err: unknown) => this.log(`${h.id} lock ${name} failed: ${(err as Error).message}`),
      );
  }

  /** Answers to the host are lost (after being applied) with probability `p` for `ms`. */
  lossy(h: SimHost, p: number, ms: number): void {
    this.count('answer-loss');
    this.log(`fault: ${h.id} loses ${Math.round(p * 100)} % of answers for ${ms} ms`);
    h.store.knobs.lossAfterApply = p;
    this.sched.after(ms, () => (h.store.knobs.lossAfterApply = this.healed ? 0 : (this.opts.lossAfterApply ?? 0.02)));
  }

  /** One random fault or operator action. */
  private fault(): void {
    const live = this.hosts.filter((h) => h.alive && !h.closed);
    if (live.length === 0) return;
    const h = this.pick(live);
    const r = this.random();
    const ttlMs = this.opts.ttl * 1000;
    const name = this.pick(this.names);
    if (r < 0.16) this.cut(h, Math.floor(this.random() * 2 * ttlMs));
    else if (r < 0.3) this.pause(h, Math.floor(this.random() * 2 * ttlMs));
    else if (r < 0.38) this.kill(h);
    else if (r < 0.5) this.deletePrefix(this.random() < 0.3 ? PREFIX : `${PREFIX}${name}/`);
    else if (r < 0.6) this.cancelWatch(h);
    else if (r < 0.7) this.remove(h, name, Math.floor(this.random() * ttlMs));
    else if (r < 0.76) this.closeHost(h);
    else if (r < 0.84) this.tryLock(h, name);
    else if (r < 0.91) this.lock(h, name);
    else this.lossy(h, 0.7, 1000);
  }
}

/** Decimal lease id from the hex in an election key. */
function leaseOfKey(key: string): string {
  return BigInt(`0x${key.slice(key.lastIndexOf('/') + 1)}`).toString();
}
