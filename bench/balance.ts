// The balance section of `npm run bench` (issue #24, item 5): fleets of host processes
// (bench/child.ts) on one etcd, ttl 5 s, every figure taken from the hosts' own stamps.
//
//   start  8 hosts × 2,000 names started at once: every name led and every host within
//          ⌊N/H⌋..⌈N/H⌉, from the last host's start (its process running);
//   join   a 9th host: its share, from the moment its campaigns are all in (every key in its
//          view); moves vs the fewest;
//   crash  SIGKILL of one host right after the join's spread (standbys not given time to
//          settle): per-name re-lead from the kill to the name's next start elsewhere, the
//          moment every name is led at once, moves vs the fewest, hosts the names went to;
//   drain  one host drained: moves/s of the wave, moves vs the fewest;
//   zone   3 zones × 3 hosts (the locker option `zone` where it exists), right after their
//          spread all three hosts of one zone SIGKILLed: every name led again;
//   big    2 hosts × 100,000 names, the second registering after the first leads all: its
//          campaigns in, balanced after that.
// Every scenario has a deadline (a scenario that misses it reports why and how far it got)
// and is checked for fn running on two hosts at once. Smaller runs for development:
//   node .build/bench/bench.js --only=balance --balance-names=300 --balance-hosts=4 --balance-big=5000
// (--balance-only=fleet,zone,big runs only those scenarios; bench/results.json is then left as it was)
// and --balance-dump=DIR writes every fleet's stamped events there (JSON) to look into a figure.
import { join } from 'node:path';
import locked from '../src/index.js';
import { LOCKER_SCHEMA } from '../src/api/options.js';
import type { EtcdCluster } from '../test/helpers/etcd.js';
import { Fleet, SLOW_STALL_MS, stamp, type FleetHost, type StallFigures } from './fleet.js';
import { LoadSampler, describeLoad, type LoadFigures } from './load.js';
import { dist, type Dist } from './stats.js';
import { fewest, type Timeline } from './timeline.js';

// ——— settings ———

const TTL = 5;
const flag = (name: string, dflt: number): number => {
  const v = process.argv.find((a) => a.startsWith(`--${name}=`));
  return v === undefined ? dflt : Number(v.slice(name.length + 3));
};
const NAMES = flag('balance-names', 2_000);
const HOSTS = flag('balance-hosts', 8);
const BIG = flag('balance-big', 100_000);
const ZONES = 3;
const PER_ZONE = 3;
/** ms each wait may take before its scenario fails with what it was waiting for. */
const DEADLINE = {
  start: 90_000,
  join: 60_000,
  crash: 60_000,
  drain: 60_000,
  zoneSpread: 60_000,
  zoneLoss: 30_000,
  bigLead: 90_000,
  bigIn: 45_000,
  bigBalanced: 60_000,
};
/** Leaderships have settled when no start or stop arrived for this long (waited for at most QUIET_MAX_MS). */
const QUIET_MS = 1_500;
const QUIET_MAX_MS = 20_000;
/** --balance-dump=DIR: each fleet's hosts, errors and stamped events as DIR/balance-<fleet>.json, to look into a figure. */
const DUMP = process.argv.find((a) => a.startsWith('--balance-dump='))?.slice('--balance-dump='.length);
const dumpTo = (fleet: string): string | undefined => (DUMP === undefined ? undefined : join(DUMP, `balance-${fleet}.json`));
/** --balance-only=fleet,zone,big: run only these scenarios (the others report "not run"), to look into one figure. */
const ONLY = process.argv
  .find((a) => a.startsWith('--balance-only='))
  ?.slice('--balance-only='.length)
  .split(',');
const runs = (scenario: 'fleet' | 'zone' | 'big'): boolean => ONLY === undefined || ONLY.includes(scenario);
/** The moves one change may cost: the issue's floor. */
const MOVES_OVER_FEWEST = 1.1;

// ——— results ———

interface Common {
  /** Why figures are missing: a deadline passed, a host died. */
  error?: string;
  /** The machine during the measured part. */
  load?: LoadFigures;
  /** The hosts' event loops meanwhile: the worst stall of any host (a stall near the renew deadline costs sessions). */
  stall?: StallFigures;
  /** fn of one name running on two hosts at once: `name host+host at ms after the scenario began`. Must be empty. */
  overlaps: string[];
  /** Locker errors the hosts reported meanwhile, by message. */
  errors: Record<string, number>;
  /** Leadership stops meanwhile, by reason ('handover': a graceful move; 'lost', 'deposed'…: a step-down). */
  stops: Record<string, number>;
  seconds: number;
}

