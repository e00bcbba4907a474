// Shared pieces of the sick-member tests (isolated-member, slow-member): hosts as
// processes on one cluster, step-down accounting, the raft-leader sampler, and the
// "healthy again after the fault" check.
import type { EtcdCluster } from './etcd.js';
import { leadersOf, spawnHost, type Host, type HostEvent } from './host.js';
import { within } from './balance.js';
import { waitFor } from './wait.js';
import { ms } from './history.js';

export const now = (): bigint => process.hrtime.bigint();
export const sleep = (m: number): Promise<void> => new Promise((r) => setTimeout(r, m));
export const uniquePrefix = (tag: string): string => `${tag}${Math.random().toString(36).slice(2, 8)}/`;
/**
 * How long these tests wait for a state before failing: several ttls and then some. They
 * assert states and orders, never speed: how long a step took is a t.diagnostic figure, and
 * failover timings live in `npm run bench`.
 */
export const deadlineMs = (ttl: number): number => 3 * ttl * 1000 + 30_000;

/** `n` hosts (processes) registering `names`, each with its own endpoint list (default the cluster's). */
export async function hostsOn(
  endpoints: string[] | ((i: number) => string[]),
  prefix: string,
  names: string[],
  ttl: number,
  n = 3,
): Promise<Host[]> {
  const hs: Host[] = [];
  for (let i = 0; i < n; i++) {
    const eps = typeof endpoints === 'function' ? endpoints(i) : endpoints;
    // probes: every lease revoke a host sends shows in its events (the timeline on a failure).
    const h = await spawnHost({ endpoints: eps, id: `h${i}`, ttl, prefix, names, fn: { kind: 'work' }, probes: true });
    hs.push(h);
    await h.waitEvent((e) => e.type === 'session', 20_000, 'session');
  }
  return hs;
}

/**
 * Hosts started on the raft leader (`endpointsFor(leader)` puts it first), settled, with
 * the raft leader still the same member: raft leadership can move while the hosts start
 * (a member healed by the test before rejoins with a higher term), which would make "the
 * raft leader" of the test a follower. Up to `tries` times: stop the hosts and start again.
 */
export async function hostsOnRaftLeader(
  cluster: EtcdCluster,
  endpointsFor: (leader: number) => string[],
  prefix: string,
  names: string[],
  ttl: number,
  tries = 3,
): Promise<{ sick: number; hs: Host[] }> {
  for (let attempt = 1; ; attempt++) {
    const sick = await raftLeader(cluster);
    const hs = await hostsOn(endpointsFor(sick), prefix, names, ttl);
    await settled(cluster, hs, names);
    const now = await cluster.leaderIndex();
    if (now === sick) return { sick, hs };
    await Promise.all(hs.map((h) => h.stop()));
    if (attempt >= tries) throw new Error(`the raft leader moved while hosts started, ${tries} times (m${sick} → m${now})`);
  }
}

/**
 * One leader per name, every live host queued for every name, and the names spread
 * (⌊N/H⌋..⌈N/H⌉ a host): then balancing has nothing left to move, so a test that picks a
 * leader or cuts a member next does not race a hand-over (CI saw both: a victim that had just
 * handed its name over, a name leaderless while its new leader's watch sat on a frozen member).
 */
export async function settled(cluster: EtcdCluster, hs: Host[], names: string[]): Promise<void> {
  await waitFor(
    async () => {
      for (const n of names) if (leadersOf(hs, n).length !== 1) return undefined;
      const live = hs.filter((h) => h.alive);
      const counts = new Map(live.map((h) => [h.config.id!, names.filter((n) => h.leads(n)).length]));
      if (!within(counts, [...counts.keys()], names.length)) return undefined;
      const keys = await cluster.keys(hs[0]!.config.prefix!);
      return keys.length === names.length * live.length || undefined;
    },
    { timeoutMs: 30_000, intervalMs: 20, message: 'one leader per name, every host queued, the names spread' },
  );
}

