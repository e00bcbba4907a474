// The option bags of the public API, as types: one interface per call, each field with its
// default. Validated in options.ts (one way, options-schema.ts); the unit rule is stated there.
import type { IOptions } from '../etcd/etcd3.js';
import type { Clock } from '../core/clock.js';

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
   * `{ concurrency }` bounds the moves one host makes at once (default 5000).
   */
  balance?: boolean | { concurrency?: number; respreadDelayMs?: number; preferHoldDownMs?: number };
  /**
   * Preferred hosts of the names registered without their own `prefer` option: called once
   * per name at registration, returns host ids in order of preference (or undefined: none).
   * See SingletonOptions.prefer.
   */
  prefer?: (name: string) => readonly string[] | undefined;
  /**
   * This host's share of the leaderships, relative to the others' (default 1): a host of
   * weight 2 leads twice as many names as one of weight 1; 0 = standby only (it leads a
   * name only while no other candidate can).
   */
  weight?: number;
  /**
   * This host's failure domain (a zone, rack or data centre): each name's first standby is
   * kept in another zone than its leader where one queues, so a whole zone lost fails every
   * name over at lease expiry. Default: none.
   */
  zone?: string;
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
  /**
   * Preferred hosts (their `id`s), best first: with balancing on, the name is led by the
   * first of them that queues for it, is not draining, has weight > 0 and has been up
   * (its host record unchanged) for `balance.preferHoldDownMs` — so a flapping host does not
   * bounce the name. A leader that is not that host hands over gracefully; balancing never
   * moves the name away from it. While none of them is there, the name is balanced like any
   * other, and a crash fails it over to its first standby at once as always. Every host
   * should register the name with the same list (each computes placement from its own).
   */
  prefer?: readonly string[];
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
