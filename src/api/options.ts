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
import { DEFAULT_BALANCE_CONCURRENCY, DEFAULT_PREFER_HOLD_DOWN_MS } from '../features/placement.js';
import { validate, type Schema, type Values } from './options-schema.js';

/** etcd's own minimum lease TTL with default server timings (1.5 × election timeout, rounded up). */
export const MIN_TTL = 2;

export type { LockerOptions, SingletonOptions, LockOptions, FailoverOptions, DrainOptions, OnceOptions } from './options-types.js';
import type { DrainOptions, LockerOptions, SingletonOptions } from './options-types.js';

// ——— the schemas (the bags are in options-types.ts) ———

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
  weight: {
    type: 'number',
    doc: "this host's relative share of the leaderships (0 = standby only)",
    default: { value: 1 },
    range: { ok: (v) => v >= 0 && v <= 1_000_000, says: () => 'be a finite number from 0 to 1,000,000' },
  },
  zone: {
    type: 'string',
    doc: "this host's failure domain (first standbys sit in another one)",
    format: { ok: (s) => s.length > 0 && s.length <= 64, says: () => 'be 1 to 64 characters' },
  },
  prefer: { type: 'function', doc: "each name's preferred hosts, best first (names without their own `prefer`)" },
  etcd: { type: 'object', doc: 'options of the etcd3 client', default: { value: {} } },
  clock: { type: 'object', doc: 'injected clock (tests)', default: { value: systemClock } },
};

const BALANCE_SCHEMA: Schema = {
  concurrency: {
    type: 'number',
    doc: 'moves one host makes at once',
    default: { value: DEFAULT_BALANCE_CONCURRENCY },
    range: { ok: wholeAtLeast(1), says: () => 'be an integer ≥ 1' },
  },
  respreadDelayMs: {
    type: 'number',
    doc: 'ms balancing holds still after a host disappeared (a restart coming back within it moves nothing twice)',
    default: { value: 0 },
    range: { ok: (v) => v >= 0 && v <= 3_600_000, says: (_o, u) => `be a number of ${u.unit} from 0 to 3,600,000 (an hour)` },
  },
  preferHoldDownMs: {
    type: 'number',
    doc: 'ms a preferred host must be up before its names move back to it',
    default: { value: DEFAULT_PREFER_HOLD_DOWN_MS },
    range: { ok: (v) => v >= 0 && v <= 3_600_000, says: (_o, u) => `be a number of ${u.unit} from 0 to 3,600,000 (an hour)` },
  },
};

export const SINGLETON_SCHEMA: Schema = {
  healthy: { type: 'function', doc: 'health check; a candidate only while it passes' },
  prefer: {
    type: 'string[]',
    doc: 'preferred hosts (ids), best first',
    format: { ok: (s) => s.length > 0 && s.length <= 253, says: () => 'be a host id of 1 to 253 characters' },
  },
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
  /** After a host disappears, balancing (not drains, not failovers) holds still this long. */
  respreadDelayMs: number;
  /** A preferred host leads its names again once it has been up this long. */
  preferHoldDownMs: number;
  prefer: ((name: string) => readonly string[] | undefined) | undefined;
  weight: number;
  zone: string | undefined;
  etcd: Omit<IOptions, 'hosts'>;
  clock: Clock;
}

/** Validates `locked(hosts, options)`: every option and the relations between the timings. */
export function resolveOptions(hosts: unknown, options: LockerOptions = {}): ResolvedOptions {
  const parsedHosts = parseHosts(hosts);
  const o = validate(LOCKER_SCHEMA, options) as Required<Omit<LockerOptions, 'renewDeadline' | 'keepaliveInterval' | 'stopTimeout'>>;
  refuseTlsToAddresses(parsedHosts, o.etcd);
  const balance =
    typeof o.balance === 'boolean'
      ? { concurrency: o.balance ? DEFAULT_BALANCE_CONCURRENCY : 0, respreadDelayMs: 0, preferHoldDownMs: DEFAULT_PREFER_HOLD_DOWN_MS }
      : (validate(BALANCE_SCHEMA, o.balance, { path: 'options.balance' }) as {
          concurrency: number;
          respreadDelayMs: number;
          preferHoldDownMs: number;
        });
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
    balanceConcurrency: balance.concurrency,
    respreadDelayMs: balance.respreadDelayMs,
    preferHoldDownMs: balance.preferHoldDownMs,
    prefer: o.prefer,
    weight: o.weight,
    zone: o.zone,
    etcd: o.etcd,
    clock: o.clock,
  };
}

/** Validates `locker(name, fn, options)`. */
export function resolveSingletonOptions(
  name: string,
  options: unknown,
): { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number; prefer?: readonly string[] } {
  const o = validate(SINGLETON_SCHEMA, options, { subject: `'${name}'` }) as Pick<SingletonOptions, 'healthy' | 'prefer'> & {
    checkIntervalMs: number;
  };
  return { ...(o.healthy ? { healthy: o.healthy } : {}), checkIntervalMs: o.checkIntervalMs, ...(o.prefer ? { prefer: o.prefer } : {}) };
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