/** Index of the raft leader (waits for one). */
export async function raftLeader(cluster: EtcdCluster): Promise<number> {
  const r = await waitFor(
    async () => {
      const i = await cluster.leaderIndex();
      return i >= 0 ? { i } : undefined; // (index 0 is falsy)
    },
    { timeoutMs: 20_000, message: 'a raft leader' },
  );
  return r.i;
}

/**
 * Step-downs ('stop' events) of live hosts after `since`, as `host name reason` lines.
 * Balance moves ('handover': graceful, the receiver starts after the old fn settled —
 * after a crash failover the survivors even out) are deliberate, not step-downs.
 */
export function stopsSince(hs: Host[], since: bigint, until?: bigint): string[] {
  return hs
    .filter((h) => h.alive)
    .flatMap((h) =>
      h.events
        .filter((e) => isStepDown(e) && BigInt(e.t) > since && (until === undefined || BigInt(e.t) <= until))
        .map((e) => `${h.id} ${e.name} ${e.reason}`),
    );
}

/** A leadership that ended for any reason but a deliberate graceful move (balance, drain, failover request). */
export const isStepDown = (e: HostEvent): boolean => e.type === 'stop' && e.reason !== 'handover';

/** Waits (up to `timeoutMs`: make it generous) until every live host reports health().ok with its watch connected; returns ms since `from`, a figure to report. */
export async function allHealthy(hs: Host[], from: bigint, timeoutMs: number): Promise<number> {
  const alive = hs.filter((h) => h.alive);
  await waitFor(
    async () => {
      for (const h of alive) {
        const health = await h.request<{ ok: boolean; watchConnected: boolean }>({ op: 'health' });
        if (!health.ok || !health.watchConnected) return undefined;
      }
      return true;
    },
    { timeoutMs, intervalMs: 20, message: 'every host healthy with its watch connected' },
  );
  return ms(now() - from);
}

/**
 * Waits (up to `timeoutMs`: make it generous) until every live host has had a keepalive
 * acknowledged that it sent after `since` (health().lastKeepaliveAgoMs, read against the time
 * of the request). From then on, whatever happened before `since` can no longer cost a host its
 * session: its step-down deadline counts from that keepalive. Returns ms since `since`.
 */
export async function renewedSince(hs: Host[], since: bigint, timeoutMs: number): Promise<number> {
  const alive = hs.filter((h) => h.alive);
  await waitFor(
    async () => {
      for (const h of alive) {
        const asked = now();
        const health = await h.request<{ lastKeepaliveAgoMs?: number }>({ op: 'health' });
        const ago = health.lastKeepaliveAgoMs;
        if (ago === undefined || asked - BigInt(Math.round(ago * 1e6)) <= since) return undefined;
      }
      return true;
    },
    { timeoutMs, intervalMs: 50, message: 'every host with a keepalive acknowledged that it sent after the heal' },
  );
  return ms(now() - since);
}

/**
 * Samples, every ~50 ms, whether some member outside `excluded()` is the raft leader;
 * stop() returns the leaderless intervals (ms) seen, longest first. `leaderBackAt` is when
 * the last leaderless interval ended (a member outside `excluded()` led again), if any.
 */
export function leaderSampler(
  cluster: EtcdCluster,
  excluded: () => ReadonlySet<number>,
): { stop(): Promise<number[]>; readonly leaderBackAt: bigint | undefined } {
  let running = true;
  const gaps: number[] = [];
  let leaderBackAt: bigint | undefined;
  const loop = (async () => {
    let since: bigint | undefined;
    while (running) {
      const ex = excluded();
      const leads = await Promise.all(
        cluster.members.map(async (m, i) => {
          if (ex.has(i) || !m.isRunning) return false;
          try {
            return /^etcd_server_is_leader 1$/m.test(await cluster.metrics(i));
          } catch {
            return false;
          }
        }),
      );
      const t = now();
      if (leads.some(Boolean)) {
        if (since !== undefined) {
          gaps.push(ms(t - since));
          leaderBackAt = t;
        }
        since = undefined;
      } else since ??= t;
      await sleep(50);
    }
    if (since !== undefined) gaps.push(ms(now() - since));
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return gaps.sort((a, b) => b - a);
    },
    get leaderBackAt() {
      return leaderBackAt;
    },
  };
}

