// The "sick member" section of `npm run bench`: one etcd member misbehaves for 10 s while
// three hosts of this library and three hosts on etcd3's own `Election` each campaign for
// the same six names (their own keys), every host a process of its own, at ttl 4 s. Per
// fault kind and library: step-downs, the longest time a name had no leader, and the
// longest time two hosts led one name at once (from the hosts' own start/stop stamps on
// this machine's monotonic clock).
//
// Fault kinds: a follower or the raft leader cut off from its peers (iptables; needs root,
// the members then run as users locked-etcd0..2 — without root those rows say so),
// frozen (SIGSTOP), and a follower slowed by 1 s each way (TCP proxy). Every host reaches
// the members through proxies and lists the sick member first (where it starts).
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdCluster } from '../test/helpers/etcd.js';
import { spawnHost, type Host } from '../test/helpers/host.js';
import { memberUsers, partitionable, type Partitioner } from '../test/helpers/partition.js';
import { startProxy, type Proxy } from '../test/helpers/proxy.js';
import { now, raftLeader, sleep } from '../test/helpers/sick.js';
import { waitFor } from '../test/helpers/wait.js';
import type { ChildConfig } from './child.js';

const TTL = 4;
const FAULT_MS = 10_000;
/** After the fault ends: leaderless time that outlasts the fault still counts. */
const AFTER_MS = 6_000;
const NAMES = ['s0', 's1', 's2', 's3', 's4', 's5'];
const HOSTS = 3;
const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

export type FaultKind = 'follower cut off' | 'raft leader cut off' | 'follower frozen' | 'raft leader frozen' | 'follower slowed +1 s';
const KINDS: FaultKind[] = ['follower cut off', 'raft leader cut off', 'follower frozen', 'raft leader frozen', 'follower slowed +1 s'];

export interface SickFigures {
  /** Leaderships that ended during the fault or the AFTER_MS after it (a graceful balancing move is none). */
  stepDowns: number;
  /** Of those, the ones after the fault ended (the heal or thaw). */
  afterHeal: number;
  /** Stop reasons of this library's step-downs, e.g. { lost: 2, deposed: 3 }. */
  reasons: Record<string, number>;
  /** Longest stretch (ms) any name had no leader, from the fault's start to AFTER_MS after its end. */
  longestLeaderlessMs: number;
  /** Longest stretch (ms) two hosts led one name at once, by the hosts' own stamps. */
  longestOverlapMs: number;
  /** When the longest overlap began, ms after the fault ended (negative: during the fault). */
  overlapAfterHealMs?: number;
}

export interface SickRow {
  kind: FaultKind;
  /** Why the row has no figures (the fault could not be set up). */
  skipped?: string;
  locked?: SickFigures;
  etcd3?: SickFigures;
}

interface Stamped {
  type: 'start' | 'stop';
  name: string;
  t: bigint;
  host: string;
  /** A graceful move of this library (balancing): the leadership goes on elsewhere, not a step-down. */
  handover?: boolean;
  reason?: string;
}

