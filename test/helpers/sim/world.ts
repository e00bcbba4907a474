// The deterministic simulation: the real Locker / PrefixView / Singleton / Session /
// ReleaseGate code of several hosts, on one in-memory etcd, with virtual time and a
// seeded schedule of faults. Invariants are checked at every step that could break them.
import { Locker } from '../../../src/api/locker.js';
import { isHandOverError, isHostNotFoundError } from '../../../src/core/errors.js';
import { controlPrefix, drainKey, hostKey, leaseHex } from '../../../src/etcd/keys.js';
import type { OnceContext, OnceOutcome } from '../../../src/features/once.js';
import type { Leadership, Singleton, SingletonFunction } from '../../../src/api/singleton.js';
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
  /** Most hosts alive at once after joins (default hosts + 1). */
  maxHosts?: number;
  /** Balancing on (as by default), its spread and the control records checked after the quiet period (default true). */
  balance?: boolean;
  /** `balance.respreadDelayMs` of every host (default 0). */
  respreadDelayMs?: number;
  /** The locker option `prefer` of every host, and `balance.preferHoldDownMs` (default 15 s). */
  prefer?: (name: string) => readonly string[] | undefined;
  preferHoldDownMs?: number;
  /** Check after the quiet period that every host leads ⌊N/H⌋..⌈N/H⌉ (default true; preferred hosts lead more). */
  checkSpread?: boolean;
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
  /** Singletons registered by `register` (queue mode: the ones balancing moves). */
  readonly queued = new Set<Singleton>();
  /** Run-once calls of this process not settled yet, by job. */
  readonly onceCalls = new Set<string>();
  constructor(
    /** Node id (the same for every incarnation of a restarted host). */
    readonly id: string,
    /** This incarnation (process): owner of its timers in the scheduler. */
    readonly owner: string,
    readonly store: SimStore,
    readonly locker: Locker,
  ) {}
}

/** What the checker knows of one run-once job. */
interface JobState {
  maxAttempts: number;
  /** Deletes of the job's record so far (an operator's): the rules restart after each. */
  deletes: number;
  /** Highest attempt started since the last delete. */
  lastAttempt: number;
  /** An outcome is recorded (since the last delete). */
  decided: boolean;
  /** The outcome callers got, per `deletes` generation. */
  outcomes: Map<number, string>;
  /** Runs under way: owner → token and attempt. */
  running: Map<string, { host: SimHost; token: string; attempt: number }>;
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
  /** `<name>@<token>` of election keys the operator deleted. */
  private readonly forcedTokens = new Set<string>();
  readonly jobs = new Map<string, JobState>();
  private nextHost = 0;

