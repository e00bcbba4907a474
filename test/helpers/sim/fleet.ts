// Fleet scenarios of balancing in the deterministic simulation: H hosts × N names start at
// once; the run records when the leaderships are spread, then SIGKILLs one host (right after
// the spread, or during it) and counts what follows: leadership starts, the fewest possible,
// how many hosts took the victim's names, and when every name was led at one moment again.
// test/sim/fleet.test.ts asserts on it; `node .build/test/helpers/sim/fleet.js [hosts] [names]
// [killAt: spread|wave|<ms>] [seed]` prints one run (larger fleets: the bench, with real etcd).
import { World, type SimHost, type WorldOptions } from './world.js';

export interface FleetResult {
  spreadAt: number | undefined;
  killAt: number;
  /** Leadership starts on the survivors from the kill until quiet. */
  startsAfterKill: number;
  /** The victim's names (failovers) + the fewest moves to re-spread. */
  fewest: number;
  /** Hosts that took at least one of the victim's names at its failover. */
  failoverTo: number;
  /** Virtual ms from the kill until every name had a leader again (at one moment). */
  allLedMs: number | undefined;
  /** Virtual ms from the kill until spread over the survivors. */
  respreadMs: number | undefined;
  /** Per-name ms from the kill to its next start, for the victim's names. */
  relead: number[];
  violations: string[];
  loads: Record<string, number>;
}

/**
 * `killAt`: 'spread' — the moment the leaderships are spread; 'wave' — once the balancing
 * wave is under way (a hand-over has happened) and the victim leads at least one name; a
 * number — at that time.
 */
export async function fleet(hosts: number, names: number, killAt: 'spread' | 'wave' | number, seed = 1, ttl = 5): Promise<FleetResult> {
  const res: FleetResult = {
    spreadAt: undefined,
    killAt: -1,
    startsAfterKill: 0,
    fewest: 0,
    failoverTo: 0,
    allLedMs: undefined,
    respreadMs: undefined,
    relead: [],
    violations: [],
    loads: {},
  };
  const nameList = Array.from({ length: names }, (_, i) => `n${i}`);
  const horizon = 60_000;
  let victim: SimHost | undefined;
  const victimNames = new Set<string>();
  const firstStart = new Map<string, number>();
  const receivers = new Set<string>();
  let waveStarted = false;
  const w = fleetWorld({
    seed,
    hosts,
    names,
    horizonMs: horizon,
    ttl,
    script: (w) => {
      for (const h of w.hosts) for (const n of nameList) w.register(h, n, 'work');
      for (const h of w.hosts) {
        for (const n of nameList) {
          h.locker.singletons()[n]!.on('stop', (reason) => {
            if (reason === 'handover') waveStarted = true;
          });
          h.locker.singletons()[n]!.on('start', () => {
            if (!victim || w.sched.now < res.killAt) return;
            res.startsAfterKill++;
            if (victimNames.has(n) && !firstStart.has(n)) {
              firstStart.set(n, w.sched.now);
              receivers.add(h.id);
            }
          });
        }
      }
      const spread = (live: SimHost[]): boolean => spreadOver(loadsOf(live, nameList), names);
      const kill = (): void => {
        victim = w.hosts[1]!;
        res.killAt = w.sched.now;
        const loads = loadsOf(w.hosts, nameList);
        const before = new Map(w.hosts.map((h, i) => [h.id, loads[i]!]));
        for (const n of nameList) if (victim.locker.singletons()[n]?.isLeader) victimNames.add(n);
        const live = w.hosts.filter((h) => h !== victim);
        const hi = Math.ceil(names / live.length);
        const lo = Math.floor(names / live.length);
        let surplus = victimNames.size;
        let deficit = 0;
        for (const h of live) {
          surplus += Math.max(0, before.get(h.id)! - hi);
          deficit += Math.max(0, lo - before.get(h.id)!);
        }
        res.fewest = Math.max(surplus, deficit);
        w.kill(victim);
      };
      const tick = (): void => {
        const live = w.hosts.filter((h) => h.alive);
        if (res.spreadAt === undefined && spread(live)) {
          res.spreadAt = w.sched.now;
          if (killAt === 'spread') kill();
        }
        if (typeof killAt === 'number' && !victim && w.sched.now >= killAt) kill();
        if (killAt === 'wave' && !victim && waveStarted && loadsOf([w.hosts[1]!], nameList)[0]! > 0) kill();
        if (victim) {
          const live = w.hosts.filter((h) => h.alive);
          const allLed = nameList.every((n) => live.some((h) => h.locker.singletons()[n]?.isLeader));
          if (allLed && res.allLedMs === undefined) res.allLedMs = w.sched.now - res.killAt;
          if (res.respreadMs === undefined && spread(live)) res.respreadMs = w.sched.now - res.killAt;
        }
        if (w.sched.now < horizon) w.at(w.sched.now + 10, tick);
      };
      w.at(10, tick);
    },
  });
  const r = await w.run();
  res.violations = r.violations.map((v) => `${v.at}: ${v.what}`);
  res.failoverTo = receivers.size;
  res.relead = [...firstStart.values()].map((t) => t - res.killAt).sort((a, b) => a - b);
  return res;
}

