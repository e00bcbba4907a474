/**
 * The history checker: merges the event lists of every host process (stamped with
 * process.hrtime.bigint(), CLOCK_MONOTONIC, shared by all processes of one machine)
 * and the fault stamps recorded by the test, and judges them.
 *
 *   const report = checkHistories(hosts.map(historyOf), { endOfRun: process.hrtime.bigint() });
 *   assert.deepEqual(report.overlaps, []);
 *   assert.deepEqual(report.fencing.violations, []);
 *
 * A leadership is [start.t, end] where end is its 'stop' event or, failing that, the
 * process's SIGKILL stamp (taken by the test right after the kill), its exit, or the end
 * of the run. A process cannot act while SIGSTOPped, so a leadership's *running*
 * segments are the leadership minus the pauses; two leaderships of a name overlap when
 * running segments of different processes intersect.
 *
 * Two overlaps are tolerated and reported apart, each bounded by `graceMs`:
 * - `wakeOverlaps`: a process woken from a pause past its step-down deadline still holds
 *   its leadership until its deadline timer runs, i.e. for the few milliseconds between
 *   SIGCONT and its 'stop'. Nothing in a process can prevent that window.
 * - `deposeOverlaps`: after a forced failover (someone else deletes the leader's key,
 *   listed in `deletes`), the old and the new leader learn it from the same watch event,
 *   so the new one may start a millisecond before the old one stops ('deposed'); an old
 *   leader cut off from etcd at that moment cannot hear of the delete at all and stops at
 *   its step-down deadline instead ('lost'), still within `graceMs` of the delete.
 * In both, etcd had already moved on: the fencing token makes the window harmless (the
 * old leader's guarded writes are rejected), and the fencing check proves it.
 */
import type { HostEvent } from './host.js';

/** A SIGSTOP … SIGCONT interval of a process; `to` undefined: still stopped at the end. */
export interface Pause {
  from: bigint;
  to?: bigint;
  /** Not a SIGSTOP: the process reported that its event loop stalled this long (starved of CPU). */
  stall?: true;
}

/** Everything the checker needs to know about one host process. */
export interface ProcessHistory {
  /** Unique per process: host id plus incarnation, e.g. 'h2#3'. */
  label: string;
  /** Host slot: the same for every incarnation of a host (faults are aimed at hosts). */
  host: string;
  events: readonly HostEvent[];
  /** Stamp taken right after the test sent SIGKILL. */
  killedAt?: bigint;
  /** Stamp taken when the parent saw the process exit (any cause). */
  exitedAt?: bigint;
  pauses?: readonly Pause[];
}

/** A fault as the test injected it, for judging leaderless gaps. */
export interface FaultWindow {
  kind: string;
  from: bigint;
  /** Healed at; undefined: still active at the end of the run. */
  to?: bigint;
  /** The host the fault was aimed at (blackhole, pause, kill); undefined for etcd faults. */
  host?: string;
  /** The cluster could not decide during the fault (quorum loss): no leader is owed meanwhile. */
  blocksDecisions?: boolean;
}

export interface LeadershipSpan {
  name: string;
  label: string;
  host: string;
  token: string;
  start: bigint;
  end: bigint;
  endedBy: 'stop' | 'killed' | 'exited' | 'end-of-run';
  /** Stop reason, when endedBy is 'stop' — or 'killed'/'exited' after the stop was reported, while fn still settled. */
  reason?: string;
  /** The leadership minus the pauses of its process. */
  running: [bigint, bigint][];
}

export interface Overlap {
  name: string;
  a: { label: string; token: string };
  b: { label: string; token: string };
  from: bigint;
  to: bigint;
  ms: number;
}

/** A leadership that was still held when its process was woken: how long it took to stop. */
export interface WakeStop {
  name: string;
  label: string;
  token: string;
  pausedAt: bigint;
  wokeAt: bigint;
  end: bigint;
  endedBy: LeadershipSpan['endedBy'];
  reason?: string;
  /** end − wokeAt */
  ms: number;
}

export interface AcceptedWrite {
  name: string;
  label: string;
  token: string;
  revision: bigint;
  seq: number | undefined;
  sent: bigint | undefined;
  t: bigint;
}

export interface FencingViolation {
  name: string;
  /** The write accepted although… */
  write: AcceptedWrite;
  /** …this write with a larger token had been accepted at a lower revision. */
  newer: AcceptedWrite;
}

