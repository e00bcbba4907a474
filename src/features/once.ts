// Run-once jobs: every host calls `locker.once(name, fn)`; one host at a time runs fn,
// until one attempt succeeds or `maxAttempts` attempts were made, and every caller
// settles with the outcome recorded in etcd.
//
// It is the ordinary election of `name` plus a record at `<prefix><name>` (no trailing
// slash: outside the candidate range `<prefix><name>/`, so it never joins the queue).
// Only the elected host writes the record, and every write is a transaction fenced by
// its leadership token and by the record's mod revision. So an attempt is counted
// before it starts (a host killed mid-run has used its attempt), counts never race,
// and a paused old runner can neither start an extra attempt nor record a stale
// outcome: its key is gone before the next runner is elected.
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { sleep, type Clock } from '../core/clock.js';
import { EtcdUnavailableError, LockerClosedError, NotLeaderError, describe, describeValue } from '../core/errors.js';
import { validateName } from '../etcd/keys.js';
import type { Leadership, SingletonFunction } from '../core/leadership-types.js';
import type { ControlStore, KeyWatchHandle, StoredKey } from '../etcd/store.js';

/** What fn gets for one attempt. */
export interface OnceContext {
  /** Aborted (with a NotLeaderError) when this host stops leading the name: stop the work. */
  signal: AbortSignal;
  /** Fencing token of this attempt's leadership (create revision, decimal string). */
  token: string;
  /** 1 for the first attempt, cluster-wide. */
  attempt: number;
  /** An etcd transaction guarded by this attempt's leadership, for your own writes (see `Leadership.fence`). */
  fence(): ReturnType<Leadership['fence']>;
}

export type OnceFunction = (ctx: OnceContext) => unknown;

export interface OnceOutcome {
  status: 'done' | 'failed';
  /** Attempts made, cluster-wide. */
  attempts: number;
  /** Node id of the host that ran the last attempt. */
  by: string;
}

/** The value stored at `<prefix><name>` (JSON). */
interface OnceRecord {
  status: 'running' | 'done' | 'failed';
  attempts: number;
  maxAttempts: number;
  /** Node id of the runner of attempt `attempts`. */
  by: string;
  /** Token of the leadership that wrote this record. */
  token: string;
}

interface Claim extends OnceRecord {
  /** Mod revision of our 'running' record: the outcome write is guarded by it. */
  modRevision: bigint;
}

export const DEFAULT_MAX_ATTEMPTS = 3;

interface ResolvedOnceOptions {
  maxAttempts: number;
  recordTtl: number | undefined;
  signal: AbortSignal | undefined;
}

/** The options a job takes, checked here again (the public OnceOptions is one). */
type RunOptions = Partial<ResolvedOnceOptions>;

function resolveOnceOptions(options: unknown): ResolvedOnceOptions {
  if (options === undefined) return { maxAttempts: DEFAULT_MAX_ATTEMPTS, recordTtl: undefined, signal: undefined };
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`once options must be an object, got ${describeValue(options)}`);
  }
  const o = options as RunOptions;
  const maxAttempts = o.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (typeof maxAttempts !== 'number' || !Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`options.maxAttempts must be a whole number ≥ 1, got ${describeValue(o.maxAttempts)}`);
  }
  const recordTtl = o.recordTtl;
  if (recordTtl !== undefined && (typeof recordTtl !== 'number' || !Number.isInteger(recordTtl) || recordTtl < 1)) {
    throw new RangeError(`options.recordTtl must be a whole number of seconds ≥ 1, got ${describeValue(recordTtl)}`);
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`options.signal must be an AbortSignal, got ${describeValue(signal)}`);
  }
  return { maxAttempts, recordTtl, signal };
}

/** What a run-once job needs of its locker. @internal */
export interface OnceHost {
  readonly prefix: string;
  readonly nodeId: string;
  /** Every etcd access of a job: the record, its watch, the lease of a decided record. */
  readonly store: ControlStore;
  readonly clock: Clock;
  /** Aborted when the locker closes. */
  readonly closeSignal: AbortSignal;
  requestTimeoutMs(): number;
  report(err: Error): void;
  /** Registers the claim as an ordinary singleton of `name`: all a job does with it is leave. */
  register(name: string, fn: SingletonFunction): { remove(): Promise<void> };
}

