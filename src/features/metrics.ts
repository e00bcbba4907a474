// The figures a locker keeps about itself, for probes and dashboards: fed by a few
// one-line hooks (singleton.ts: start/stop; locker.ts: lease lost; the keepalive round
// trip is timed around the store's keepAlive), read as a plain snapshot, and rendered
// in the Prometheus text exposition format without any metrics dependency.
import type { Clock } from '../core/clock.js';
import type { StopReason } from '../core/leadership-types.js';
import type { Store } from '../etcd/store.js';

/** Upper bounds (seconds) of the keepalive round-trip histogram buckets; `+Inf` is implied. */
export const KEEPALIVE_RTT_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

// Every StopReason once: the compiler refuses a reason missing here or one that is not a StopReason.
const REASONS: Record<StopReason, true> = {
  removed: true,
  lost: true,
  deposed: true,
  error: true,
  unhealthy: true,
  handover: true,
  closed: true,
};

/**
 * Every `StopReason`, in a fixed order: the values of the `reason` label of
 * `locked_leaderships_stopped_total` (docs/monitoring.md lists them; a unit test keeps the
 * two in step).
 */
export const STOP_REASONS: readonly StopReason[] = Object.freeze(Object.keys(REASONS) as StopReason[]);

const zeroStops = (): Record<StopReason, number> => Object.fromEntries(STOP_REASONS.map((r) => [r, 0])) as Record<StopReason, number>;

/**
 * Per-name series are written while a host has at most this many names (renderPrometheus's
 * `perName` option): ten series a name × 100,000 names would be a million series per host.
 */
export const PER_NAME_SERIES_LIMIT = 100;

/** A cumulative histogram, as Prometheus has it. */
export interface HistogramSnapshot {
  /** Upper bounds in seconds, ascending; the `+Inf` bucket is `count`. */
  readonly buckets: readonly number[];
  /** Cumulative counts: `counts[i]` observations were ≤ `buckets[i]`. */
  readonly counts: readonly number[];
  /** Sum of every observation, in seconds. */
  readonly sum: number;
  readonly count: number;
}

/** One name as this host sees it. */
export interface NameMetrics {
  /** True while the name is registered on this host (false: removed, only its counters are kept). */
  readonly registered: boolean;
  /** True while this host leads the name (same as `singleton.isLeader`). */
  readonly leader: boolean;
  /** Place in the queue: 0 = leading, 1 = next…; undefined while not queued (or not registered here). */
  readonly queuePosition: number | undefined;
  /** Leaderships this host started for the name. */
  readonly leadershipsStarted: number;
  /** Leaderships this host ended for the name, by reason. */
  readonly leadershipsStopped: Readonly<Record<StopReason, number>>;
}

/** `locker.metrics()`: everything since the locker was created. */
export interface MetricsSnapshot {
  /** This host's node id. */
  readonly id: string;
  /** Every name registered now, or led here at some point. */
  readonly names: Readonly<Record<string, NameMetrics>>;
  /** Leases lost (every leadership on them ended with reason 'lost'). */
  readonly leaseLosses: number;
  /** Round trip of every answered keepalive. */
  readonly keepaliveRtt: HistogramSnapshot;
  /** `health().ready`: a lease is held inside its step-down deadline and the prefix watch is connected. */
  readonly ready: boolean;
  /** `health().live`: false while an fn of this host still runs past its lease's TTL since the last acknowledged keepalive. */
  readonly live: boolean;
  /** This locker's timings, in seconds. */
  readonly timing: TimingMetrics;
}

/** A locker's timings in seconds, for alerts that compare against them. */
export interface TimingMetrics {
  /** Lease TTL: a crashed host is replaced after at most this long. */
  readonly ttl: number;
  /** A leader steps down this long after sending the last keepalive etcd acknowledged. */
  readonly renewDeadline: number;
  /** Time between keepalives at rest. */
  readonly keepaliveInterval: number;
  /**
   * Time limit of one keepalive attempt (half the interval, at least 0.2 s, as the session
   * has it): a slower answer counts as a failure and the keepalive is sent again.
   */
  readonly keepaliveTimeout: number;
}

/** What `snapshot()` reads from the locker besides the names. @internal */
export interface HostFigures {
  readonly ready: boolean;
  readonly live: boolean;
  readonly ttl: number;
  readonly renewDeadlineMs: number;
  readonly keepaliveIntervalMs: number;
}

interface Counts {
  started: number;
  stopped: Record<StopReason, number>;
}

/** The counters of one locker. @internal */
export class MetricsRecorder {
  private readonly counts = new Map<string, Counts>();
  private losses = 0;
  private readonly rttCounts = KEEPALIVE_RTT_BUCKETS.map(() => 0);
  private rttSum = 0;
  private rttCount = 0;