/** A time when nobody ran a name, between the end of one leadership and the start of the next. */
export interface Gap {
  name: string;
  /** Process whose leadership (or running segment) ended the gap's start. */
  prev: string;
  prevHost: string;
  from: bigint;
  /** Start of the next leadership; undefined: nobody led at the end of the run. */
  to: bigint | undefined;
  ms: number;
  /** From the later of `from` and the heal of every excusing fault, to `to` (or the end of the run). */
  effectiveFrom: bigint;
  effectiveMs: number;
}

export interface CheckOptions {
  /** Stamp of the end of the run: leaderships still open end here. */
  endOfRun: bigint;
  faults?: readonly FaultWindow[];
  /** Keys deleted by the test (operator, failover): the deposed leader may overlap the next one briefly. */
  /**
   * Keys deleted by someone else (operator, forced failover): `at` when the delete was
   * issued, `until` (if known) when its command returned — it took effect in between.
   */
  deletes?: readonly { name: string; at: bigint; until?: bigint }[];
  /** A woken or deposed leader must stop within this long of the wake or the delete (default 1000 ms). */
  graceMs?: number;
  /**
   * 'fn' (default): a leadership lasts from its start until fn's promise settled — what
   * overlap means to users. 'signal': until the library aborted fn's signal ('stop'), for
   * tests whose fn ignores its signal on purpose (zombie writes that only the fence stops).
   */
  spans?: 'fn' | 'signal';
}

export interface HistoryReport {
  names: string[];
  leaderships: LeadershipSpan[];
  /** Must be empty. */
  overlaps: Overlap[];
  /** Tolerated overlaps right after a wake, each ending with a stop within graceMs. */
  wakeOverlaps: Overlap[];
  /** Tolerated overlaps right after a recorded delete of the leader's key, each ending with a stop ('deposed') within graceMs. */
  deposeOverlaps: Overlap[];
  wakeStops: WakeStop[];
  fencing: {
    accepted: number;
    rejected: number;
    failed: number;
    /** Must be empty. */
    violations: FencingViolation[];
  };
  gaps: Gap[];
  /** The gap with the longest effectiveMs (the worst time to a new leader), if any. */
  worstGap: Gap | undefined;
  /** Leaderships still running at the end of the run, by name. */
  leadersAtEnd: Record<string, string[]>;
  /** Oddities in the event lists (start while leading, stop without start, …): should be empty. */
  anomalies: string[];
}

const NS_PER_MS = 1_000_000n;
export const ms = (ns: bigint): number => Number(ns) / 1e6;
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** Leadership spans of one process. */
export function leadershipsOf(
  h: ProcessHistory,
  endOfRun: bigint,
  anomalies: string[] = [],
  spanMode: 'fn' | 'signal' = 'fn',
): LeadershipSpan[] {
  const open = new Map<string, { token: string; start: bigint }>();
  const spans: LeadershipSpan[] = [];
  /** Token of the fn running per name (between 'fn' and 'fn-end'). */
  const fnRunning = new Map<string, string | undefined>();
  /** Names whose leadership stopped while fn still ran: the span ends at 'fn-end'. */
  const stopping = new Map<string, string | undefined>();
  const close = (name: string, end: bigint, endedBy: LeadershipSpan['endedBy'], reason?: string): void => {
    const o = open.get(name);
    if (!o) return;
    open.delete(name);
    const span: LeadershipSpan = { name, label: h.label, host: h.host, token: o.token, start: o.start, end, endedBy, running: [] };
    if (reason !== undefined) span.reason = reason;
    span.running = runningSegments(o.start, end, h.pauses ?? [], endOfRun);
    spans.push(span);
  };
  for (const ev of h.events) {
    if (ev.name === undefined) continue;
    if (ev.type === 'start') {
      if (open.has(ev.name)) {
        anomalies.push(
          `${h.label}: start of '${ev.name}' (token ${ev.token}) while already leading it (token ${open.get(ev.name)!.token})`,
        );
        close(ev.name, BigInt(ev.t), 'stop', 'anomaly');
      }
      open.set(ev.name, { token: ev.token ?? '?', start: BigInt(ev.t) });
    } else if (ev.type === 'stop') {
      if (!open.has(ev.name)) anomalies.push(`${h.label}: stop of '${ev.name}' (${ev.reason}) without a start`);
      else if (ev.token !== undefined && open.get(ev.name)!.token !== ev.token) {
        anomalies.push(`${h.label}: stop of '${ev.name}' with token ${ev.token}, but the leadership has token ${open.get(ev.name)!.token}`);
      }
      // A leadership lasts until fn's promise has settled, not just until its signal aborted.
      if (spanMode === 'fn' && fnRunning.get(ev.name) === ev.token && ev.token !== undefined) stopping.set(ev.name, ev.reason);
      else close(ev.name, BigInt(ev.t), 'stop', ev.reason);
    } else if (ev.type === 'fn') {
      fnRunning.set(ev.name, ev.token);
    } else if (ev.type === 'fn-end') {
      if (fnRunning.get(ev.name) === ev.token) fnRunning.delete(ev.name);
      if (stopping.has(ev.name) && open.get(ev.name)?.token === ev.token) {
        const reason = stopping.get(ev.name);
        stopping.delete(ev.name);
        close(ev.name, BigInt(ev.t), 'stop', reason);
      }
    }
  }
  // Still open: the process died or the run ended. The earliest known end counts.
  const ends: [bigint, LeadershipSpan['endedBy']][] = [];
  if (h.killedAt !== undefined) ends.push([h.killedAt, 'killed']);
  if (h.exitedAt !== undefined) ends.push([h.exitedAt, 'exited']);
  ends.push([endOfRun, 'end-of-run']);
  ends.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const name of [...open.keys()]) {
    const start = open.get(name)!.start;
    // A kill stamp earlier than the start means the start was reported by a process
    // already doomed (stamps race): end it at its own start.
    const [end, by] = ends[0]!;
    // A stop already reported (fn was still settling when the process died) keeps its reason.
    close(name, max(end, start), by, stopping.get(name));
  }
  return spans;
}