/** @internal */
export async function runOnce(core: OnceHost, name: string, fn: OnceFunction, options?: RunOptions): Promise<OnceOutcome> {
  validateName(name);
  if (typeof fn !== 'function') throw new TypeError(`fn for runOnce '${name}' must be a function, got ${typeof fn}`);
  const opts = resolveOnceOptions(options);
  opts.signal?.throwIfAborted();
  return new OnceJob(core, name, fn, opts).start();
}

const isRecord = (v: unknown): v is OnceRecord => {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    (r['status'] === 'running' || r['status'] === 'done' || r['status'] === 'failed') &&
    Number.isInteger(r['attempts']) &&
    Number.isInteger(r['maxAttempts']) &&
    typeof r['by'] === 'string' &&
    typeof r['token'] === 'string'
  );
};

const outcomeOf = (r: OnceRecord): OnceOutcome => ({ status: r.status === 'done' ? 'done' : 'failed', attempts: r.attempts, by: r.by });

type Settlement = { outcome: OnceOutcome } | { error: unknown };

/** One call of `once` on one host. */
class OnceJob {
  private readonly key: string;
  private readonly result: Promise<OnceOutcome>;
  private resolve!: (o: OnceOutcome) => void;
  private reject!: (e: unknown) => void;
  private settled = false;
  private singleton: ReturnType<OnceHost['register']> | undefined;
  private watcher: KeyWatchHandle | undefined;
  private readonly unhooks: (() => void)[] = [];