export interface StartRow extends Common {
  names: number;
  hosts: number;
  /** From the first host's process running to the last one's. */
  bootSpanMs?: number;
  /** From the last host's start until every name is led and every host within ⌊N/H⌋..⌈N/H⌉. */
  spreadMs?: number;
  /** From the first host's start until every name is led. */
  allLedMs?: number;
  /** Leadership starts of names already led, until the spread / after it until leaderships settled. */
  moves?: number;
  movesAfter?: number;
  /** No start or stop for QUIET_MS within QUIET_MAX_MS after the spread. */
  settled?: boolean;
}

export interface JoinRow extends Common {
  /** From the joining host's start until its campaigns are all in. */
  inMs?: number;
  /** From its campaigns all in until it has its share (negative: before they were all in). */
  shareMs?: number;
  moves?: number;
  fewest?: number;
}

export interface CrashRow extends Common {
  victim: string;
  /** Names the victim led at the kill. */
  victimNames?: number;
  /** Per name: kill → its next start on another host (ms). */
  relead?: Dist;
  notReled?: number;
  /** Kill → every name of the fleet led at one moment. */
  allLedMs?: number;
  /** Kill → every live host within ⌊N/H⌋..⌈N/H⌉ again. */
  spreadMs?: number;
  /** Leadership starts after the kill (failovers included) until settled; the fewest possible. */
  moves?: number;
  fewest?: number;
  /** Hosts the victim's names first went to. */
  wentTo?: Record<string, number>;
  settled?: boolean;
}

export interface DrainRow extends Common {
  drained: string;
  moves?: number;
  fewest?: number;
  /** Moves over the wave: from the drained host's first stop to the last start. */
  movesPerSecond?: number;
  waveMs?: number;
  /** Drain ordered → every other host within ⌊N/H⌋..⌈N/H⌉ and the drained one leading nothing. */
  doneMs?: number;
  settled?: boolean;
}

export interface ZoneRow extends Common {
  /** Hosts were started with the locker option `zone` (false: it does not exist in this version). */
  zoneOption: boolean;
  /** First spread over the 9 hosts, from the last host's start (context). */
  spreadMs?: number;
  /** The zone was killed without a spread before (it did not come within its deadline; every name was led). */
  notSpread?: string;
  victimNames?: number;
  relead?: Dist;
  notReled?: number;
  /** First kill → every name led again at one moment. */
  allLedMs?: number;
}

export interface BigRow extends Common {
  names: number;
  /** First host: from its start until it leads every name (context). */
  firstLeadsMs?: number;
  /** Second host: from its start until its campaigns are all in. */
  inMs?: number;
  /** Names in its view when the wait for them ended (all, unless it failed). */
  inCount?: number;
  /** From its campaigns all in until both lead N/2 (negative: before). */
  balancedMs?: number;
  /** Names the second host led when the wait for the balance ended. */
  secondLeads?: number;
  moves?: number;
  fewest?: number;
}

export interface BalanceResults {
  ttl: number;
  start: StartRow;
  join: JoinRow;
  crash: CrashRow;
  drain: DrainRow;
  zone: ZoneRow;
  big: BigRow;
}

// ——— running a measured part ———

interface Phase {
  t0: number;
  t1: number;
  load: LoadFigures;
  error?: string;
}