  private of(name: string): Counts {
    let c = this.counts.get(name);
    if (!c) {
      c = { started: 0, stopped: zeroStops() };
      this.counts.set(name, c);
    }
    return c;
  }

  started(name: string): void {
    this.of(name).started++;
  }

  stopped(name: string, reason: StopReason): void {
    this.of(name).stopped[reason]++;
  }

  leaseLost(): void {
    this.losses++;
  }

  keepaliveRtt(ms: number): void {
    const s = Math.max(0, ms) / 1000;
    this.rttSum += s;
    this.rttCount++;
    KEEPALIVE_RTT_BUCKETS.forEach((le, i) => {
      if (s <= le) this.rttCounts[i]!++;
    });
  }

  /** `live`: the registered singletons' leader flag and queue position, read now; `host`: the locker's health and timings. */
  snapshot(
    id: string,
    live: ReadonlyMap<string, { leader: boolean; queuePosition: number | undefined }>,
    host: HostFigures,
  ): MetricsSnapshot {
    const names: Record<string, NameMetrics> = {};
    for (const name of new Set([...live.keys(), ...this.counts.keys()])) {
      const c = this.counts.get(name);
      const l = live.get(name);
      names[name] = {
        registered: l !== undefined,
        leader: l?.leader ?? false,
        queuePosition: l?.queuePosition,
        leadershipsStarted: c?.started ?? 0,
        leadershipsStopped: { ...(c?.stopped ?? zeroStops()) },
      };
    }
    return {
      id,
      names,
      leaseLosses: this.losses,
      keepaliveRtt: { buckets: KEEPALIVE_RTT_BUCKETS, counts: [...this.rttCounts], sum: this.rttSum, count: this.rttCount },
      ready: host.ready,
      live: host.live,
      timing: {
        ttl: host.ttl,
        renewDeadline: host.renewDeadlineMs / 1000,
        keepaliveInterval: host.keepaliveIntervalMs / 1000,
        // session.ts, attemptMs: max(200 ms, keepaliveInterval / 2).
        keepaliveTimeout: Math.max(200, host.keepaliveIntervalMs / 2) / 1000,
      },
    };
  }
}

/** `store` with every answered keepAlive timed (the session's own code stays untouched). @internal */
export function timedKeepalive(store: Store, clock: Clock, observe: (ms: number) => void): Store {
  return {
    grant: (ttl, timeoutMs) => store.grant(ttl, timeoutMs),
    keepAlive: async (leaseId, timeoutMs, attempt, hedgeMs) => {
      const sent = clock.now();
      const ttl = await store.keepAlive(leaseId, timeoutMs, attempt, hedgeMs);
      observe(clock.now() - sent);
      return ttl;
    },
    revoke: (leaseId, timeoutMs) => store.revoke(leaseId, timeoutMs),
    campaign: (requests, timeoutMs) => store.campaign(requests, timeoutMs),
    resign: (requests, timeoutMs) => store.resign(requests, timeoutMs),
    readPrefix: (prefix, timeoutMs) => store.readPrefix(prefix, timeoutMs),
    watchPrefix: (prefix, handlers) => store.watchPrefix(prefix, handlers),
  };
}

// ——— Prometheus text exposition (format 0.0.4) ———

/** Content-Type of `renderPrometheus()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Label values: backslash, double quote and newline are escaped. */
const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

const labels = (l: Record<string, string>): string => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
};

const num = (n: number): string => (n === Infinity ? '+Inf' : n === -Infinity ? '-Inf' : Number.isNaN(n) ? 'NaN' : String(n));

/** renderPrometheus's options. */
export interface RenderOptions {
  /**
   * Per-name series: `locked_leader` and `locked_queue_position` per registered name, and
   * the `name` label on the leadership counters. `true` always, `false` never (the counters
   * are then summed over the names), a number: only while the snapshot has at most that
   * many names. Default `PER_NAME_SERIES_LIMIT` (100). The host totals
   * (`locked_names_registered`, `locked_names_leading`) are always written.
   */
  perName?: boolean | number;
}

/**
 * The snapshot in the Prometheus text format (what a `/metrics` endpoint serves, with
 * `PROMETHEUS_CONTENT_TYPE`). `extraLabels` (e.g. `{ id: locker.id() }`) go on every sample.
 * docs/monitoring.md describes every metric:
 *
 *   locked_names_registered                       gauge, names registered on this host
 *   locked_names_leading                          gauge, names this host leads
 *   locked_leader{name}                           gauge 0/1, per registered name (per-name series only)
 *   locked_queue_position{name}                   gauge, 0 = leading (per-name series only; absent while not queued)
 *   locked_leaderships_started_total{name}        counter (`name` with per-name series only)
 *   locked_leaderships_stopped_total{name,reason} counter, reason one of STOP_REASONS (`name` likewise)
 *   locked_lease_losses_total                     counter
 *   locked_keepalive_rtt_seconds                  histogram
 *   locked_ready, locked_live                     gauge 0/1: health().ready, health().live
 *   locked_lease_ttl_seconds, locked_renew_deadline_seconds, locked_keepalive_interval_seconds,
 *   locked_keepalive_timeout_seconds              gauges: the locker's timings
 */