/** A host on etcd3's `Election` (bench/child.ts, electNames). */
function spawnElector(endpoints: string[], id: string, names: string[]): { child: ChildProcess; events: Stamped[] } {
  const cfg: ChildConfig = { lib: 'etcd3', endpoints, name: '', prefix: '', ttl: TTL, id, electNames: names };
  const child = fork(CHILD, [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
  const events: Stamped[] = [];
  child.on('message', (m: { type?: string; name?: string; t?: string }) => {
    if ((m.type === 'start' || m.type === 'stop') && m.name !== undefined && m.t !== undefined)
      events.push({ type: m.type, name: m.name, t: BigInt(m.t), host: id });
  });
  return { child, events };
}

const ms = (ns: bigint): number => Number(ns) / 1e6;

/** Step-downs, longest leaderless and longest doubly-led stretch per name over [from, to]; the fault ended at `healed`. */
export function figures(events: readonly Stamped[], names: readonly string[], from: bigint, healed: bigint, to: bigint): SickFigures {
  let stepDowns = 0;
  let afterHeal = 0;
  const reasons: Record<string, number> = {};
  let leaderless = 0;
  let overlap = 0;
  let overlapAt: bigint | undefined;
  for (const name of names) {
    const evs = events.filter((e) => e.name === name).sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const leaders = new Set<string>();
    let emptySince: bigint | undefined;
    let doubleSince: bigint | undefined;
    const clip = (x: bigint): bigint => (x < from ? from : x > to ? to : x);
    const endLeaderless = (t: bigint): void => {
      if (emptySince !== undefined) leaderless = Math.max(leaderless, ms(clip(t) - clip(emptySince)));
      emptySince = undefined;
    };
    const endDouble = (t: bigint): void => {
      if (doubleSince !== undefined && ms(clip(t) - clip(doubleSince)) > overlap) {
        overlap = ms(clip(t) - clip(doubleSince));
        overlapAt = doubleSince;
      }
      doubleSince = undefined;
    };
    for (const e of evs) {
      if (e.t > to) break;
      if (e.type === 'start') leaders.add(e.host);
      else {
        leaders.delete(e.host);
        if (e.t >= from && !e.handover) {
          stepDowns++;
          if (e.t >= healed) afterHeal++;
          if (e.reason !== undefined) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
        }
      }
      if (leaders.size === 0) emptySince ??= e.t;
      else endLeaderless(e.t);
      if (leaders.size >= 2) doubleSince ??= e.t;
      else endDouble(e.t);
    }
    // Stretches still open at the end of the window end there.
    endLeaderless(to);
    endDouble(to);
  }
  return {
    stepDowns,
    afterHeal,
    reasons,
    longestLeaderlessMs: Math.round(leaderless),
    longestOverlapMs: Math.round(overlap),
    ...(overlap > 0 && overlapAt !== undefined ? { overlapAfterHealMs: Math.round(ms(overlapAt - healed)) } : {}),
  };
}

async function oneRound(
  kind: FaultKind,
  cluster: EtcdCluster,
  proxies: Proxy[],
  net: Partitioner | undefined,
  round: number,
): Promise<SickRow> {
  const leader = await raftLeader(cluster);
  const sick = kind.startsWith('raft leader') ? leader : (leader + 1) % cluster.members.length;
  const endpoints = [proxies[sick]!.endpoint, ...proxies.filter((_, i) => i !== sick).map((p) => p.endpoint)];
  const prefix = `sickbench${round}/`;
  const hosts: Host[] = [];
  const electors: { child: ChildProcess; events: Stamped[] }[] = [];
  try {
    for (let i = 0; i < HOSTS; i++) {
      hosts.push(await spawnHost({ endpoints, id: `h${i}`, ttl: TTL, prefix, names: NAMES, fn: { kind: 'work' } }));
      electors.push(
        spawnElector(
          endpoints,
          `e${i}`,
          NAMES.map((n) => `${prefix}${n}`),
        ),
      );
    }
    const lockedEvents = (): Stamped[] =>
      hosts.flatMap((h) =>
        h.events
          .filter((e) => (e.type === 'start' || e.type === 'stop') && e.name !== undefined)
          .map((e) => ({
            type: e.type as 'start' | 'stop',
            name: e.name!,
            t: BigInt(e.t),
            host: h.id,
            handover: e.reason === 'handover',
            ...(e.reason !== undefined ? { reason: e.reason } : {}),
          })),
      );
    const led = (evs: Stamped[], names: string[]): boolean => names.every((n) => evs.some((e) => e.name === n && e.type === 'start'));
    await waitFor(
      () =>
        (led(lockedEvents(), NAMES) &&
          led(
            electors.flatMap((e) => e.events),
            NAMES.map((n) => `${prefix}${n}`),
          )) ||
        undefined,
      {
        timeoutMs: 30_000,
        message: 'every name led by both libraries',
      },
    );
    await sleep(2_000); // keepalives and watches have settled on the sick member
    if (kind.startsWith('raft leader') && (await cluster.leaderIndex()) !== sick)
      throw new Error('bench (sick member): the raft leader moved before the fault');
    const from = now();
    const pid = cluster.members[sick]!.pid!;
    if (kind.endsWith('cut off')) net!.cut(sick);
    else if (kind.endsWith('frozen')) process.kill(pid, 'SIGSTOP');
    else proxies[sick]!.delay(1_000);
    let healed: bigint;
    try {
      await sleep(FAULT_MS);
    } finally {
      healed = now();
      if (kind.endsWith('cut off')) net!.heal(sick);
      else if (kind.endsWith('frozen')) process.kill(pid, 'SIGCONT');
      else proxies[sick]!.delay(0);
    }
    await sleep(AFTER_MS);
    const to = now();
    return {
      kind,
      locked: figures(lockedEvents(), NAMES, from, healed, to),
      etcd3: figures(
        electors.flatMap((e) => e.events).map((e) => ({ ...e, name: e.name.slice(prefix.length) })),
        NAMES,
        from,
        healed,
        to,
      ),
    };
  } finally {
    for (const e of electors) e.child.kill('SIGKILL');
    await Promise.all(hosts.map((h) => h.stop()));
    await waitFor(async () => (cluster.members.every((m) => m.isRunning) && (await cluster.leaderIndex()) >= 0) || undefined, {
      timeoutMs: 20_000,
      message: 'the cluster healthy again',
    });
  }
}

/** Every fault kind once (or those of `only`); cut rows need root (else `skipped` says why). */
export async function sickMember(log: (s: string) => void = () => {}, only: readonly FaultKind[] = KINDS): Promise<SickRow[]> {
  let users: ReturnType<typeof memberUsers> | undefined;
  let why: string | undefined;
  try {
    users = memberUsers(3);
  } catch (e) {
    why = (e as Error).message;
  }
  const cluster = await startEtcd({ members: 3, ...(users ? { users } : {}), extraArgs: ['--pre-vote'] });
  const proxies: Proxy[] = [];
  let net: Partitioner | undefined;
  try {
    for (const ep of cluster.endpoints) proxies.push(await startProxy(ep));
    if (users) {
      try {
        net = await partitionable(cluster, users);
      } catch (e) {
        why = (e as Error).message;
      }
    }
    const rows: SickRow[] = [];
    let round = 0;
    for (const kind of only) {
      log(` ${kind}`);
      if (kind.endsWith('cut off') && !net) {
        rows.push({ kind, skipped: why ?? 'no partitioner' });
        continue;
      }
      rows.push(await oneRound(kind, cluster, proxies, net, round++));
    }
    return rows;
  } finally {
    await net?.close();
    for (const p of proxies) await p.close();
    await cluster.close();
  }
}

/** Markdown rows of the section. */
export function sickTable(rows: readonly SickRow[]): string[] {
  const downs = (f: SickFigures): string => {
    const why = Object.entries(f.reasons).map(([r, n]) => `${n} ${r}`);
    return `${f.stepDowns}${f.stepDowns ? ` (${f.afterHeal} after the heal${why.length ? `; ${why.join(', ')}` : ''})` : ''}`;
  };
  const over = (f: SickFigures): string =>
    `${f.longestOverlapMs} ms${f.overlapAfterHealMs === undefined ? '' : f.overlapAfterHealMs >= 0 ? ` (${f.overlapAfterHealMs} ms after the heal)` : ' (during the fault)'}`;
  const cell = (f: SickFigures | undefined): string =>
    f ? `${downs(f)} | ${(f.longestLeaderlessMs / 1000).toFixed(1)} s | ${over(f)}` : '— | — | —';
  return [
    `| sick member (ttl ${TTL} s, ${FAULT_MS / 1000} s fault, ${HOSTS} hosts × ${NAMES.length} names) | locked: step-downs | longest leaderless | longest overlap | etcd3 Election: step-downs | longest leaderless | longest overlap |`,
    '|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      r.skipped ? `| ${r.kind} | not run: ${r.skipped} | | | | | |` : `| ${r.kind} | ${cell(r.locked)} | ${cell(r.etcd3)} |`,
    ),
  ];
}