/** Runs `work` with the load sampled; a failure becomes `error` (the next scenario of the same fleet is then not run). */
async function phase(work: () => Promise<void>): Promise<Phase> {
  const sampler = new LoadSampler();
  const t0 = stamp();
  let error: string | undefined;
  try {
    await work();
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  return { t0, t1: stamp(), load: sampler.stop(), ...(error !== undefined ? { error } : {}) };
}

/** Overlaps, errors and event-loop stalls stamped in [from, to), load and wall time of `p`. */
function common(fleet: Fleet, tl: Timeline, p: Phase | undefined, from: number, to: number, why?: string): Common {
  const overlaps = tl
    .overlaps(fleet.ids)
    .filter((o) => o.t >= from && o.t < to)
    .map((o) => `n${o.name} ${o.a}+${o.b} at ${((o.t - from) / 1000).toFixed(2)} s`);
  const errors: Record<string, number> = {};
  for (const e of fleet.errors) if (e.t >= from && e.t < to) errors[e.message] = (errors[e.message] ?? 0) + 1;
  const stops: Record<string, number> = {};
  for (const e of tl.between(from, to, 'p')) stops[e.r ?? '?'] = (stops[e.r ?? '?'] ?? 0) + 1;
  const error = p?.error ?? why;
  const stall = fleet.stalls(from, to);
  return {
    ...(error !== undefined ? { error } : {}),
    ...(p ? { load: p.load } : {}),
    ...(stall ? { stall } : {}),
    overlaps,
    errors,
    stops,
    seconds: p ? Math.round((p.t1 - p.t0) / 100) / 10 : 0,
  };
}

/** Per name of `names`, from its host's kill to its next start on another host; hosts it went to. */
function releads(
  tl: Timeline,
  fleet: Fleet,
  names: Map<number, number>,
  to: number,
): { relead: Dist; notReled: number; wentTo: Record<string, number> } {
  const pending = new Map(names);
  const samples: number[] = [];
  const wentTo: Record<string, number> = {};
  const from = Math.min(...names.values());
  for (const e of tl.events) {
    if (e.t > to || pending.size === 0) break;
    if (e.t < from || e.k !== 's') continue;
    const killed = pending.get(e.i);
    if (killed === undefined || e.t < killed) continue;
    pending.delete(e.i);
    samples.push(e.t - killed);
    const id = fleet.ids[e.h]!;
    wentTo[id] = (wentTo[id] ?? 0) + 1;
  }
  return { relead: dist(samples), notReled: pending.size, wentTo };
}

/** Names each of `victims` led just before its kill → the kill stamp. */
function ledAtKill(tl: Timeline, victims: FleetHost[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const v of victims) {
    const p = tl.before(v.killedAt!);
    for (let i = 0; i < tl.names; i++) if (p.leads(v.h, i)) out.set(i, v.killedAt!);
  }
  return out;
}

const since = (t: number | undefined, t0: number | undefined): number | undefined =>
  t === undefined || t0 === undefined ? undefined : t - t0;
const notRun = (what: string): string => `not run: ${what}`;

// ——— start, join, crash, drain: one fleet ———

async function fleetScenarios(
  cluster: EtcdCluster,
  log: (s: string) => void,
): Promise<Pick<BalanceResults, 'start' | 'join' | 'crash' | 'drain'>> {
  const prefix = 'bench/balance/fleet/';
  const fleet = new Fleet({ endpoints: cluster.endpoints, prefix, names: NAMES, ttl: TTL });
  // The observer leads nothing: its ttl only sets its request deadlines (2/3 of it), and its
  // drain() reads the hosts first — at ttl 5 that read timed out on the loaded machine
  // (3.33 s) and the drain went unmeasured.
  const observer = locked(cluster.endpoints, { id: 'bench-observer', ttl: 30, prefix, handleSignals: false });
  observer.on('error', () => {});
  const hosts: FleetHost[] = [];
  const ix = (xs: FleetHost[]): number[] => xs.map((x) => x.h);
  let joiner: FleetHost | undefined;
  const victim = (): FleetHost => hosts[1]!;
  const drained = (): FleetHost => hosts[2]!;
  let startSettled = false;
  let crashSettled = false;
  let drainSettled = false;
  let td = 0;
  let pStart: Phase, pJoin: Phase | undefined, pCrash: Phase | undefined, pDrain: Phase | undefined;
  try {
    await observer.ready();
    log(' start');
    pStart = await phase(async () => {
      for (let i = 0; i < HOSTS; i++) hosts.push(fleet.spawn(`h${i}`));
      await fleet.until(
        () => hosts.every((x) => x.boot !== undefined) && fleet.live.spread(ix(hosts)),
        DEADLINE.start,
        `every name led and spread over ${HOSTS} hosts after a simultaneous start`,
      );
      // Moves still under way would count against the join.
      startSettled = await fleet.quiet(QUIET_MS, QUIET_MAX_MS);
    });
    if (!pStart.error) {
      log(' join');
      pJoin = await phase(async () => {
        const j = (joiner = fleet.spawn(`h${HOSTS}`));
        await fleet.until(
          () => j.in !== undefined && fleet.live.spread(ix([...hosts, j])),
          DEADLINE.join,
          `a joining host's campaigns in (${j.inCount} of ${NAMES} so far) and its share`,
        );
      });
    }
    if (pJoin && !pJoin.error) {
      // At once: standbys get no time to settle after the join (the case the issue measured).
      log(' crash');
      pCrash = await phase(async () => {
        fleet.kill(victim());
        const live = ix([...hosts, joiner!].filter((x) => x !== victim()));
        await fleet.until(() => fleet.live.spread(live), DEADLINE.crash, `every name led and spread again after a SIGKILL`);
        crashSettled = await fleet.quiet(QUIET_MS, QUIET_MAX_MS);
      });
    }
    if (pCrash && !pCrash.error) {
      log(' drain');
      pDrain = await phase(async () => {
        let failed: unknown;
        td = stamp();
        observer.drain({ nodeId: drained().id }).catch((e: unknown) => (failed = e));
        const rest = ix([...hosts, joiner!].filter((x) => x !== victim() && x !== drained()));
        await fleet.until(
          () => {
            if (failed !== undefined) throw failed;
            return fleet.live.spread(rest);
          },
          DEADLINE.drain,
          `the drained host leading nothing and the rest spread`,
        );
        drainSettled = await fleet.quiet(QUIET_MS, QUIET_MAX_MS);
      });
    }
  } finally {
    await fleet.close();
    await observer.close();
  }
  const tl = await fleet.timeline(dumpTo('fleet'));
  const end = stamp();

  // start
  const boots = hosts.map((x) => x.boot).filter((t): t is number => t !== undefined);
  const firstBoot = boots.length ? Math.min(...boots) : undefined;
  const lastBoot = boots.length === HOSTS ? Math.max(...boots) : undefined;
  const startEnd = pJoin?.t0 ?? end;
  const spreadAt = lastBoot === undefined ? undefined : tl.first(lastBoot, (p) => p.spread(ix(hosts)), pStart.t1);
  const start: StartRow = {
    ...common(fleet, tl, pStart, pStart.t0, startEnd),
    names: NAMES,
    hosts: HOSTS,
    ...(firstBoot !== undefined && lastBoot !== undefined ? { bootSpanMs: lastBoot - firstBoot } : {}),
    ...(spreadAt !== undefined ? { spreadMs: spreadAt - lastBoot! } : {}),
    ...(firstBoot !== undefined
      ? {
          allLedMs: since(
            tl.first(firstBoot, (p) => p.led === NAMES, pStart.t1),
            firstBoot,
          ),
        }
      : {}),
    ...(spreadAt !== undefined
      ? { moves: tl.moves(pStart.t0, spreadAt), movesAfter: tl.moves(spreadAt, pStart.t1), settled: startSettled }
      : {}),
  };

  // join
  let join: JoinRow;
  if (!pJoin) join = { ...common(fleet, tl, undefined, 0, 0, notRun('the start failed')) };
  else {
    const j = joiner!;
    const all = ix([...hosts, j]);
    const shareAt = j.boot === undefined ? undefined : tl.first(j.boot, (p) => p.spread(all), pJoin.t1);
    join = {
      ...common(fleet, tl, pJoin, pJoin.t0, pCrash?.t0 ?? end),
      ...(j.in !== undefined && j.boot !== undefined ? { inMs: j.in - j.boot } : {}),
      ...(shareAt !== undefined && j.in !== undefined
        ? { shareMs: shareAt - j.in, moves: tl.moves(pJoin.t0, shareAt), fewest: fewest(tl.before(pJoin.t0).loads(), all, NAMES) }
        : {}),
    };
  }

  // crash
  let crash: CrashRow;
  if (!pCrash) crash = { ...common(fleet, tl, undefined, 0, 0, notRun('the join failed')), victim: victim()?.id ?? 'h1' };
  else {
    const v = victim();
    const tk = v.killedAt!;
    const live = ix([...hosts, joiner!].filter((x) => x !== v));
    const named = ledAtKill(tl, [v]);
    const { relead, notReled, wentTo } = releads(tl, fleet, named, pCrash.t1);
    crash = {
      ...common(fleet, tl, pCrash, pCrash.t0, pDrain?.t0 ?? end),
      victim: v.id,
      victimNames: named.size,
      relead,
      notReled,
      allLedMs: since(
        tl.first(tk, (p) => p.led === NAMES, pCrash.t1),
        tk,
      ),
      spreadMs: since(
        tl.first(tk, (p) => p.spread(live), pCrash.t1),
        tk,
      ),
      moves: tl.between(tk, pCrash.t1, 's').length,
      fewest: fewest(tl.before(tk).loads(), live, NAMES),
      wentTo,
      settled: crashSettled,
    };
  }

  // drain
  let drain: DrainRow;
  if (!pDrain) drain = { ...common(fleet, tl, undefined, 0, 0, notRun('the crash failed')), drained: drained()?.id ?? 'h2' };
  else {
    const d = drained();
    const rest = ix([...hosts, joiner!].filter((x) => x !== victim() && x !== d));
    const starts = tl.between(td, pDrain.t1, 's');
    const firstStop = tl.between(td, pDrain.t1, 'p').find((e) => e.h === d.h)?.t;
    const lastStart = starts.at(-1)?.t;
    const wave = firstStop !== undefined && lastStart !== undefined ? lastStart - firstStop : undefined;
    drain = {
      ...common(fleet, tl, pDrain, pDrain.t0, end),
      drained: d.id,
      moves: starts.length,
      fewest: fewest(tl.before(td).loads(), rest, NAMES),
      ...(wave !== undefined && wave > 0 ? { waveMs: wave, movesPerSecond: starts.length / (wave / 1000) } : {}),
      doneMs: since(
        tl.first(td, (p) => p.spread(rest), pDrain.t1),
        td,
      ),
      settled: drainSettled,
    };
  }
  return { start, join, crash, drain };
}

// ——— zone: 3 zones × 3 hosts, one zone SIGKILLed ———

async function zoneScenario(cluster: EtcdCluster, log: (s: string) => void): Promise<ZoneRow> {
  const zoneOption = 'zone' in LOCKER_SCHEMA;
  const fleet = new Fleet({ endpoints: cluster.endpoints, prefix: 'bench/balance/zones/', names: NAMES, ttl: TTL });
  const hosts: FleetHost[] = [];
  let pSpread: Phase, pLoss: Phase | undefined;
  let notSpread: string | undefined;
  const lost = (): FleetHost[] => hosts.filter((x) => x.id.startsWith('z0'));
  try {
    log(' zones');
    pSpread = await phase(async () => {
      for (let z = 0; z < ZONES; z++)
        for (let k = 0; k < PER_ZONE; k++) hosts.push(fleet.spawn(`z${z}h${k}`, zoneOption ? `z${z}` : undefined));
      try {
        await fleet.until(
          () => hosts.every((x) => x.boot !== undefined) && fleet.live.spread(hosts.map((x) => x.h)),
          DEADLINE.zoneSpread,
          `spread over ${ZONES} × ${PER_ZONE} hosts`,
        );
      } catch (e) {
        // Not spread in time: the zone loss is still worth measuring once every name is led.
        if (fleet.live.led !== NAMES) throw e;
        notSpread = (e as Error).message;
      }
    });
    if (!pSpread.error) {
      // Right after the spread, as the crash scenario: first standbys must already be elsewhere.
      pLoss = await phase(async () => {
        for (const x of lost()) fleet.kill(x);
        await fleet.until(() => fleet.live.led === NAMES, DEADLINE.zoneLoss, `every name led again after a zone was SIGKILLed`);
      });
    }
  } finally {
    await fleet.close();
  }
  const tl = await fleet.timeline(dumpTo('zones'));
  const end = stamp();
  const lastBoot = hosts.every((x) => x.boot !== undefined) ? Math.max(...hosts.map((x) => x.boot!)) : undefined;
  const spreadMs =
    lastBoot === undefined
      ? undefined
      : since(
          tl.first(lastBoot, (p) => p.spread(hosts.map((x) => x.h)), pSpread.t1),
          lastBoot,
        );
  if (!pLoss) return { ...common(fleet, tl, pSpread, pSpread.t0, end), zoneOption, ...(spreadMs !== undefined ? { spreadMs } : {}) };
  const kills = lost().map((x) => x.killedAt!);
  const named = ledAtKill(tl, lost());
  const { relead, notReled } = releads(tl, fleet, named, pLoss.t1);
  return {
    ...common(fleet, tl, pLoss, pSpread.t0, end),
    ...(notSpread !== undefined ? { notSpread } : {}),
    zoneOption,
    ...(spreadMs !== undefined ? { spreadMs } : {}),
    victimNames: named.size,
    relead,
    notReled,
    allLedMs: since(
      tl.first(Math.max(...kills), (p) => p.led === NAMES, pLoss.t1),
      Math.min(...kills),
    ),
  };
}

// ——— big: 2 hosts × 100,000 names ———

async function bigScenario(cluster: EtcdCluster, log: (s: string) => void): Promise<BigRow> {
  const fleet = new Fleet({ endpoints: cluster.endpoints, prefix: 'bench/balance/big/', names: BIG, ttl: TTL });
  let a: FleetHost | undefined, b: FleetHost | undefined;
  let pLead: Phase, pJoin: Phase | undefined;
  let inCount: number | undefined, secondLeads: number | undefined;
  try {
    log(` ${BIG.toLocaleString('en-US')} names`);
    pLead = await phase(async () => {
      const x = (a = fleet.spawn('a'));
      await fleet.until(() => x.in !== undefined && fleet.live.load[x.h] === BIG, DEADLINE.bigLead, `one host leading all ${BIG} names`);
    });
    if (!pLead.error) {
      log(', a second host');
      pJoin = await phase(async () => {
        const y = (b = fleet.spawn('b'));
        try {
          await fleet.until(() => y.in !== undefined, DEADLINE.bigIn, `the second host's campaigns in (${y.inCount} of ${BIG} so far)`);
        } finally {
          inCount = y.inCount;
        }
        try {
          await fleet.until(
            () => fleet.live.spread([a!.h, y.h]),
            DEADLINE.bigBalanced,
            `the two hosts balanced after the campaigns were in`,
          );
        } finally {
          secondLeads = fleet.live.load[y.h] ?? 0;
        }
      });
    }
  } finally {
    await fleet.close();
  }
  const tl = await fleet.timeline(dumpTo('big'));
  const end = stamp();
  const row: BigRow = {
    ...common(fleet, tl, pJoin ?? pLead, pLead.t0, end),
    names: BIG,
    ...(a?.boot !== undefined
      ? {
          firstLeadsMs: since(
            tl.first(a.boot, (p) => p.load[a!.h] === BIG, pLead.t1),
            a.boot,
          ),
        }
      : {}),
  };
  if (!pJoin || !b || b.boot === undefined) return row;
  const balancedAt = tl.first(b.boot, (p) => p.spread([a!.h, b!.h]), pJoin.t1);
  return {
    ...row,
    ...(b.in !== undefined ? { inMs: b.in - b.boot } : {}),
    ...(inCount !== undefined ? { inCount } : {}),
    ...(secondLeads !== undefined ? { secondLeads } : {}),
    ...(balancedAt !== undefined && b.in !== undefined ? { balancedMs: balancedAt - b.in } : {}),
    moves: tl.moves(pJoin.t0, balancedAt ?? pJoin.t1),
    fewest: fewest(tl.before(pJoin.t0).loads(), [a!.h, b.h], BIG),
  };
}

/** Every scenario in turn; `log` tells progress (stderr). */
export async function balance(cluster: EtcdCluster, log: (s: string) => void = () => {}): Promise<BalanceResults> {
  const skipped: Common = { error: 'not run (--balance-only)', overlaps: [], errors: {}, stops: {}, seconds: 0 };
  const fleet = runs('fleet')
    ? await fleetScenarios(cluster, log)
    : {
        start: { ...skipped, names: NAMES, hosts: HOSTS },
        join: skipped,
        crash: { ...skipped, victim: '—' },
        drain: { ...skipped, drained: '—' },
      };
  const zone = runs('zone') ? await zoneScenario(cluster, log) : { ...skipped, zoneOption: true };
  const big = runs('big') ? await bigScenario(cluster, log) : { ...skipped, names: BIG };
  // Stamps are ns-exact: a tenth of a ms is plenty in bench/results.json.
  return JSON.parse(
    JSON.stringify({ ttl: TTL, ...fleet, zone, big }, (_k, v: unknown) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v)),
  ) as BalanceResults;
}