  constructor(
    private readonly core: OnceHost,
    private readonly name: string,
    private readonly fn: OnceFunction,
    private readonly opts: ResolvedOnceOptions,
  ) {
    // Exactly `<prefix><name>`: the locker's queue logic ignores keys with no '/' after the name.
    this.key = `${core.prefix}${name}`;
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  start(): Promise<OnceOutcome> {
    const closed = this.core.closeSignal;
    if (closed.aborted) return Promise.reject(new LockerClosedError(`run once '${this.name}'`));
    // The closing locker stops the singleton itself; only the waiting ends here.
    this.hook(closed, () => this.finish({ error: new LockerClosedError(`finish waiting for once '${this.name}'`) }, false));
    const { signal } = this.opts;
    if (signal) this.hook(signal, () => this.finish({ error: signal.reason }, true));
    this.begin().catch((err: unknown) => this.finish({ error: err }, true));
    return this.result;
  }

  private hook(signal: AbortSignal, onAbort: () => void): void {
    signal.addEventListener('abort', onAbort, { once: true });
    this.unhooks.push(() => signal.removeEventListener('abort', onAbort));
  }

  private async begin(): Promise<void> {
    // Watch before reading: a decision made between the two is seen by one or the other.
    // A broken watch only costs speed: the elected host reads the record before running fn.
    const watcher = this.core.store.watchKey(this.key, (value) => this.observed(value));
    this.watcher = watcher;
    try {
      await watcher.ready;
    } catch (err) {
      this.watcher = undefined;
      void watcher.close().catch(() => {});
      throw err;
    }
    if (this.settled) return;
    try {
      const kv = await this.read();
      if (kv && this.observed(kv.value)) return;
    } catch (err) {
      // Same: the runner's read decides. Campaign anyway instead of failing the call.
      this.core.report(new EtcdUnavailableError(`read of once record '${this.key}'`, err));
    }
    if (this.settled) return;
    this.singleton = this.core.register(this.name, (_remove, l) => this.lead(l));
  }

  /** A record value seen by the watch or a read: settles the call if it is decided. */
  private observed(value: string): boolean {
    const r = parse(value);
    if (!r || r.status === 'running') return false;
    this.finish({ outcome: outcomeOf(r) }, true);
    return true;
  }

  /**
   * Settles once: stops watching and, with `leave`, removes this host's singleton
   * first, so nothing of this call is queued once its promise settles.
   */
  private finish(s: Settlement, leave: boolean): void {
    if (this.settled) return;
    this.settled = true;
    for (const u of this.unhooks.splice(0)) u();
    const w = this.watcher;
    this.watcher = undefined;
    if (w) void w.close().catch(() => {});
    const settle = (): void => ('outcome' in s ? this.resolve(s.outcome) : this.reject(s.error));
    const singleton = this.singleton;
    if (leave && singleton) void singleton.remove().finally(settle);
    else settle();
  }

  // ——— the elected host ———

  /** The singleton's fn: claim an attempt, run fn, record the outcome. */
  private async lead(l: Leadership): Promise<void> {
    const claim = await this.claim(l);
    // The leadership may have ended while the claim was in flight: never start fn on an
    // aborted signal (a job that does not check it would run beside the next runner), nor
    // past the step-down deadline — a host paused with its claim in flight wakes to the
    // answer before its deadline timer runs (`active` reads the clock).
    // The claimed attempt counts as cut short; the next runner carries on.
    if (!claim || this.settled || l.signal.aborted || !l.active) return;
    let failure: { error: unknown } | undefined;
    try {
      await this.fn({ signal: l.signal, token: l.token, attempt: claim.attempts, fence: () => l.fence() });
    } catch (error) {
      failure = { error };
    }
    if (!failure) return this.decide(l, claim, 'done');
    // Cut short by the end of the leadership: the attempt is used, and the next runner
    // (which reads attempt `claim.attempts` as 'running') carries on or records 'failed'.
    if (l.signal.aborted) return;
    if (claim.attempts >= claim.maxAttempts) return this.decide(l, claim, 'failed');
    // Step down: the Singleton reports the error, resigns and queues again after a
    // backoff, so the next host in line makes the next attempt.
    throw failure.error;
  }

  /** Counts the next attempt in the record; undefined when nothing is to be run here. */
  private async claim(l: Leadership): Promise<Claim | undefined> {
    const backoff = new Backoff();
    for (;;) {
      if (this.settled || l.signal.aborted) return undefined;
      let kv: StoredKey | undefined;
      try {
        kv = await this.read();
      } catch (err) {
        if (!(await backoff.wait(this.core, l, `read of once record '${this.key}'`, err))) return undefined;
        continue;
      }
      const record = kv ? parse(kv.value) : undefined;
      if (kv && !record) {
        this.finish({ error: malformed(this.name, this.key, kv.value) }, true);
        return undefined;
      }
      const modRevision = kv ? kv.modRevision : 0n;
      if (record && record.status !== 'running') {
        this.finish({ outcome: outcomeOf(record) }, true);
        return undefined;
      }
      // Our own write whose answer was lost (etcd3 retries a txn that may have succeeded).
      if (record && record.token === l.token) return { ...record, modRevision };
      const max = record?.maxAttempts ?? this.opts.maxAttempts;
      const used = record?.attempts ?? 0;
      const next: OnceRecord =
        used >= max
          ? // The last allowed attempt was cut short (its host died or lost its lease).
            { status: 'failed', attempts: used, maxAttempts: max, by: record!.by, token: l.token }
          : { status: 'running', attempts: used + 1, maxAttempts: max, by: this.core.nodeId, token: l.token };
      let res: bigint | 'deposed' | 'conflict';
      try {
        res = await this.write(l, modRevision, next);
      } catch (err) {
        if (!(await backoff.wait(this.core, l, `write of once record '${this.key}'`, err))) return undefined;
        continue;
      }
      if (res === 'deposed') return undefined; // the Singleton learns it from the watch and ends this leadership
      if (res === 'conflict') continue;
      if (next.status === 'running') return { ...next, modRevision: res };
      this.finish({ outcome: outcomeOf(next) }, true);
      return undefined;
    }
  }

  /** Records the outcome of our attempt, fenced: fails for good once another runner could have started. */
  private async decide(l: Leadership, claim: Claim, status: 'done' | 'failed'): Promise<void> {
    const record: OnceRecord = { status, attempts: claim.attempts, maxAttempts: claim.maxAttempts, by: this.core.nodeId, token: l.token };
    const backoff = new Backoff();
    let modRevision: bigint | undefined = claim.modRevision;
    // One try even if the leadership already ended locally (e.g. after a pause): etcd's
    // fence, not our clock, says whether another runner may have started since.
    for (;;) {
      try {
        if (modRevision === undefined) {
          const kv = await this.read();
          const current = kv ? parse(kv.value) : undefined;
          if (current && current.status !== 'running') {
            // Decided by a later runner while this attempt was paused or cut off.
            if (current.token !== l.token)
              this.core.report(this.notRecorded(l, claim, status, `${current.by} had already recorded '${current.status}'`));
            this.finish({ outcome: outcomeOf(current) }, true);
            return;
          }
          modRevision = kv ? kv.modRevision : 0n;
        }
        const res = await this.write(l, modRevision, record);
        if (res === 'deposed') {
          this.core.report(this.notRecorded(l, claim, status, 'another host may be running the next attempt'));
          return;
        }
        if (res !== 'conflict') {
          this.finish({ outcome: outcomeOf(record) }, true);
          return;
        }
        modRevision = undefined; // someone reset the record by hand: look again
      } catch (err) {
        if (!(await backoff.wait(this.core, l, `write of once outcome '${this.key}'`, err))) {
          this.core.report(this.notRecorded(l, claim, status, `etcd could not be reached: ${describe(err)}`));
          return;
        }
        modRevision = undefined; // the write may have landed: read before writing again
      }
    }
  }

  /** The attempt ran here, but the cluster goes on without its outcome (the next runner counts it as used). */
  private notRecorded(l: Leadership, claim: Claim, status: 'done' | 'failed', why: string): NotLeaderError {
    const verb = status === 'done' ? 'succeeded' : 'failed';
    return new NotLeaderError(
      this.name,
      `attempt ${claim.attempts} ${verb} after its leadership (token ${l.token}) ended; its outcome was not recorded: ${why}`,
    );
  }

  private read(): Promise<StoredKey | undefined> {
    return this.core.store.get(this.key, this.core.requestTimeoutMs());
  }

  /**
   * Puts `record` if our leadership key still has its create revision (the token) and the
   * record is unchanged since `modRevision` (0n = absent). Resolves with the new mod
   * revision, 'deposed' (our key is gone) or 'conflict' (the record changed).
   */
  private async write(l: Leadership, modRevision: bigint, record: OnceRecord): Promise<bigint | 'deposed' | 'conflict'> {
    const { store } = this.core;
    const timeoutMs = this.core.requestTimeoutMs();
    const decided = record.status !== 'running';
    // Only the decision expires: the attempt count must outlive every runner.
    const lease = decided && this.opts.recordTtl !== undefined ? await store.grant(this.opts.recordTtl, timeoutMs) : undefined;
    const res = await store.putFenced(
      {
        fence: { key: l.key, createRevision: BigInt(l.token) },
        key: this.key,
        value: JSON.stringify(record),
        modRevision,
        ...(lease !== undefined ? { leaseId: lease } : {}),
      },
      timeoutMs,
    );
    if (typeof res !== 'bigint' && lease !== undefined) void store.revoke(lease, timeoutMs).catch(() => {});
    return res;
  }
}

function parse(value: string): OnceRecord | undefined {
  try {
    const v: unknown = JSON.parse(value);
    return isRecord(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function malformed(name: string, key: string, value: string): Error {
  const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
  return new Error(`once '${name}': ${key} holds '${shown}', which is not a run-once record (delete the key to start over)`);
}

/** Retries of etcd calls while the leadership lasts: exponential, with jitter. */
class Backoff {
  private b: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 50, maxDelay: 2000 }).next();

  /** Reports `err`, waits; false if the leadership ended (no retry then). */
  async wait(core: OnceHost, l: Leadership, what: string, err: unknown): Promise<boolean> {
    if (l.signal.aborted) return false;
    core.report(new EtcdUnavailableError(what, err));
    const ms = this.b.duration;
    this.b = this.b.next(undefined);
    await sleep(core.clock, ms, l.signal);
    return !l.signal.aborted;
  }
}