export interface HealthFigures {
  /** Samples of a live host whose health().ok was false, as `host +ms` lines. */
  notOk: string[];
  /** Largest lastKeepaliveAgoMs seen (ms since the send of the last acknowledged keepalive). */
  maxKeepaliveAgoMs: number;
  /** Longest stretch (ms) any host reported its watch disconnected. */
  maxWatchDownMs: number;
}

/**
 * Polls health() of every live host every ~100 ms until stop(): whether it stayed ok,
 * how stale its keepalives got, how long its watch was down. Hosts that die (or do not
 * answer) are left out from then on.
 */
export function healthSampler(hs: Host[]): { stop(): Promise<HealthFigures> } {
  let running = true;
  const t0 = now();
  const fig: HealthFigures = { notOk: [], maxKeepaliveAgoMs: 0, maxWatchDownMs: 0 };
  const downSince = new Map<Host, bigint>();
  const loop = (async () => {
    while (running) {
      await Promise.all(
        hs.map(async (h) => {
          if (!h.alive) return;
          let health: { ok: boolean; watchConnected: boolean; lastKeepaliveAgoMs?: number };
          try {
            health = await h.request({ op: 'health' });
          } catch {
            return; // died meanwhile
          }
          if (!h.alive) return;
          const t = now();
          if (!health.ok) fig.notOk.push(`${h.id} +${ms(t - t0).toFixed(0)} ms`);
          fig.maxKeepaliveAgoMs = Math.max(fig.maxKeepaliveAgoMs, health.lastKeepaliveAgoMs ?? 0);
          if (!health.watchConnected) {
            const since = downSince.get(h) ?? t;
            downSince.set(h, since);
            fig.maxWatchDownMs = Math.max(fig.maxWatchDownMs, ms(t - since));
          } else downSince.delete(h);
        }),
      );
      await sleep(100);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return fig;
    },
  };
}

/**
 * SIGKILLs the host leading `name` and waits (a generous deadline) until survivors lead every
 * name it led, one leader each — a crash failover during a fault, as on a healthy cluster.
 * How long it took is reported, not judged (no overlap is judged by the caller's checker).
 */
export async function crashFailover(
  t: { diagnostic(s: string): void },
  hs: Host[],
  names: string[],
  ttl: number,
  label: string,
  name = 'a',
): Promise<void> {
  // The fault began after settled(), and what it set off may have `name` between two
  // leaders (a step-down, a hand-over): nobody leads it from the old leader's stop to the new
  // one's start. Take the leader once there is one.
  const victim = await waitFor(() => leadersOf(hs, name)[0], {
    timeoutMs: 10_000,
    intervalMs: 10,
    message: `a leader of '${name}' to kill`,
  });
  const led = names.filter((n) => victim.leads(n));
  victim.kill('SIGKILL');
  const killedAt = now();
  const survivors = hs.filter((h) => h !== victim);
  const took = await waitFor(() => (led.every((n) => leadersOf(survivors, n).length === 1) ? now() : undefined), {
    timeoutMs: deadlineMs(ttl),
    intervalMs: 10,
    message: `a standby leads ${led.join(',')}`,
  });
  const failoverMs = ms(took - killedAt);
  t.diagnostic(`${label}: ${led.length} name(s) led again ${failoverMs.toFixed(0)} ms after SIGKILL (ttl ${ttl * 1000})`);
}

/**
 * A raft leader's fault that began at `since`: each name stepped down at most once, and one
 * that did was led again afterwards by a leadership that started after that step-down (no
 * overlap: the checker of the caller judges every pair). Waits (a generous deadline) until
 * every name has one leader; one leader per name at the end. How long after `since` — or
 * after `raftBackAt`, when the healthy members elected their raft leader, if later: until
 * then etcd serves nobody, and a lease left to expire gets a full ttl from that election —
 * each name was led again is reported, not judged.
 */
export async function assertLedAgain(
  t: { diagnostic(s: string): void },
  hs: Host[],
  names: string[],
  since: bigint,
  ttl: number,
  what: string,
  raftBackAt?: bigint,
): Promise<void> {
  await waitFor(() => names.every((n) => leadersOf(hs, n).length === 1) || undefined, {
    timeoutMs: deadlineMs(ttl),
    intervalMs: 20,
    message: `one leader of every name after the ${what}`,
  }).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${names.map((n) => eventsSince(hs, since, n)).join('\n')}`);
  });
  const stops = stopsSince(hs, since);
  t.diagnostic(`step-downs during the ${what}: ${stops.length}${stops.length ? ` (${stops.join('; ')})` : ''}`);
  const from = raftBackAt !== undefined && raftBackAt > since ? raftBackAt : since;
  const fromWhat =
    from === since ? `the ${what} began` : `the healthy members elected a raft leader (${ms(from - since).toFixed(0)} ms into the ${what})`;
  for (const n of names) {
    const mine = hs.flatMap((h) => h.events.filter((e) => isStepDown(e) && e.name === n && BigInt(e.t) > since));
    if (mine.length > 1) throw new Error(`'${n}' stepped down ${mine.length} times: ${stops.join('; ')}`);
    if (mine.length === 0) continue;
    // The order: nobody else started `n` while the leadership that stepped down ran (from
    // its start to its step-down), and someone started it after the step-down.
    const stoppedAt = BigInt(mine[0]!.t);
    const stopper = hs.find((h) => h.events.includes(mine[0]!))!;
    const ranFrom = stopper.events.filter((e) => e.type === 'start' && e.name === n && BigInt(e.t) < stoppedAt).at(-1);
    const early = hs.filter(
      (h) =>
        h !== stopper &&
        h.events.some((e) => e.type === 'start' && e.name === n && BigInt(e.t) > BigInt(ranFrom?.t ?? '0') && BigInt(e.t) < stoppedAt),
    );
    if (early.length)
      throw new Error(
        `'${n}' started on ${early.map((h) => h.id).join(', ')} before ${stopper.id} stepped down\n${eventsSince(hs, since, n)}`,
      );
    const next = hs
      .flatMap((h) => h.events.filter((e) => e.type === 'start' && e.name === n && BigInt(e.t) > stoppedAt))
      .map((e) => BigInt(e.t))
      .sort((a, b) => (a < b ? -1 : 1))[0];
    if (next === undefined) throw new Error(`'${n}' not led again after its step-down\n${eventsSince(hs, since, n)}`);
    t.diagnostic(`'${n}' led again ${ms(next - from).toFixed(0)} ms after ${fromWhat} (ttl ${ttl * 1000})`);
  }
  for (const n of names) if (leadersOf(hs, n).length !== 1) throw new Error(`not one leader of '${n}' at the end of the ${what}`);
}

/** Every host's events since `since` that bear on `name` (and its sessions), one line each, for a failure message. */
export function eventsSince(hs: Host[], since: bigint, name: string): string {
  const lines = hs.flatMap((h) =>
    h.events
      .filter(
        (e) =>
          BigInt(e.t) > since &&
          (e.name === undefined ? ['session', 'lost', 'error', 'revoke', 'watch', 'stall'].includes(e.type) : e.name === name),
      )
      .map((e) => {
        const { t, type, ...rest } = e;
        return { t: BigInt(t), line: `${(ms(BigInt(t) - since) / 1000).toFixed(3)} s ${h.id} ${type} ${JSON.stringify(rest)}` };
      }),
  );
  return lines
    .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0))
    .map((l) => l.line)
    .join('\n');
}