// ——— report ———

export interface Target {
  target: string;
  met: boolean;
  value: string;
}

const sec = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '—' : (v / 1000).toFixed(2) + ' s');
const int = (v: number | undefined): string => (v === undefined ? '—' : Math.round(v).toLocaleString('en-US'));
const failed = (c: Common): string => `failed: ${c.error ?? 'no figure'}`;
const within = (v: number | undefined, limit: number): boolean => v !== undefined && !Number.isNaN(v) && v <= limit;
const movesOk = (m: number | undefined, f: number | undefined): boolean => m !== undefined && f !== undefined && m <= MOVES_OVER_FEWEST * f;
const tally = (r: Record<string, number> | undefined, most = 6): string => {
  const all = Object.entries(r ?? {}).sort((x, y) => y[1] - x[1]);
  const shown = all.slice(0, most).map(([k, n]) => `${n} × ${k}`);
  if (all.length > most) shown.push(`${all.length - most} other kinds`);
  return shown.join(', ') || 'none';
};
const describeStall = (x: StallFigures | undefined): string =>
  x ? `${int(x.maxMs)} ms (${x.host}; ${x.slowSeconds} host-seconds over ${SLOW_STALL_MS} ms)` : '—';
const rows = (b: BalanceResults): [string, Common][] => [
  ['start', b.start],
  ['join', b.join],
  ['crash', b.crash],
  ['drain', b.drain],
  ['zone', b.zone],
  ['100k', b.big],
];