/** A fleet's world: no random faults, quick lossless links; `script` registers and kills. */
const fleetWorld = (o: Pick<WorldOptions, 'seed' | 'hosts' | 'names' | 'horizonMs' | 'ttl' | 'script'>): World =>
  new World({ ...o, faults: 0, latency: [1, 4], lossAfterApply: 0 });

/** Names each of `live` leads now. */
const loadsOf = (live: readonly SimHost[], nameList: readonly string[]): number[] =>
  live.map((h) => nameList.filter((n) => h.locker.singletons()[n]?.isLeader).length);

/** Every one of `names` led, each host within ⌊N/H⌋..⌈N/H⌉. */
const spreadOver = (loads: readonly number[], names: number): boolean =>
  loads.reduce((a, b) => a + b, 0) === names &&
  loads.every((x) => x >= Math.floor(names / loads.length) && x <= Math.ceil(names / loads.length));

export interface StartResult {
  /** Virtual ms from the last host's registration until every name is led and every host within ⌊N/H⌋..⌈N/H⌉. */
  spreadMs: number | undefined;
  /** Virtual ms from the last host's registration until every name is led (at one moment). */
  allLedMs: number | undefined;
  /** Leadership hand-overs (stops for 'handover') before the spread. */
  movesBefore: number;
  violations: string[];
  /** Names led per live host at the spread. */
  loads: Record<string, number>;
}

/**
 * A fleet's start: host i registers its `names` names at i × `staggerMs` (a fleet's hosts
 * boot within moments of each other). `partial`: a host that registers only the first k names
 * (joining like the others, it never campaigns for the rest); `kill`: SIGKILL of a host
 * at a virtual time (during the start gate's hold, say). The run records when the leaderships
 * are spread over the live hosts and how many moved on the way. Balancing on, no other fault;
 * the simulation's invariants (no overlap, starts only when first in etcd, …) hold throughout.
 */
export async function fleetStart(
  hosts: number,
  names: number,
  staggerMs: number,
  seed = 1,
  ttl = 3,
  opts: {
    readonly partial?: { readonly host: number; readonly names: number };
    readonly kill?: { readonly host: number; readonly at: number };
  } = {},
): Promise<StartResult> {
  const res: StartResult = { spreadMs: undefined, allLedMs: undefined, movesBefore: 0, violations: [], loads: {} };
  const nameList = Array.from({ length: names }, (_, i) => `n${i}`);
  const lastStart = (hosts - 1) * staggerMs;
  const w = fleetWorld({
    seed,
    hosts,
    names,
    horizonMs: lastStart + 8_000,
    ttl,
    script: (w) => {
      w.hosts.forEach((h, i) => {
        const mine = opts.partial?.host === i ? nameList.slice(0, opts.partial.names) : nameList;
        w.at(i * staggerMs, () => {
          for (const n of mine) {
            w.register(h, n, 'work');
            h.locker.singletons()[n]!.on('stop', (reason) => {
              if (reason === 'handover' && res.spreadMs === undefined) res.movesBefore++;
            });
          }
        });
      });
      const tick = (): void => {
        if (res.spreadMs !== undefined) return;
        const live = w.hosts.filter((h) => h.alive);
        const loads = loadsOf(live, nameList);
        const all = loads.reduce((a, b) => a + b, 0) === names;
        if (all && res.allLedMs === undefined && w.sched.now >= lastStart) res.allLedMs = w.sched.now - lastStart;
        if (w.sched.now >= lastStart && spreadOver(loads, names)) {
          res.spreadMs = w.sched.now - lastStart;
          live.forEach((h, i) => (res.loads[h.id] = loads[i]!));
          return;
        }
        w.at(w.sched.now + 10, tick);
      };
      w.at(10, tick);
      const k = opts.kill;
      if (k) w.at(k.at, () => w.kill(w.hosts[k.host]!));
    },
  });
  const r = await w.run();
  res.violations = r.violations.map((v) => `${v.at}: ${v.what}`);
  return res;
}

if (process.argv[1]?.endsWith('fleet.js') && process.argv[2] === 'start') {
  const [h = '3', n = '240', st = '100', s = '1'] = process.argv.slice(3);
  const t0 = Date.now();
  const r = await fleetStart(Number(h), Number(n), Number(st), Number(s));
  console.log(JSON.stringify({ ...r, violations: r.violations.slice(0, 5), realMs: Date.now() - t0 }, null, 1));
} else if (process.argv[1]?.endsWith('fleet.js')) {
  const [h = '8', n = '400', k = 'spread', s = '1'] = process.argv.slice(2);
  const t0 = Date.now();
  const r = await fleet(Number(h), Number(n), k === 'spread' || k === 'wave' ? k : Number(k), Number(s));
  const q = (p: number): number | undefined => r.relead[Math.min(r.relead.length - 1, Math.floor(p * r.relead.length))];
  console.log(
    JSON.stringify(
      {
        ...r,
        relead: { n: r.relead.length, p50: q(0.5), p99: q(0.99), max: r.relead.at(-1) },
        violations: r.violations.slice(0, 5),
        realMs: Date.now() - t0,
      },
      null,
      1,
    ),
  );
}