/** [start, end] minus the pauses. */
function runningSegments(start: bigint, end: bigint, pauses: readonly Pause[], endOfRun: bigint): [bigint, bigint][] {
  let segs: [bigint, bigint][] = [[start, end]];
  for (const p of pauses) {
    const pFrom = p.from;
    const pTo = p.to ?? max(endOfRun, end);
    const next: [bigint, bigint][] = [];
    for (const [s, e] of segs) {
      if (pTo <= s || pFrom >= e) {
        next.push([s, e]);
        continue;
      }
      if (pFrom > s) next.push([s, pFrom]);
      if (pTo < e) next.push([pTo, e]);
    }
    segs = next;
  }
  return segs;
}

/** Judges the histories of every process that took part in a run. */
export function checkHistories(histories: readonly ProcessHistory[], opts: CheckOptions): HistoryReport {
  const graceNs = BigInt(Math.round((opts.graceMs ?? 1000) * 1e6));
  const deletes = opts.deletes ?? [];
  const anomalies: string[] = [];
  const leaderships = histories.flatMap((h) => leadershipsOf(h, opts.endOfRun, anomalies, opts.spans));
  const byLabel = new Map(histories.map((h) => [h.label, h]));
  const names = [...new Set(histories.flatMap((h) => h.events.filter((e) => e.name !== undefined).map((e) => e.name!)))].sort();

  // ——— overlaps ———
  const overlaps: Overlap[] = [];
  const wakeOverlaps: Overlap[] = [];
  /** Running time of `l` from `from` to its end (its pauses left out). */
  const runningAfter = (l: LeadershipSpan, from: bigint): bigint =>
    l.running.reduce((sum, [a, b]) => sum + (b > from ? b - max(a, from) : 0n), 0n);
  const deposeOverlaps: Overlap[] = [];
  for (const name of names) {
    const segs = leaderships
      .filter((l) => l.name === name)
      .flatMap((l) => l.running.map(([s, e]) => ({ l, s, e })))
      .filter((x) => x.e > x.s)
      .sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    for (let i = 0; i < segs.length; i++) {
      for (let j = i + 1; j < segs.length && segs[j]!.s < segs[i]!.e; j++) {
        const x = segs[i]!;
        const y = segs[j]!;
        if (x.l.label === y.l.label) continue;
        const from = max(x.s, y.s);
        const to = min(x.e, y.e);
        if (to <= from) continue;
        const o: Overlap = {
          name,
          a: { label: x.l.label, token: x.l.token },
          b: { label: y.l.label, token: y.l.token },
          from,
          to,
          ms: ms(to - from),
        };
        const woke = (seg: typeof x): boolean => {
          const h = byLabel.get(seg.l.label);
          const wokeHere = (h?.pauses ?? []).some((p) => p.to === seg.s);
          // The overlap lies in a segment right after a wake, and the leadership ends (with a
          // 'stop', or the process's death) within the grace period of running time from
          // there: the woken host stopped as soon as it could. Running time, because a stall
          // right after the wake (a starved CPU) splits the rest in segments and delays the
          // end without the host having run (seen in chaos: a 50 ms segment between the wake
          // and a 435 ms stall, the stop in the next one).
          return wokeHere && seg.l.endedBy !== 'end-of-run' && runningAfter(seg.l, seg.s) <= graceNs;
        };
        const deposed = (seg: typeof x, other: typeof x): boolean =>
          seg.e === seg.l.end &&
          // Ended by its stop — or killed, or cut by the end of the run, while fn settled after
          // a stop it had reported (its reason kept): the leader had let go; only fn's
          // wind-down was cut short.
          (seg.l.endedBy === 'stop' || seg.l.reason !== undefined) &&
          // 'lost': the leader was cut off from etcd when its key was deleted, so it could
          // not hear of it and stopped at its step-down deadline instead. 'handover': it had
          // begun a graceful move (balancing) before the delete reached it — the same
          // leadership on a deleted key, stopping for the move instead (seen once in chaos:
          // 14 ms after the next leader started on the delete).
          (seg.l.reason === 'deposed' || seg.l.reason === 'lost' || seg.l.reason === 'handover') &&
          // The other leadership began after the delete, and this one stopped soon after it.
          // This one may even have begun after the delete command returned: a host judges on
          // its watch, which may not have delivered the delete yet (a revision that also
          // ended its predecessor's lease, applied first: seen in chaos, 50 ms behind). Such
          // a leadership stands on a key etcd no longer has — its fence fails — and must
          // stop within the grace of the delete like any deposed one.
          deletes.some((d) => d.name === name && d.at <= other.s && seg.l.end - max(d.at, seg.l.start) <= graceNs);
        if (woke(x) || woke(y)) wakeOverlaps.push(o);
        else if (deposed(x, y) || deposed(y, x)) deposeOverlaps.push(o);
        else overlaps.push(o);
      }
    }
  }

  // ——— stops after a wake ———
  const wakeStops: WakeStop[] = [];
  for (const h of histories) {
    for (const p of h.pauses ?? []) {
      if (p.to === undefined) continue;
      for (const l of leaderships) {
        if (l.label !== h.label || !(l.start < p.from && l.end > p.to)) continue;
        const w: WakeStop = {
          name: l.name,
          label: l.label,
          token: l.token,
          pausedAt: p.from,
          wokeAt: p.to,
          end: l.end,
          endedBy: l.endedBy,
          ms: ms(l.end - p.to),
        };
        if (l.reason !== undefined) w.reason = l.reason;
        wakeStops.push(w);
      }
    }
  }

  // ——— fencing ———
  let rejected = 0;
  let failed = 0;
  const accepted: AcceptedWrite[] = [];
  for (const h of histories) {
    for (const ev of h.events) {
      if (ev.type !== 'write' || ev.name === undefined) continue;
      if (ev.ok && ev.revision !== undefined) {
        accepted.push({
          name: ev.name,
          label: h.label,
          token: ev.token ?? '0',
          revision: BigInt(ev.revision),
          seq: ev.seq,
          sent: ev.sent !== undefined ? BigInt(ev.sent) : undefined,
          t: BigInt(ev.t),
        });
      } else if (ev.message !== undefined) failed++;
      else rejected++;
    }
  }
  const violations: FencingViolation[] = [];
  for (const name of names) {
    const ws = accepted.filter((w) => w.name === name).sort((a, b) => (a.revision < b.revision ? -1 : a.revision > b.revision ? 1 : 0));
    let newest: AcceptedWrite | undefined;
    for (const w of ws) {
      if (newest && BigInt(w.token) < BigInt(newest.token)) violations.push({ name, write: w, newer: newest });
      else if (!newest || BigInt(w.token) > BigInt(newest.token)) newest = w;
    }
  }

  // ——— gaps and time to a new leader ———
  const gaps: Gap[] = [];
  const faults = opts.faults ?? [];
  for (const name of names) {
    const segs = leaderships
      .filter((l) => l.name === name)
      .flatMap((l) => l.running.map(([s, e]) => ({ l, s, e })))
      .sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    // Sweep the union of running segments; every hole after the first start is a gap.
    let cover: { e: bigint; l: LeadershipSpan } | undefined;
    for (const seg of segs) {
      if (cover && seg.s > cover.e) gaps.push(gap(name, cover.l, cover.e, seg.s));
      if (!cover || seg.e > cover.e) cover = { e: seg.e, l: seg.l };
    }
    if (cover && cover.e < opts.endOfRun) gaps.push(gap(name, cover.l, cover.e, undefined));
  }
  function gap(name: string, prev: LeadershipSpan, from: bigint, to: bigint | undefined): Gap {
    const until = to ?? opts.endOfRun;
    let effectiveFrom = from;
    for (const f of faults) {
      const fTo = f.to ?? opts.endOfRun;
      const excuses = f.blocksDecisions === true || (f.host !== undefined && f.host !== prev.host);
      // A fault active at some time during the gap delays the decision until it heals.
      if (excuses && f.from < until && fTo > from) effectiveFrom = max(effectiveFrom, min(fTo, until));
    }
    return {
      name,
      prev: prev.label,
      prevHost: prev.host,
      from,
      to,
      ms: ms(until - from),
      effectiveFrom,
      effectiveMs: ms(until - effectiveFrom),
    };
  }
  const worstGap = gaps.reduce<Gap | undefined>((w, g) => (!w || g.effectiveMs > w.effectiveMs ? g : w), undefined);

  const leadersAtEnd: Record<string, string[]> = {};
  for (const name of names) {
    leadersAtEnd[name] = leaderships.filter((l) => l.name === name && l.endedBy === 'end-of-run').map((l) => l.label);
  }

  return {
    names,
    leaderships,
    overlaps,
    wakeOverlaps,
    deposeOverlaps,
    wakeStops,
    fencing: { accepted: accepted.length, rejected, failed, violations },
    gaps,
    worstGap,
    leadersAtEnd,
    anomalies,
  };
}