/** The issue's floors, for ttl 5 s; each names its figure or why there is none. */
export function balanceTargets(b: BalanceResults): Target[] {
  const ttl = b.ttl * 1000;
  const t = (target: string, c: Common, value: number | undefined, limit: number, show = sec): Target => ({
    target: `balance: ${target}`,
    met: within(value, limit),
    value: value === undefined ? failed(c) : show(value),
  });
  const { start, join, crash, drain, zone, big } = b;
  const moves = (target: string, c: Common, m: number | undefined, f: number | undefined): Target => ({
    target: `balance: ${target}: moves ≤ ${MOVES_OVER_FEWEST} × the fewest`,
    // Moves counted up to a deadline that passed say nothing about the fewest.
    met: c.error === undefined && movesOk(m, f),
    value: m === undefined || f === undefined ? failed(c) : `${int(m)} vs ${int(f)}${c.error === undefined ? '' : ' (not done)'}`,
  });
  const overlapping = rows(b).filter(([, c]) => c.overlaps.length > 0);
  return [
    t(
      `${int(start.names)} names × ${start.hosts} hosts started at once: spread ≤ 5 s after the last host started`,
      start,
      start.spreadMs,
      5_000,
    ),
    t('a joining host has its share ≤ 2 s after its campaigns are in', join, join.shareMs, 2_000),
    moves('join', join, join.moves, join.fewest),
    {
      ...t(`SIGKILL after the spread: per-name re-lead p99 ≤ ttl + 0.6 s`, crash, crash.relead?.p99, ttl + 600),
      ...(crash.notReled ? { met: false, value: `${crash.notReled} names not led again` } : {}),
    },
    t(`SIGKILL: every one of its names led again ≤ ttl + 1 s (max)`, crash, crash.notReled ? undefined : crash.relead?.max, ttl + 1_000),
    t(`SIGKILL: every name of the fleet led at one moment ≤ ttl + 2 s`, crash, crash.allLedMs, ttl + 2_000),
    moves('SIGKILL', crash, crash.moves, crash.fewest),
    {
      target: 'balance: drain: ≥ 2,000 graceful moves/s',
      met: (drain.movesPerSecond ?? 0) >= 2_000,
      value: drain.movesPerSecond === undefined ? failed(drain) : `${int(drain.movesPerSecond)}/s`,
    },
    moves('drain', drain, drain.moves, drain.fewest),
    t(`${int(big.names)} names: a second host's campaigns all in ≤ 10 s`, big, big.inMs, 10_000),
    t(`${int(big.names)} names: balanced ≤ 15 s after that`, big, big.balancedMs, 15_000),
    moves(`${int(big.names)} names`, big, big.moves, big.fewest),
    t('zone loss (3 × 3 hosts): every name led again ≤ ttl + 1 s', zone, zone.allLedMs, ttl + 1_000),
    {
      target: 'balance: no overlapping fn executions in any scenario',
      met: overlapping.length === 0,
      value: overlapping.length ? overlapping.map(([n, c]) => `${n}: ${c.overlaps.length}`).join(', ') : 'none',
    },
  ];
}