export function renderPrometheus(snapshot: MetricsSnapshot, extraLabels: Record<string, string> = {}, options: RenderOptions = {}): string {
  const out: string[] = [];
  const head = (name: string, type: 'gauge' | 'counter' | 'histogram', help: string): void => {
    out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, l: Record<string, string>, v: number): void => {
    out.push(`${name}${labels({ ...extraLabels, ...l })} ${num(v)}`);
  };
  const names = Object.entries(snapshot.names).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const registered = names.filter(([, m]) => m.registered);
  const limit = options.perName ?? PER_NAME_SERIES_LIMIT;
  const perName = typeof limit === 'boolean' ? limit : names.length <= limit;

  head('locked_names_registered', 'gauge', 'Names registered on this host.');
  sample('locked_names_registered', {}, registered.length);

  head('locked_names_leading', 'gauge', 'Names this host leads.');
  sample('locked_names_leading', {}, registered.filter(([, m]) => m.leader).length);

  if (perName) {
    head('locked_leader', 'gauge', 'Whether this host leads the name (1) or not (0); one series per name registered on this host.');
    for (const [name, m] of registered) sample('locked_leader', { name }, m.leader ? 1 : 0);

    head('locked_queue_position', 'gauge', 'Place of this host in the queue of the name: 0 = leading, 1 = next.');
    for (const [name, m] of registered) if (m.queuePosition !== undefined) sample('locked_queue_position', { name }, m.queuePosition);
  }

  head('locked_leaderships_started_total', 'counter', 'Leaderships this host started.');
  if (perName) for (const [name, m] of names) sample('locked_leaderships_started_total', { name }, m.leadershipsStarted);
  else
    sample(
      'locked_leaderships_started_total',
      {},
      names.reduce((n, [, m]) => n + m.leadershipsStarted, 0),
    );

  head('locked_leaderships_stopped_total', 'counter', 'Leaderships this host ended, by reason.');
  for (const [name, m] of perName ? names : []) {
    for (const reason of STOP_REASONS) sample('locked_leaderships_stopped_total', { name, reason }, m.leadershipsStopped[reason]);
  }
  if (!perName) {
    for (const reason of STOP_REASONS)
      sample(
        'locked_leaderships_stopped_total',
        { reason },
        names.reduce((n, [, m]) => n + m.leadershipsStopped[reason], 0),
      );
  }

  head(
    'locked_lease_losses_total',
    'counter',
    'Leases this host lost (no keepalive acknowledged within renewDeadline, or expired in etcd).',
  );
  sample('locked_lease_losses_total', {}, snapshot.leaseLosses);

  const h = snapshot.keepaliveRtt;
  head('locked_keepalive_rtt_seconds', 'histogram', 'Round trip of answered lease keepalives.');
  h.buckets.forEach((le, i) => sample('locked_keepalive_rtt_seconds_bucket', { le: num(le) }, h.counts[i]!));
  sample('locked_keepalive_rtt_seconds_bucket', { le: '+Inf' }, h.count);
  sample('locked_keepalive_rtt_seconds_sum', {}, h.sum);
  sample('locked_keepalive_rtt_seconds_count', {}, h.count);

  head('locked_ready', 'gauge', 'Whether this host holds a lease inside its step-down deadline and watches its prefix (1) or not (0).');
  sample('locked_ready', {}, snapshot.ready ? 1 : 0);

  head(
    'locked_live',
    'gauge',
    '0 while a function of this host still runs past its lease TTL since the last acknowledged keepalive, else 1.',
  );
  sample('locked_live', {}, snapshot.live ? 1 : 0);

  const t = snapshot.timing;
  head('locked_lease_ttl_seconds', 'gauge', 'Lease TTL: a crashed host is replaced after at most this long.');
  sample('locked_lease_ttl_seconds', {}, t.ttl);
  head('locked_renew_deadline_seconds', 'gauge', 'A leader steps down this long after sending the last keepalive etcd acknowledged.');
  sample('locked_renew_deadline_seconds', {}, t.renewDeadline);
  head('locked_keepalive_interval_seconds', 'gauge', 'Time between lease keepalives at rest.');
  sample('locked_keepalive_interval_seconds', {}, t.keepaliveInterval);
  head(
    'locked_keepalive_timeout_seconds',
    'gauge',
    'Time limit of one keepalive attempt; a slower answer counts as a failure and the keepalive is sent again.',
  );
  sample('locked_keepalive_timeout_seconds', {}, t.keepaliveTimeout);
  return `${out.join('\n')}\n`;
}
