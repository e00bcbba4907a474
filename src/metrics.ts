// The figures a locker keeps about itself, for probes and dashboards: fed by a few
// one-line hooks (singleton.ts: start/stop; locker.ts: lease lost; the keepalive round
// trip is timed around the store's keepAlive), read as a plain snapshot, and rendered
// in the Prometheus text exposition format without any metrics dependency.
import type { Clock } from './clock.js';
import type { StopReason } from './singleton.js';
import type { Store } from './store.js';

/** Upper bounds (seconds) of the keepalive round-trip histogram buckets; `+Inf` is implied. */
export const KEEPALIVE_RTT_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const STOP_REASONS: readonly StopReason[] = ['removed', 'lost', 'deposed', 'error', 'unhealthy', 'handover', 'closed'];

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
      c = { started: 0, stopped: { removed: 0, lost: 0, deposed: 0, error: 0, unhealthy: 0, handover: 0, closed: 0 } };
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

  /** `live`: the registered singletons' leader flag and queue position, read now. */
  snapshot(id: string, live: ReadonlyMap<string, { leader: boolean; queuePosition: number | undefined }>): MetricsSnapshot {
    const names: Record<string, NameMetrics> = {};
    for (const name of new Set([...live.keys(), ...this.counts.keys()])) {
      const c = this.counts.get(name);
      const l = live.get(name);
      names[name] = {
        leader: l?.leader ?? false,
        queuePosition: l?.queuePosition,
        leadershipsStarted: c?.started ?? 0,
        leadershipsStopped: { ...(c?.stopped ?? { removed: 0, lost: 0, deposed: 0, error: 0, unhealthy: 0, handover: 0, closed: 0 }) },
      };
    }
    return {
      id,
      names,
      leaseLosses: this.losses,
      keepaliveRtt: { buckets: KEEPALIVE_RTT_BUCKETS, counts: [...this.rttCounts], sum: this.rttSum, count: this.rttCount },
    };
  }
}

/** `store` with every answered keepAlive timed (the session's own code stays untouched). @internal */
export function timedKeepalive(store: Store, clock: Clock, observe: (ms: number) => void): Store {
  return {
    grant: (ttl, timeoutMs) => store.grant(ttl, timeoutMs),
    keepAlive: async (leaseId, timeoutMs, attempt) => {
      const sent = clock.now();
      const ttl = await store.keepAlive(leaseId, timeoutMs, attempt);
      observe(clock.now() - sent);
      return ttl;
    },
    revoke: (leaseId, timeoutMs) => store.revoke(leaseId, timeoutMs),
    campaign: (requests, timeoutMs) => store.campaign(requests, timeoutMs),
    resign: (key, guard, timeoutMs) => store.resign(key, guard, timeoutMs),
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

/**
 * The snapshot in the Prometheus text format (what a `/metrics` endpoint serves, with
 * `PROMETHEUS_CONTENT_TYPE`). `extraLabels` (e.g. `{ id: locker.id() }`) go on every sample.
 *
 *   locked_leader{name}                          gauge 0/1
 *   locked_queue_position{name}                  gauge, 0 = leading (absent while not queued)
 *   locked_leaderships_started_total{name}       counter
 *   locked_leaderships_stopped_total{name,reason} counter (removed, lost, deposed, error, closed)
 *   locked_lease_losses_total                    counter
 *   locked_keepalive_rtt_seconds                 histogram
 */
export function renderPrometheus(snapshot: MetricsSnapshot, extraLabels: Record<string, string> = {}): string {
  const out: string[] = [];
  const head = (name: string, type: 'gauge' | 'counter' | 'histogram', help: string): void => {
    out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, l: Record<string, string>, v: number): void => {
    out.push(`${name}${labels({ ...extraLabels, ...l })} ${num(v)}`);
  };
  const names = Object.entries(snapshot.names).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

  head('locked_leader', 'gauge', 'Whether this host leads the name (1) or not (0).');
  for (const [name, m] of names) sample('locked_leader', { name }, m.leader ? 1 : 0);

  head('locked_queue_position', 'gauge', 'Place of this host in the queue of the name: 0 = leading, 1 = next.');
  for (const [name, m] of names) if (m.queuePosition !== undefined) sample('locked_queue_position', { name }, m.queuePosition);

  head('locked_leaderships_started_total', 'counter', 'Leaderships of the name this host started.');
  for (const [name, m] of names) sample('locked_leaderships_started_total', { name }, m.leadershipsStarted);

  head('locked_leaderships_stopped_total', 'counter', 'Leaderships of the name this host ended, by reason.');
  for (const [name, m] of names) {
    for (const reason of STOP_REASONS) sample('locked_leaderships_stopped_total', { name, reason }, m.leadershipsStopped[reason]);
  }

  head('locked_lease_losses_total', 'counter', 'Leases this host lost (no keepalive acknowledged within renewDeadline, or expired in etcd).');
  sample('locked_lease_losses_total', {}, snapshot.leaseLosses);

  const h = snapshot.keepaliveRtt;
  head('locked_keepalive_rtt_seconds', 'histogram', 'Round trip of answered lease keepalives.');
  h.buckets.forEach((le, i) => sample('locked_keepalive_rtt_seconds_bucket', { le: num(le) }, h.counts[i]!));
  sample('locked_keepalive_rtt_seconds_bucket', { le: '+Inf' }, h.count);
  sample('locked_keepalive_rtt_seconds_sum', {}, h.sum);
  sample('locked_keepalive_rtt_seconds_count', {}, h.count);
  return `${out.join('\n')}\n`;
}