/** Markdown lines of the section: one row per figure, then the load and errors per scenario. */
export function balanceTable(b: BalanceResults): string[] {
  const { start: s, join: j, crash: c, drain: d, zone: z, big: g } = b;
  // A failed scenario shows why, then what it measured before that.
  const or = (x: Common, f: () => string): string => (x.error ? `${x.error} — ${f()}` : f());
  const lines: [string, string][] = [
    [
      `${int(s.names)} names × ${s.hosts} hosts started at once: every name led, every host ⌊N/H⌋..⌈N/H⌉`,
      or(
        s,
        () =>
          `${sec(s.spreadMs)} after the last host started (hosts started within ${sec(s.bootSpanMs)}; every name led ${sec(s.allLedMs)} after the first; ${int(s.moves)} moves on the way, ${int(s.movesAfter)} after${s.settled === false ? ', still moving' : ''})`,
      ),
    ],
    [
      `host ${s.hosts + 1} joins: its share, after its campaigns are in`,
      or(j, () => `${sec(j.shareMs)} (its campaigns in ${sec(j.inMs)} after its start); moves ${int(j.moves)} (fewest ${int(j.fewest)})`),
    ],
    [
      `SIGKILL of ${c.victim} right after: its ${int(c.victimNames)} names led again, p50 / p99 / max`,
      or(
        c,
        () =>
          `${sec(c.relead?.p50)} / ${sec(c.relead?.p99)} / ${sec(c.relead?.max)}${c.notReled ? ` (${c.notReled} not led again)` : ''}; went to ${Object.keys(c.wentTo ?? {}).length} hosts (${tally(c.wentTo)})`,
      ),
    ],
    [
      'SIGKILL: every name led at one moment; spread again; moves (fewest)',
      or(
        c,
        () => `${sec(c.allLedMs)}; ${sec(c.spreadMs)}; ${int(c.moves)} (${int(c.fewest)})${c.settled === false ? ', still moving' : ''}`,
      ),
    ],
    [
      `drain of ${d.drained}: moves/s over the wave; moves (fewest); done`,
      or(
        d,
        () =>
          `${int(d.movesPerSecond)}/s (${int(d.moves)} in ${sec(d.waveMs)}); ${int(d.moves)} (${int(d.fewest)}); ${sec(d.doneMs)} after the order${d.settled === false ? ', still moving' : ''}`,
      ),
    ],
    [
      `3 zones × 3 hosts${z.zoneOption ? '' : ' (no locker option `zone` yet: started without zones)'}, one zone SIGKILLed: every name led again`,
      or(
        z,
        () =>
          `${sec(z.allLedMs)} (its ${int(z.victimNames)} names: p50 / p99 / max ${sec(z.relead?.p50)} / ${sec(z.relead?.p99)} / ${sec(z.relead?.max)}${z.notReled ? `, ${z.notReled} not led again` : ''}; ${z.notSpread === undefined ? `spread before the loss ${sec(z.spreadMs)} after the last start` : `killed unspread: ${z.notSpread}`})`,
      ),
    ],
    [
      `2 hosts × ${int(g.names)} names: second host's campaigns in; balanced after that; moves (fewest)`,
      or(
        g,
        () =>
          `${g.inMs === undefined ? `not in (${int(g.inCount)} names)` : sec(g.inMs)}; ${g.balancedMs === undefined ? `not balanced (it leads ${int(g.secondLeads)})` : sec(g.balancedMs)}; ${int(g.moves)} (${int(g.fewest)}) (the first host led all ${sec(g.firstLeadsMs)} after its start)`,
      ),
    ],
  ];
  const extra = rows(b).map(([n, x]): [string, string] => [
    `${n}: machine; worst event-loop stall; overlaps; stops by reason; locker errors`,
    `${x.load ? describeLoad(x.load) : '—'}; ${describeStall(x.stall)}; ${x.overlaps.length ? x.overlaps.slice(0, 5).join(', ') : 'no overlap'}; ${tally(x.stops)}; ${tally(x.errors, 3)}`,
  ]);
  return [`| balance (ttl ${b.ttl} s, host processes) | |`, '|---|---|', ...[...lines, ...extra].map(([k, v]) => `| ${k} | ${v} |`)];
}