  constructor(readonly opts: WorldOptions) {
    this.random = rng(opts.seed);
    const random = this.random;
    this.sched = new Scheduler(opts.chooser ?? { choose: (n) => Math.floor(random() * n) });
    this.model = new EtcdModel(() => this.sched.now);
    this.model.onDelete = (kvs, cause, rev) => {
      this.log(`etcd@${rev}: ${cause} deletes ${kvs.map((kv) => `${kv.key}@${kv.create}`).join(' ')}`);
      this.released(kvs, cause);
    };
    this.model.onPut = (kv) => {
      this.log(`etcd@${kv.mod}: put ${kv.key} (${kv.value})`);
      // After the heal an operator undrains every host at once (a drain() still waiting for its view writes late).
      if (this.healed && kv.key.startsWith(drainKey(PREFIX, '')))
        this.sched.after(0, () => this.model.deleteKey(kv.key, kv.value, 'control'));
      const job = kv.key.startsWith(PREFIX) ? this.jobs.get(kv.key.slice(PREFIX.length)) : undefined;
      if (job && !/"status":"running"/.test(kv.value)) job.decided = true;
    };
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

  /** A new process with node id `id` (a new one by default; a crashed host's for a restart). */
  private addHost(id = `h${this.nextHost++}`): SimHost {
    const owner = `${id}#${this.hosts.filter((h) => h.id === id).length}`;
    const store = new SimStore(owner, this.model, this.sched, this.random, {
      latency: this.opts.latency ?? [0, 15],
      lossAfterApply: this.healed ? 0 : (this.opts.lossAfterApply ?? 0.02),
    });
    // A closed loopback port: the etcd3 client of a simulated host is never used (everything goes through the store).
    const locker = new Locker(
      '127.0.0.1:9',
      {
        id,
        ttl: this.opts.ttl,
        prefix: PREFIX,
        handleSignals: false,
        clock: this.sched.clock(owner),
        stopTimeoutMs: this.opts.ttl * 1000,
        balance:
          this.opts.balance === false
            ? false
            : {
                respreadDelayMs: this.opts.respreadDelayMs ?? 0,
                ...(this.opts.preferHoldDownMs !== undefined ? { preferHoldDownMs: this.opts.preferHoldDownMs } : {}),
              },
        ...(this.opts.prefer ? { prefer: this.opts.prefer } : {}),
      },
      store,
    );
    locker.on('error', () => {});
    const h = new SimHost(id, owner, store, locker);
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
                h.owner,
              ),
            );
          }
          return this.work(h, l, end);
        case 'remove':
          this.sched.after(Math.floor(this.random() * 500), () => void remove(), h.owner);
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
          h.owner,
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
      const view = h.locker.runtime.view as unknown as { revision: bigint };
      this.violate(
        `${h.id} starts ${l.name} with key ${l.key}@${l.token}, but etcd's first key is ${head ? `${head.key}@${head.create}` : 'none'} ` +
          `(its view at ${view.revision}: ${h.locker.runtime.view
            .queue(l.name)
            .map((c) => `${c.key}@${c.createRevision}`)
            .join(' ')})`,
      );
    }
    for (const g of this.hosts) {
      const r = g.runs.get(l.name);
      if (!r || g === h || !g.alive || this.sched.paused.has(g.owner)) continue;
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
      if (cause === 'operator' || cause === 'forced') {
        this.forced.add(`${kv.key}@${kv.create}`);
        const name = kv.key.slice(PREFIX.length, kv.key.lastIndexOf('/'));
        this.forcedTokens.add(`${name}@${kv.create}`);
      }
      const job = this.jobs.get(kv.key.slice(PREFIX.length));
      if (job) {
        job.deletes++;
        job.lastAttempt = 0;
        job.decided = false;
      }
      for (const h of this.hosts) {
        for (const r of h.runs.values()) {
          if (r.key !== kv.key || r.token !== kv.create.toString()) continue;
          if (cause === 'operator' || cause === 'forced') continue;
          if (!h.alive) continue;
          // A paused (or just woken) process cannot stop: expiry then is the price of the pause.
          if (cause === 'expiry' && (this.sched.paused.has(h.owner) || this.sched.now - h.wokeAt <= this.stopDelayMaxMs + 50)) continue;
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
    for (let i = 0; i < this.opts.hosts; i++) this.addHost();
    if (this.opts.script) {
      this.opts.script(this);
    } else {
      for (const h of this.hosts) this.registerAll(h, kinds, 300);
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
      if (this.sched.paused.delete(h.owner)) h.wokeAt = this.sched.now;
    }
    // Drain orders end, also those of drain() calls still on their way (see onPut), so every host takes its share.
    for (const kv of this.model.range(drainKey(PREFIX, ''))) this.model.deleteKey(kv.key, undefined, 'control');
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
    if (this.opts.liveness !== false && this.opts.balance !== false) this.checkPlacement();
    for (const h of this.hosts) {
      if (h.alive && !h.closed && h.onceCalls.size > 0)
        this.violate(`${h.id}'s runOnce of ${[...h.onceCalls].join(', ')} still waits after the quiet period`);
    }
    // A failover request has no lease: with no host left to sweep it after its requester died, it stays.
    const sweeper = this.hosts.some((h) => h.alive && !h.closed);
    // Close every host; after a TTL nothing of ours may be left in etcd or in the scheduler.
    for (const h of this.hosts) if (h.alive && !h.closed) void this.close(h);
    await this.sched.run(this.sched.now + (ttl + 2) * 1000);
    for (const h of this.hosts) {
      if (!h.alive) continue;
      if (h.runs.size > 0) this.violate(`${h.id} still runs ${[...h.runs.keys()].join(', ')} after close()`);
      const left = this.sched.pending(h.owner);
      if (left > 0) this.violate(`${h.id} left ${left} timers behind after close()`);
    }
    // Run-once records stay by design (until someone deletes them).
    const left = [...this.model.kvs.keys()].filter(
      (k) => !this.jobs.has(k.slice(PREFIX.length)) && (sweeper || !k.startsWith(`${controlPrefix(PREFIX)}move/`)),
    );
    if (left.length > 0) this.violate(`keys left in etcd after every host closed: ${left.join(', ')}`);
    if (this.model.leases.size > 0)
      this.violate(`leases left in etcd a TTL after every host closed: ${[...this.model.leases.keys()].join(', ')}`);
  }

  register(h: SimHost, name: string, kind: FnKind): void {
    if (!h.alive || h.closed || h.locker.singletons()[name]) return;
    try {
      const s = h.locker.register(name, this.fnFor(h, kind));
      h.queued.add(s);
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
              `${h.id}:${(h.locker.singletons()[name] as Singleton).phase}(lease ${h.locker.health().leaseId}, view ${h.locker.runtime.view.current ? 'current' : 'stale'}, ${h.locker.health().lastError})`,
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
    if (this.sched.paused.has(h.owner)) return;
    this.count('pause');
    this.log(`fault: ${h.id} paused for ${ms} ms`);
    this.sched.paused.add(h.owner);
    this.sched.after(ms, () => {
      if (this.sched.paused.delete(h.owner)) {
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
    this.sched.drop(h.owner);
    this.sched.paused.delete(h.owner);
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
      .then(() => comeBackAfterMs !== undefined && this.sched.after(comeBackAfterMs, () => this.register(h, name, 'work'), h.owner));
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
              h.owner,
            ),
          );
        },
        timeout !== undefined ? { timeoutMs: timeout } : {},
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

  // ——— hosts coming and going ———

  /** Registers every name on `h`, each at a random time within `withinMs`. */
  registerAll(h: SimHost, kinds: readonly FnKind[] = ['work'], withinMs = 0): void {
    for (const name of this.names) {
      const kind = this.pick(kinds);
      this.sched.after(Math.floor(this.random() * withinMs), () => this.register(h, name, kind), h.owner);
    }
  }

  /** A new host (a new node id) starts and registers every name. */
  join(): SimHost | undefined {
    const live = this.hosts.filter((h) => h.alive && !h.closed).length;
    if (live >= (this.opts.maxHosts ?? this.opts.hosts + 1)) return undefined;
    this.count('join');
    const h = this.addHost();
    this.log(`op: ${h.id} joins`);
    this.registerAll(h, ['work', 'work', 'quick'], 100);
    return h;
  }

  /** SIGKILL, then the same node id starts again after `downMs` (its old lease may still hold its keys). */
  crashRestart(h: SimHost, downMs: number): void {
    if (!h.alive || h.closed) return;
    this.count('crash-restart');
    this.kill(h);
    this.sched.after(downMs, () => {
      if (this.hosts.some((g) => g.id === h.id && g.alive && !g.closed)) return;
      const g = this.addHost(h.id);
      this.log(`op: ${g.id} restarts (${g.owner})`);
      this.registerAll(g, ['work'], 50);
    });
  }

  // ——— balancing: drain, undrain, targeted failover ———

  /** `locker.drain()` on `h` (or, with `of`, of another node id, as `locked drain` does). */
  drain(h: SimHost, of?: string): void {
    if (!h.alive || h.closed) return;
    this.count('drain');
    const id = of ?? h.id;
    this.log(`op: ${h.id} drains ${id}`);
    const t0 = this.sched.now;
    h.locker
      .drain({
        ...(of !== undefined ? { nodeId: of, force: true } : {}),
        onMove: (name, to) => this.log(`drain of ${id}: ${name} → ${to}`),
      })
      .then(
        () => this.log(`${h.id}: drain of ${id} done in ${this.sched.now - t0} ms`),
        (err: unknown) => this.log(`${h.id}: drain of ${id} failed: ${(err as Error).message}`),
      );
  }

  /** `locker.undrain({ nodeId })` from `h`. */
  undrain(h: SimHost, id: string): void {
    if (!h.alive || h.closed) return;
    this.count('undrain');
    this.log(`op: ${h.id} undrains ${id}`);
    h.locker.undrain({ nodeId: id, force: true }).then(
      () => this.log(`${h.id}: undrain of ${id} done`),
      (err: unknown) => this.log(`${h.id}: undrain of ${id} failed: ${(err as Error).message}`),
    );
  }

  /** `locker.failover(name, { to })` from `h` (graceful: the old fn settles before `to` starts). */
  failoverTo(h: SimHost, name: string, to: string | undefined): void {
    if (!h.alive || h.closed) return;
    this.count('failover');
    this.log(`op: ${h.id} fails ${name} over to ${to ?? 'the next in line'}`);
    h.locker.failover(name, { ...(to !== undefined ? { to } : {}), timeoutMs: 2 * this.opts.ttl * 1000 }).then(
      (leader) => {
        this.log(`${h.id}: failover of ${name} → ${leader ?? 'nobody'}`);
      },
      (err: unknown) => {
        const kind = isHandOverError(err) ? err.kind : isHostNotFoundError(err) ? 'host-not-found' : 'error';
        this.log(`${h.id}: failover of ${name} to ${to ?? 'next'} refused (${kind}): ${(err as Error).message}`);
      },
    );
  }

  /** An operator deletes a control record (`etcdctl del <prefix>/…`), or all of them. */
  deleteControl(key?: string): void {
    this.count('del-control');
    if (key === undefined) {
      const n = this.model.deletePrefix(controlPrefix(PREFIX));
      this.log(`fault: etcdctl del --prefix ${controlPrefix(PREFIX)} (${n} keys)`);
      return;
    }
    this.log(`fault: etcdctl del ${key}`);
    this.model.deleteKey(key, undefined, 'operator');
  }

  // ——— run-once jobs ———

  /** `locker.runOnce(job, fn)` on `h`; fn runs a while, fails sometimes, honours its signal. */
  runOnce(h: SimHost, job: string, maxAttempts: number): void {
    if (!h.alive || h.closed || h.onceCalls.has(job) || h.locker.singletons()[job]) return;
    let st = this.jobs.get(job);
    if (!st) {
      st = { maxAttempts, deletes: 0, lastAttempt: 0, decided: false, outcomes: new Map(), running: new Map() };
      this.jobs.set(job, st);
    }
    const state = st;
    this.count('run-once');
    this.log(`op: ${h.id} runs once ${job}`);
    h.onceCalls.add(job);
    const deletesAtCall = state.deletes;
    const settled = (): void => void h.onceCalls.delete(job);
    h.locker
      .runOnce(job, (ctx) => this.onceRun(h, job, ctx), { maxAttempts: state.maxAttempts })
      .then(
        (o: OnceOutcome) => {
          settled();
          const got = `${o.status} after ${o.attempts} by ${o.by}`;
          this.log(`${h.id}: once ${job}: ${got}`);
          if (!h.alive) return;
          if (o.attempts > state.maxAttempts)
            this.violate(`once ${job}: outcome after ${o.attempts} attempts, more than ${state.maxAttempts}`);
          if (state.deletes !== deletesAtCall) return; // the record was deleted meanwhile: a new job
          const before = state.outcomes.get(state.deletes);
          if (before === undefined) state.outcomes.set(state.deletes, got);
          else if (before !== got) this.violate(`once ${job}: ${h.id} got '${got}', another caller '${before}'`);
        },
        (err: unknown) => {
          settled();
          this.log(`${h.id}: once ${job} rejected: ${(err as Error).message}`);
        },
      );
  }

  private onceRun(h: SimHost, job: string, ctx: OnceContext): Promise<void> {
    const st = this.jobs.get(job)!;
    this.log(`${h.id} starts once ${job} attempt ${ctx.attempt} token ${ctx.token}`);
    if (ctx.signal.aborted) this.violate(`once ${job}: attempt ${ctx.attempt} began on ${h.id} on a leadership that had ended`);
    if (ctx.attempt > st.maxAttempts) this.violate(`once ${job}: attempt ${ctx.attempt} of at most ${st.maxAttempts}`);
    const forced = (token: string): boolean => this.forcedTokens.has(`${job}@${token}`);
    // Only this run can have written the record since its claim, unless the operator deleted or
    // changed it: then the claim belongs to an earlier generation of the job, which the rules
    // below (they restart at each delete) do not judge.
    const own = this.model.kvs.get(`${PREFIX}${job}`)?.value.includes(`"token":"${ctx.token}"`) === true;
    if (own && ctx.attempt <= st.lastAttempt && !forced(ctx.token))
      this.violate(`once ${job}: attempt ${ctx.attempt} on ${h.id} after attempt ${st.lastAttempt} (attempts must grow)`);
    if (own && st.decided && !forced(ctx.token))
      this.violate(`once ${job}: attempt ${ctx.attempt} began on ${h.id} after an outcome was recorded`);
    for (const r of st.running.values()) {
      const g = r.host;
      if (g === h || !g.alive || this.sched.paused.has(g.owner)) continue;
      if (forced(ctx.token) || forced(r.token) || this.sched.now - g.wokeAt <= this.stopDelayMaxMs + 50) {
        this.excused++;
        continue;
      }
      this.violate(`once ${job}: ${h.id} starts attempt ${ctx.attempt} while ${g.id} runs attempt ${r.attempt}`);
    }
    // A run whose key the operator deleted claimed its attempt before (maybe before the record's delete too).
    if (own && !forced(ctx.token)) st.lastAttempt = Math.max(st.lastAttempt, ctx.attempt);
    st.running.set(h.owner, { host: h, token: ctx.token, attempt: ctx.attempt });
    const fails = this.random() < 0.3;
    const ms = Math.floor(this.random() * 400);
    return new Promise<void>((resolve, reject) => {
      let ended = false;
      const end = (ok: boolean, why: string): void => {
        if (ended) return;
        ended = true;
        if (st.running.get(h.owner)?.token === ctx.token) st.running.delete(h.owner);
        this.log(`${h.id} once ${job} attempt ${ctx.attempt} ends: ${why}`);
        if (ok) resolve();
        else reject(new Error(why));
      };
      const t = this.sched.after(ms, () => end(!fails, fails ? 'failed on purpose' : 'done'), h.owner);
      ctx.signal.addEventListener(
        'abort',
        () => {
          t.cancelled = true;
          this.sched.after(Math.floor(this.random() * this.stopDelayMaxMs), () => end(false, 'aborted'), h.owner);
        },
        { once: true },
      );
    });
  }

  // ——— after the quiet period ———

  /**
   * With every live host on every name: each leads ⌊N/H⌋..⌈N/H⌉ of them (docs/balancing.md),
   * and no control record is orphaned: only the live hosts' records, each naming its lease.
   */
  private checkPlacement(): void {
    const live = this.hosts.filter((h) => h.alive && !h.closed);
    if (live.length === 0) return;
    const everywhere = live.every((h) =>
      this.names.every((n) => {
        const s = h.locker.singletons()[n];
        return s !== undefined && h.queued.has(s);
      }),
    );
    if (everywhere && this.opts.checkSpread !== false) {
      const lo = Math.floor(this.names.length / live.length);
      const hi = Math.ceil(this.names.length / live.length);
      const loads = live.map((h) => [h.id, this.names.filter((n) => h.locker.singletons()[n]?.isLeader).length] as const);
      if (loads.some(([, n]) => n < lo || n > hi))
        this.violate(
          `after the quiet period the leaderships are not spread ${lo}..${hi}: ${loads.map(([id, n]) => `${id} ${n}`).join(', ')}`,
        );
    }
    for (const kv of this.model.range(controlPrefix(PREFIX))) {
      const h = live.find((g) => kv.key === hostKey(PREFIX, g.id));
      const lease = h?.locker.health().leaseId;
      if (h && lease !== undefined && kv.value.includes(`"${leaseHex(lease)}"`)) continue;
      if (kv.key.startsWith(drainKey(PREFIX, ''))) continue; // undrained at the heal; checked by the spread
      this.violate(`after the quiet period a control record is orphaned: ${kv.key} = ${kv.value}`);
    }
  }

  /** One random fault or operator action. */
  private fault(): void {
    const live = this.hosts.filter((h) => h.alive && !h.closed);
    if (live.length === 0) return void this.join();
    const h = this.pick(live);
    const other = this.pick(live);
    const r = this.random();
    const ttlMs = this.opts.ttl * 1000;
    const name = this.pick(this.names);
    if (r < 0.11) this.cut(h, Math.floor(this.random() * 2 * ttlMs));
    else if (r < 0.2) this.pause(h, Math.floor(this.random() * 2 * ttlMs));
    else if (r < 0.24) this.kill(h);
    else if (r < 0.3) this.crashRestart(h, Math.floor(this.random() * 2 * ttlMs));
    else if (r < 0.37) this.deletePrefix(this.random() < 0.3 ? PREFIX : `${PREFIX}${name}/`);
    else if (r < 0.42) this.cancelWatch(h);
    else if (r < 0.47) this.remove(h, name, Math.floor(this.random() * ttlMs));
    else if (r < 0.5) this.closeHost(h);
    else if (r < 0.54) this.tryLock(h, name);
    else if (r < 0.58) this.lock(h, name);
    else if (r < 0.62) this.lossy(h, 0.7, 1000);
    else if (r < 0.68) this.join();
    else if (r < 0.74) this.drain(h, this.random() < 0.3 ? other.id : undefined);
    else if (r < 0.79) this.undrain(h, this.random() < 0.5 ? h.id : other.id);
    else if (r < 0.87) this.failoverTo(h, name, this.random() < 0.8 ? other.id : undefined);
    else if (r < 0.95) {
      const job = this.pick(['j0', 'j1']);
      for (const g of live) if (g === h || this.random() < 0.5) this.runOnce(g, job, job === 'j0' ? 2 : 3);
    } else {
      const keys = this.model.range(controlPrefix(PREFIX)).map((kv) => kv.key);
      const records = [...this.jobs.keys()].map((j) => `${PREFIX}${j}`).filter((k) => this.model.kvs.has(k));
      const all = [...keys, ...records];
      this.deleteControl(all.length === 0 || this.random() < 0.15 ? undefined : this.pick(all));
    }
  }
}

/** Decimal lease id from the hex in an election key. */
function leaseOfKey(key: string): string {
  return BigInt(`0x${key.slice(key.lastIndexOf('/') + 1)}`).toString();
}
