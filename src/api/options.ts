// Every option bag of the public API, declared and validated here, one way (options-schema.ts):
// locked(hosts, options), locker(name, fn, options), lock, tryLock, failover, drain/undrain
// and runOnce.
//
// The unit rule: every duration is in milliseconds and its name ends in `Ms` — the unit of
// JavaScript's timers, AbortSignal.timeout and cockatiel — except a lease's TTL (`ttl`,
// `recordTtl`), which stays in whole seconds under etcd's own name: etcd grants leases in
// whole seconds only, so a millisecond TTL could only be rounded or refused. The names
// before this rule (`renewDeadline`, `keepaliveInterval`, `stopTimeout` in seconds;
// `checkInterval`, `timeout` in milliseconds) keep working, each with a one-time
// DeprecationWarning of its own code (LOCKED_DEP001…005).
import type { IOptions } from '../etcd/etcd3.js';
import { nanoid } from 'nanoid';
import { systemClock, type Clock } from '../core/clock.js';
import { parseHosts, refuseTlsToAddresses } from './options-hosts.js';
import { describeValue, validate, type Schema, type Values } from './options-schema.js';

export { describeValue };

/** etcd's own minimum lease TTL with default server timings (1.5 × election timeout, rounded up). */
export const MIN_TTL = 2;

// ——— the bags ———

/** Options of `locked(hosts, options)`. */
export interface LockerOptions {
  /** This host's node id, written as the value of its election keys. Default: a nanoid. */
  id?: string;
  /**
   * Lease TTL in whole seconds (default 10, at least 2): etcd grants leases in seconds. A
   * crashed host is replaced after at most this long; a shorter TTL means faster failover and
   * more keepalives.
   */
  ttl?: number;
  /**
   * Milliseconds after the send time of the last keepalive etcd acknowledged at which a
   * leader stops itself. Default ⅔ × ttl × 1000. Must satisfy keepaliveIntervalMs <
   * renewDeadlineMs < ttl × 1000: the gap to the TTL is the margin for clock-rate drift and a
   * late timer.
   */
  renewDeadlineMs?: number;
  /** @deprecated Use `renewDeadlineMs` (milliseconds). Seconds; warns once (DeprecationWarning LOCKED_DEP001). */
  renewDeadline?: number;
  /** Milliseconds between keepalives at rest. Default ttl × 1000 / 3; at most that. */
  keepaliveIntervalMs?: number;
  /** @deprecated Use `keepaliveIntervalMs` (milliseconds). Seconds; warns once (DeprecationWarning LOCKED_DEP002). */
  keepaliveInterval?: number;
  /** Key prefix of every election of this locker; must end with `/`. Default `'locked/'`. */
  prefix?: string;
  /**
   * On SIGTERM / SIGINT, resign every singleton at once so a standby starts without
   * waiting for the TTL, then let the process exit as it would have. Default true.
   */
  handleSignals?: boolean;
  /**
   * Milliseconds a graceful step-down (remove, close, fn failure) waits for the running fn's
   * promise to settle after aborting its signal; past it, `error` reports the fn (the name
   * stays held until it settles) and `close()` leaves the lease to expire. Default ttl × 1000.
   */
  stopTimeoutMs?: number;
  /** @deprecated Use `stopTimeoutMs` (milliseconds). Seconds; warns once (DeprecationWarning LOCKED_DEP003). */
  stopTimeout?: number;
  /**
   * Spread leaderships over the hosts (default true): a host leading two or more names
   * more than a candidate of one of them hands it over gracefully (README: Balance).
   * `{ concurrency }` bounds the moves one host makes at once (default 16).
   */
  balance?: boolean | { concurrency?: number };
  /** Passed to the etcd3 client: TLS `credentials`, `auth`, `grpcOptions`, `defaultCallOptions`… Default `{}`. */
  etcd?: Omit<IOptions, 'hosts'>;
  /** Injected clock (tests). Default: the system clock. */
  clock?: Clock;
}

/** Options of `locker(name, fn, options)`. */
export interface SingletonOptions {
  /**
   * Health check: while it fails, this host does not campaign for the name (it leaves the
   * queue); a leader whose check fails twice in a row hands over gracefully to a queued
   * standby, and keeps leading (reporting it) while nobody else queues. A check that throws,
   * rejects or takes longer than `checkIntervalMs` fails. Default: none (always a candidate).
   */
  healthy?: () => boolean | Promise<boolean>;
  /** Milliseconds between checks (default 5000, at least 100). */
  checkIntervalMs?: number;
  /** @deprecated Use `checkIntervalMs` (the same milliseconds); warns once (DeprecationWarning LOCKED_DEP004). */
  checkInterval?: number;
}