/** A one-paragraph account of a report, for assertion messages. */
export function describeReport(r: HistoryReport): string {
  const lines = [
    `${r.leaderships.length} leaderships of ${r.names.length} name(s); ${r.overlaps.length} overlap(s); ${r.wakeOverlaps.length} post-wake and ${r.deposeOverlaps.length} post-delete overlap(s) (tolerated); ` +
      `fenced writes: ${r.fencing.accepted} accepted, ${r.fencing.rejected} rejected, ${r.fencing.failed} failed, ${r.fencing.violations.length} violation(s)` +
      (r.worstGap
        ? `; worst time to a new leader ${r.worstGap.effectiveMs.toFixed(0)} ms ('${r.worstGap.name}' after ${r.worstGap.prev})`
        : ''),
  ];
  for (const o of r.overlaps.slice(0, 10)) {
    lines.push(`  OVERLAP '${o.name}': ${o.a.label} (token ${o.a.token}) and ${o.b.label} (token ${o.b.token}) for ${o.ms.toFixed(3)} ms`);
  }
  for (const v of r.fencing.violations.slice(0, 10)) {
    lines.push(
      `  FENCING '${v.name}': ${v.write.label} token ${v.write.token} accepted at revision ${v.write.revision} after ${v.newer.label} token ${v.newer.token} at revision ${v.newer.revision}`,
    );
  }
  for (const a of r.anomalies.slice(0, 10)) lines.push(`  ANOMALY ${a}`);
  return lines.join('\n');
}