/** Options of `locker.lock(name, fn, options)`. */
export interface LockOptions {
  /** Give up waiting (not running) after this many milliseconds: rejects with a LockCancelledError. Default: wait. */
  timeoutMs?: number;
  /** @deprecated Use `timeoutMs` (the same milliseconds); warns once (DeprecationWarning LOCKED_DEP005). */
  timeout?: number;
  /** Give up waiting when aborted: rejects with a LockCancelledError. */
  signal?: AbortSignal;
}

/** Options of `locker.failover(name, options)`. */
export interface FailoverOptions {
  /** Node id that must lead next (it must queue for the name). Default: whoever is next in line. */
  to?: string;
  /** Delete the leader's key instead of asking it (the behaviour of 0.1): for a leader that does not answer. Default false. */
  force?: boolean;
  /** How long the leader has to hand over (ms). Default max(10 s, 3 × ttl). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Options of `locker.drain(options)`. */
export interface DrainOptions {
  /** Called for each leadership that moved away: name and the node id leading it now. */
  onMove?: (name: string, to: string | undefined) => void;
  /**
   * With `nodeId`: write the drain order even if no live host has that id — for a host
   * about to start, which then never takes a name another host could lead. Without it
   * such an id rejects with HostNotFoundError (a typo would drain nothing, at once).
   * Default false.
   */
  force?: boolean;
  signal?: AbortSignal;
}

/** Options of `locker.runOnce(name, fn, options)`. */
export interface OnceOptions {
  /**
   * Attempts in total across the cluster, whole number ≥ 1 (default 3). An attempt cut
   * short (host killed, lease lost) counts. The first attempt records the value; hosts
   * that call later follow the recorded one, so the bound holds even if they disagree.
   */
  maxAttempts?: number;
  /**
   * Whole seconds the decided outcome stays in etcd (a lease TTL, so seconds as etcd
   * grants them); after that a new call runs fn again. Default: the outcome stays until
   * someone deletes `<prefix><name>`.
   */
  recordTtl?: number;
  /** Stops waiting: this host leaves the name (aborting fn if it runs here) and the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

// ——— their schemas ———

const ttlOf = (o: Values): number => o['ttl'] as number;
const positive = (v: number): boolean => v > 0;
const wholeAtLeast = (min: number) => (v: number) => Number.isInteger(v) && v >= min;
const signal = { type: 'AbortSignal', doc: 'stops waiting' } as const;

/** The keys of `locked(hosts, options)`, in the order their checks depend on each other. */
export const LOCKER_SCHEMA: Schema = {
  id: {
    type: 'string',
    doc: "this host's node id",
    default: { from: () => nanoid() },
    format: { ok: (s) => s.length > 0, says: () => 'be a non-empty string' },
  },
  ttl: {
    type: 'number',
    doc: 'lease TTL, whole seconds',
    default: { value: 10 },
    range: { ok: wholeAtLeast(MIN_TTL), says: () => `be a whole number of seconds ≥ ${MIN_TTL} (etcd's minimum lease TTL)` },
  },
  keepaliveIntervalMs: {
    type: 'number',
    doc: 'ms between keepalives at rest',
    default: { from: (o) => (ttlOf(o) / 3) * 1000 },
    range: {
      ok: (v, o) => v > 0 && v <= (ttlOf(o) / 3) * 1000 + 1e-6,
      says: (o, u) => `be a number of ${u.unit} in (0, ${u.seconds ? 'ttl/3' : 'ttl × 1000 / 3'} = ${u.ms((ttlOf(o) / 3) * 1000)}]`,
    },
    deprecatedAlias: { name: 'keepaliveInterval', code: 'LOCKED_DEP002', scale: 1000, unit: 'seconds' },
  },
  renewDeadlineMs: {
    type: 'number',
    doc: 'ms after the last acknowledged keepalive at which a leader stops itself',
    default: { from: (o) => ((2 * ttlOf(o)) / 3) * 1000 },
    range: {
      ok: (v, o) => v > (o['keepaliveIntervalMs'] as number) && v < ttlOf(o) * 1000,
      says: (o, u) =>
        `be a number of ${u.unit} with ${u.name('keepaliveIntervalMs')} (${u.ms(o['keepaliveIntervalMs'] as number)}) < ${u.name('renewDeadlineMs')} < ${u.seconds ? `ttl (${ttlOf(o)})` : `ttl × 1000 (${ttlOf(o) * 1000})`}`,
    },
    deprecatedAlias: { name: 'renewDeadline', code: 'LOCKED_DEP001', scale: 1000, unit: 'seconds' },
  },
  prefix: {
    type: 'string',
    doc: 'key prefix of every election',
    default: { value: 'locked/' },
    // Without the slash, prefix 'app' would also cover every key of 'app2…'.
    format: { ok: (s) => s.endsWith('/'), says: (_o, _u, v) => `end with '/' (use '${v}/')` },
  },
  handleSignals: { type: 'boolean', doc: 'resign everything on SIGTERM/SIGINT', default: { value: true } },
  stopTimeoutMs: {
    type: 'number',
    doc: 'ms a step-down waits for fn to settle',
    default: { from: (o) => ttlOf(o) * 1000 },
    range: { ok: (v) => v >= 0, says: (_o, u) => `be a finite number of ${u.unit} ≥ 0` },
    deprecatedAlias: { name: 'stopTimeout', code: 'LOCKED_DEP003', scale: 1000, unit: 'seconds' },
  },
  balance: { type: ['boolean', 'object'], doc: 'spread leaderships over the hosts', default: { value: true } },
  etcd: { type: 'object', doc: 'options of the etcd3 client', default: { value: {} } },
  clock: { type: 'object', doc: 'injected clock (tests)', default: { value: systemClock } },
};

const BALANCE_SCHEMA: Schema = {
  concurrency: {
    type: 'number',
    doc: 'moves one host makes at once',
    default: { value: 16 },
    range: { ok: wholeAtLeast(1), says: () => 'be an integer ≥ 1' },
  },
};

export const SINGLETON_SCHEMA: Schema = {
  healthy: { type: 'function', doc: 'health check; a candidate only while it passes' },
  checkIntervalMs: {
    type: 'number',
    doc: 'ms between health checks',
    default: { value: 5000 },
    range: { ok: (v) => v >= 100, says: () => 'be a number of milliseconds ≥ 100' },
    deprecatedAlias: { name: 'checkInterval', code: 'LOCKED_DEP004', scale: 1, unit: 'milliseconds' },
  },
};

export const LOCK_SCHEMA: Schema = {
  timeoutMs: {
    type: 'number',
    doc: 'ms to wait for the lock',
    range: { ok: (v) => v >= 0, says: () => 'be a finite number of milliseconds ≥ 0' },
    deprecatedAlias: { name: 'timeout', code: 'LOCKED_DEP005', scale: 1, unit: 'milliseconds' },
  },
  signal,
};

export const TRY_LOCK_SCHEMA: Schema = { signal };

export const FAILOVER_SCHEMA: Schema = {
  to: { type: 'string', doc: 'node id to lead next', format: { ok: (s) => s.length > 0, says: () => 'be a non-empty node id' } },
  force: { type: 'boolean', doc: "delete the leader's key instead of asking", default: { value: false } },
  timeoutMs: {
    type: 'number',
    doc: 'ms the leader has to hand over',
    range: { ok: positive, says: () => 'be a number of milliseconds > 0' },
  },
  signal,
};

const nodeId = {
  type: 'string',
  doc: 'the host to drain or undrain (default: this one)',
  format: { ok: (s: string) => s.length > 0, says: () => 'be a non-empty node id' },
} as const;

export const DRAIN_SCHEMA: Schema = {
  nodeId,
  onMove: { type: 'function', doc: 'hears of each leadership that moved away' },
  force: { type: 'boolean', doc: 'write the order for an id no live host has', default: { value: false } },
  signal,
};

export const UNDRAIN_SCHEMA: Schema = {
  nodeId,
  force: { type: 'boolean', doc: 'accept an id neither live nor drained', default: { value: false } },
  signal,
};

export const ONCE_SCHEMA: Schema = {
  maxAttempts: {
    type: 'number',
    doc: 'attempts in total across the cluster',
    default: { value: 3 },
    range: { ok: wholeAtLeast(1), says: () => 'be a whole number ≥ 1' },
  },
  recordTtl: {
    type: 'number',
    doc: 'whole seconds the outcome stays in etcd',
    range: { ok: wholeAtLeast(1), says: () => 'be a whole number of seconds ≥ 1' },
  },
  signal,
};

// ——— resolution ———

export interface ResolvedOptions {
  hosts: string[];
  id: string;
  ttl: number;
  renewDeadlineMs: number;
  keepaliveIntervalMs: number;
  /**
   * How often the prefix watch checks that its member keeps up (watch.ts): twice per keepalive
   * interval, so a member that fell silent is left within about ttl/4 — a deposed leader must
   * stop within ttl/3 of its key's delete.
   */
  watchFreshnessMs: number;
  prefix: string;
  handleSignals: boolean;
  stopTimeoutMs: number;
  /** Moves at once per host; 0 = balancing off (drain and requested moves still work). */
  balanceConcurrency: number;
  etcd: Omit<IOptions, 'hosts'>;
  clock: Clock;
}

/** Validates `locked(hosts, options)`: every option and the relations between the timings. */
export function resolveOptions(hosts: unknown, options: LockerOptions = {}): ResolvedOptions {
  const parsedHosts = parseHosts(hosts);
  const o = validate(LOCKER_SCHEMA, options) as Required<Omit<LockerOptions, 'renewDeadline' | 'keepaliveInterval' | 'stopTimeout'>>;
  refuseTlsToAddresses(parsedHosts, o.etcd);
  const balanceConcurrency =
    typeof o.balance === 'boolean'
      ? o.balance
        ? 16
        : 0
      : (validate(BALANCE_SCHEMA, o.balance, { path: 'options.balance' })['concurrency'] as number);
  return {
    hosts: parsedHosts,
    id: o.id,
    ttl: o.ttl,
    renewDeadlineMs: o.renewDeadlineMs,
    keepaliveIntervalMs: o.keepaliveIntervalMs,
    watchFreshnessMs: o.keepaliveIntervalMs / 2,
    prefix: o.prefix,
    handleSignals: o.handleSignals,
    stopTimeoutMs: o.stopTimeoutMs,
    balanceConcurrency,
    etcd: o.etcd,
    clock: o.clock,
  };
}

/** Validates `locker(name, fn, options)`. */
export function resolveSingletonOptions(
  name: string,
  options: unknown,
): { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number } {
  const o = validate(SINGLETON_SCHEMA, options, { subject: `'${name}'` }) as Pick<SingletonOptions, 'healthy'> & {
    checkIntervalMs: number;
  };
  return { ...(o.healthy ? { healthy: o.healthy } : {}), checkIntervalMs: o.checkIntervalMs };
}

/** Validates `lock(name, fn, options)`; `timeoutMs` undefined: wait as long as it takes. */
export function resolveLockOptions(name: string, options: unknown): { timeoutMs: number | undefined; signal: AbortSignal | undefined } {
  return validate(LOCK_SCHEMA, options, { subject: `lock('${name}')` }) as {
    timeoutMs: number | undefined;
    signal: AbortSignal | undefined;
  };
}

/** Validates `tryLock(name, fn, options)`. */
export function resolveTryLockOptions(name: string, options: unknown): { signal: AbortSignal | undefined } {
  return validate(TRY_LOCK_SCHEMA, options, { subject: `tryLock('${name}')` }) as { signal: AbortSignal | undefined };
}

export interface ResolvedFailoverOptions {
  to: string | undefined;
  force: boolean;
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

/** Validates `failover(name, options)` of a locker whose lease TTL is `ttl` seconds. */
export function resolveFailoverOptions(name: string, options: unknown, ttl: number): ResolvedFailoverOptions {
  const o = validate(FAILOVER_SCHEMA, options, { subject: `failover('${name}')` }) as Omit<ResolvedFailoverOptions, 'timeoutMs'> & {
    timeoutMs: number | undefined;
  };
  if (o.force && o.to !== undefined) {
    throw new TypeError("failover: 'to' cannot be combined with 'force' (a forced failover goes to whoever is next)");
  }
  return { ...o, timeoutMs: o.timeoutMs ?? Math.max(10_000, 3 * ttl * 1000) };
}

export interface ResolvedDrainOptions {
  nodeId: string | undefined;
  onMove: DrainOptions['onMove'];
  force: boolean;
  signal: AbortSignal | undefined;
}

/** Validates `drain(options)`. */
export function resolveDrainOptions(options: unknown): ResolvedDrainOptions {
  return validate(DRAIN_SCHEMA, options, { subject: 'drain()' }) as unknown as ResolvedDrainOptions;
}

/** Validates `undrain(options)`. */
export function resolveUndrainOptions(options: unknown): Omit<ResolvedDrainOptions, 'onMove'> {
  return validate(UNDRAIN_SCHEMA, options, { subject: 'undrain()' }) as unknown as Omit<ResolvedDrainOptions, 'onMove'>;
}

/** Validates `runOnce(name, fn, options)`; `recordTtl` undefined: the outcome stays. */
export function resolveRunOnceOptions(
  name: string,
  options: unknown,
): { maxAttempts: number; recordTtl: number | undefined; signal: AbortSignal | undefined } {
  return validate(ONCE_SCHEMA, options, { subject: `runOnce('${name}')` }) as {
    maxAttempts: number;
    recordTtl: number | undefined;
    signal: AbortSignal | undefined;
  };
}