/** Leadership spans as readable lines (relative to `t0`), for failure messages. */
export function timeline(r: HistoryReport, t0: bigint): string {
  return r.leaderships
    .slice()
    .sort((a, b) => (a.start < b.start ? -1 : 1))
    .map(
      (l) =>
        `  ${l.name} ${l.label} token ${l.token}: ${rel(l.start, t0)} → ${rel(l.end, t0)} (${l.endedBy}${l.reason ? ` ${l.reason}` : ''})`,
    )
    .join('\n');
}

const rel = (t: bigint, t0: bigint): string => `${(Number(t - t0) / 1e6 / 1000).toFixed(3)} s`;

export const nsFromMs = (x: number): bigint => BigInt(Math.round(x)) * NS_PER_MS;

/** The checker's view of a test/helpers/host.ts Host (or anything shaped like one). */
export function historyOf(
  h: { id: string; events: readonly HostEvent[]; killedAt?: bigint | undefined; exitedAt?: bigint | undefined; pauses?: readonly Pause[] },
  label: string = h.id,
  host: string = h.id,
): ProcessHistory {
  const out: ProcessHistory = { label, host, events: h.events };
  if (h.killedAt !== undefined) out.killedAt = h.killedAt;
  if (h.exitedAt !== undefined) out.exitedAt = h.exitedAt;
  // A stall the process reported (its 50 ms timer ran `ms` late) is a pause it did not ask
  // for: neither fn nor the step-down timer ran. Counted like a SIGSTOP, so a leader that
  // stops right after it is judged like a woken one (wakeOverlaps), never hidden.
  const stalls: Pause[] = h.events
    .filter((e) => e.type === 'stall' && (e.ms ?? 0) >= 200)
    .map((e) => ({ from: BigInt(e.t) - BigInt(Math.round(e.ms!)) * 1_000_000n, to: BigInt(e.t), stall: true }));
  if (h.pauses || stalls.length) out.pauses = [...(h.pauses ?? []), ...stalls];
  return out;
}
