// `npm run bench`: this library and etcd3's own `Election` measured side by side against
// one real 3-member etcd on loopback, with the put → watch latency of the same cluster
// as the floor no hand-over can beat. Prints a markdown table and writes
// bench/results.json. Not part of `npm test`: speed claims live here, not in tests.
//
//   node .build/bench/bench.js                     everything (≈ 1–2 minutes)
//   node .build/bench/bench.js --only=scale10k     just the 10,000-name case (for --cpu-prof)
//   node .build/bench/bench.js --only=balance      just the balance section (bench/balance.ts; ≈ 5 minutes),
//                                                  into bench/results.json; smaller for development:
//                                                  --balance-names=300 --balance-hosts=4 --balance-big=5000
//   node .build/bench/bench.js --only=scale10k --profile
//                                                  CPU profiles of its registration and release
//                                                  phases: bench/scale10000-{register,release}.cpuprofile
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Session as InspectorSession } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Etcd3, type Campaign, type Election, type WatchBuilder, type Watcher } from 'etcd3';
import locked, { type Locker, type Singleton } from '../src/index.js';
import { startEtcd, type EtcdCluster } from '../test/helpers/etcd.js';
import type { ChildConfig } from './child.js';
import { balance, balanceTable, balanceTargets, type BalanceResults } from './balance.js';
import { sickMember, sickTable, type SickRow } from './sick.js';
import { dist, type Dist } from './stats.js';

// ——— settings ———

/** Hand-over rounds per library (and floor rounds), run in alternating blocks. */
const ROUNDS = 200;
const BLOCK = 50;
/**
 * Pause after a standby is ready (and before each floor round) before the leader steps
 * down. Over 100 ms because etcd (mvcc) keeps a watch created at a past revision, as
 * etcd3's standby creates it, "unsynced" until its sync loop runs, every 100 ms: until
 * then, events reach it late. A standby that has waited a while is the case that matters.
 */
const SETTLE_MS = 110;
const CRASH_TRIALS = 9;
/** TTL of the leaders that get killed: the failover time is this lease's expiry. */
const CRASH_TTL = 2;
/** The standbys' own TTL plays no part in the failover; a long one keeps them safe on a loaded machine. */
const STANDBY_TTL = 10;
/**
 * TTL of the scale runs: keepalives every ttl/3 ≈ 1.7 s per lease. With ttl 3, etcd3's
 * 1,000 leases expired before their campaigns' puts on this (shared, loaded) machine.
 */
const SCALE_TTL = 5;
/** Window over which keepalive messages at rest are counted. */
const KEEPALIVE_WINDOW_MS = 5_000;

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));
const RESULTS = fileURLToPath(new URL('../../bench/results.json', import.meta.url));

const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
/** With --profile: CPU profiles of the registration and release phases of the scale runs, bench/<phase>.cpuprofile. */
const profiling = process.argv.includes('--profile');

// `npm run bench` runs plain `node`: expose the collector at runtime instead of via a flag.
v8.setFlagsFromString('--expose-gc');
const gc = (globalThis.gc ?? (runInNewContext('gc') as () => void)) as () => void;

// ——— small helpers ———

const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hold = (): void => {};

/** `what` may be a function, to describe progress at the moment of the timeout. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      const say = typeof what === 'function' ? what : () => what;
      timer = setTimeout(() => reject(new Error(`bench: ${say()} did not happen within ${ms} ms`)), ms);
    }),
  ]);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = now() + ms;
  while (!cond()) {
    if (now() > deadline) throw new Error(`bench: ${what} did not happen within ${ms} ms`);
    await sleep(1);
  }
}

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const clientFor = (cluster: EtcdCluster): Etcd3 => new Etcd3({ hosts: cluster.clientUrls });

/** LeaseKeepAlive messages etcd has received, summed over members. */
async function keepalivesReceived(cluster: EtcdCluster): Promise<number> {
  const texts = await Promise.all(cluster.members.map((_, i) => cluster.metrics(i)));
  let sum = 0;
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line.startsWith('grpc_server_msg_received_total{') && line.includes('grpc_method="LeaseKeepAlive"')) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sum;
}

async function keepaliveRate(cluster: EtcdCluster): Promise<number> {
  const a = await keepalivesReceived(cluster);
  const t0 = now();
  await sleep(KEEPALIVE_WINDOW_MS);
  const b = await keepalivesReceived(cluster);
  return (b - a) / ((now() - t0) / 1000);
}

async function countKeys(client: Etcd3, prefix: string): Promise<number> {
  return client.getAll().prefix(prefix).count();
}

let inspector: InspectorSession | undefined;

/** Runs `fn`, under the CPU profiler when --profile was given. */
async function phase<T>(label: string, fn: () => Promise<T>): Promise<T> {
  if (!profiling) return fn();
  if (!inspector) {
    inspector = new InspectorSession();
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
  }
  await inspector.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await inspector.post('Profiler.stop');
    writeFileSync(fileURLToPath(new URL(`../../bench/${label}.cpuprofile`, import.meta.url)), JSON.stringify(profile));
  }
}

// ——— 1 + 2: floor and graceful hand-over, in alternating blocks ———

class Floor {
  private waiting: ((value: string) => void) | undefined;
  private seq = 0;
  private constructor(
    private readonly writer: Etcd3,
    private readonly watcher: Watcher,
  ) {
    watcher.on('put', (kv) => this.waiting?.(kv.value.toString()));
  }

  static async open(writer: Etcd3, reader: Etcd3): Promise<Floor> {
    return new Floor(writer, await reader.watch().key('bench/floor').create());
  }

  async round(): Promise<number> {
    // The same idle pause as before each hand-over: an idle cluster answers a little
    // slower than one kept busy (measured here: ≈ 1.7 ms back to back, ≈ 2.5 ms after
    // 30 ms idle), and the floor must not get the busy one.
    await sleep(SETTLE_MS);
    const tag = String(this.seq++);
    const seen = new Promise<number>((resolve) => {
      this.waiting = (v) => v === tag && resolve(now());
    });
    const t0 = now();
    await this.writer.put('bench/floor').value(tag);
    return (await withTimeout(seen, 5_000, 'floor watch event')) - t0;
  }

  close(): Promise<void> {
    return this.watcher.cancel();
  }
}

/** Two lockers in this process (each its own client, lease and watch) passing one name back and forth. */
class LockedHandover {
  private leader = 0;
  private constructor(private readonly lockers: [Locker, Locker]) {}

  static async open(cluster: EtcdCluster): Promise<LockedHandover> {
    const opts = { ttl: 10, prefix: 'bench/handover/', handleSignals: false };
    const h = new LockedHandover([locked(cluster.endpoints, { ...opts, id: 'a' }), locked(cluster.endpoints, { ...opts, id: 'b' })]);
    for (const l of h.lockers) l.on('error', (err) => console.error(`locker ${l.id()}: ${err.message}`));
    const first = h.lockers[0]('job', hold);
    await withTimeout(new Promise((r) => first.once('start', r)), 10_000, 'first leader');
    await h.queue(h.lockers[1]);
    return h;
  }

  private async queue(l: Locker): Promise<void> {
    const s = l('job', hold);
    await until(() => s.position === 1, 10_000, `locker ${l.id()} queued`);
    await sleep(SETTLE_MS);
  }

  async round(): Promise<number> {
    const from = this.lockers[this.leader];
    const to = this.lockers[1 - this.leader]!;
    const standby = to.singletons()['job']!;
    const started = new Promise<number>((resolve) => standby.once('start', () => resolve(now())));
    const t0 = now();
    await from.singletons()['job']!.remove();
    const t1 = await withTimeout(started, 10_000, 'locked hand-over');
    this.leader = 1 - this.leader;
    await this.queue(from);
    return t1 - t0;
  }

  async close(): Promise<void> {
    await Promise.all(this.lockers.map((l) => l.close()));
  }
}

/** etcd3's `Election` the same way: two clients, one campaign each, the leader resigns. */
class Etcd3Handover {
  private leader = 0;
  private readonly campaigns: Campaign[] = [];
  private constructor(
    private readonly clients: [Etcd3, Etcd3],
    private readonly elections: [Election, Election],
  ) {}

  static async open(cluster: EtcdCluster): Promise<Etcd3Handover> {
    const clients: [Etcd3, Etcd3] = [clientFor(cluster), clientFor(cluster)];
    const h = new Etcd3Handover(clients, [watchable(clients[0].election('job', 10)), watchable(clients[1].election('job', 10))]);
    const first = h.elections[0].campaign('a');
    h.campaigns[0] = first;
    await withTimeout(first.wait(), 10_000, 'etcd3 first leader');
    await h.queue(1);
    return h;
  }

  private async queue(i: number): Promise<void> {
    const ready = watching(this.elections[i]!);
    const c = this.elections[i]!.campaign(i === 0 ? 'a' : 'b');
    c.on('error', (err) => console.error(`etcd3 campaign: ${String(err)}`));
    this.campaigns[i] = c;
    await withTimeout(ready, 10_000, 'etcd3 standby watching');
    await sleep(SETTLE_MS);
  }

  async round(): Promise<number> {
    const from = this.campaigns[this.leader]!;
    const standby = this.campaigns[1 - this.leader]!;
    const elected = new Promise<number>((resolve) => standby.once('elected', () => resolve(now())));
    const t0 = now();
    await from.resign();
    const t1 = await withTimeout(elected, 10_000, 'etcd3 hand-over');
    const fromIndex = this.leader;
    this.leader = 1 - this.leader;
    await this.queue(fromIndex);
    return t1 - t0;
  }

  async close(): Promise<void> {
    // Etcd3.close() would leave the leases' keepalives running: revoke them first.
    await Promise.all(this.campaigns.map((c) => c.resign()));
    for (const c of this.clients) c.close();
  }
}

const watchConfirmed = new WeakMap<Election, EventEmitter>();

/**
 * A standby of etcd3's `Election` is ready once etcd confirmed the watch on its
 * predecessor's key (≈ 20 ms after the campaign starts here), a step etcd3 keeps
 * private. Without waiting for it, its hand-over time would include its own set-up.
 * This wraps the election's `watch()` to observe it.
 */
function watchable(election: Election): Election {
  const ns = (election as unknown as { namespace: { watch(): WatchBuilder } }).namespace;
  const events = new EventEmitter();
  const watch = ns.watch.bind(ns);
  ns.watch = () => {
    const builder = watch();
    const create = builder.create.bind(builder);
    builder.create = async () => {
      const w = await create();
      events.emit('watching');
      return w;
    };
    return builder;
  };
  watchConfirmed.set(election, events);
  return election;
}

const watching = (election: Election): Promise<unknown> => once(watchConfirmed.get(election)!, 'watching');

interface HandoverResults {
  floor: Dist;
  locked: Dist;
  etcd3: Dist;
}

async function handover(cluster: EtcdCluster): Promise<HandoverResults> {
  const writer = clientFor(cluster);
  const reader = clientFor(cluster);
  const floor = await Floor.open(writer, reader);
  const lk = await LockedHandover.open(cluster);
  const e3 = await Etcd3Handover.open(cluster);
  const samples = { floor: [] as number[], locked: [] as number[], etcd3: [] as number[] };
  try {
    for (let done = 0; done < ROUNDS; done += BLOCK) {
      const n = Math.min(BLOCK, ROUNDS - done);
      for (let i = 0; i < n; i++) samples.floor.push(await floor.round());
      for (let i = 0; i < n; i++) samples.locked.push(await lk.round());
      for (let i = 0; i < n; i++) samples.etcd3.push(await e3.round());
      process.stderr.write('.');
    }
  } finally {
    await Promise.allSettled([floor.close(), lk.close(), e3.close()]);
    writer.close();
    reader.close();
  }
  return { floor: dist(samples.floor), locked: dist(samples.locked), etcd3: dist(samples.etcd3) };
}

// ——— 3: crash failover ———

interface CrashResults {
  ttl: number;
  locked: Dist & { samples: number[] };
  etcd3: Dist & { samples: number[] };
}

function spawnLeader(cfg: ChildConfig): { child: ChildProcess; leading: Promise<void>; exited: Promise<void> } {
  const child = fork(CHILD, [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const leading = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m.type === 'leading' && resolve());
    child.once('exit', (code, signal) => reject(new Error(`bench child exited (${code ?? signal}) before leading`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  leading.catch(() => {});
  return { child, leading, exited };
}

interface Armed {
  /** SIGKILLs the leader; returns the time of the kill. */
  kill(): number;
  /** Resolves with the time the standby started. */
  started: Promise<number>;
  release(): Promise<void>;
  exited: Promise<void>;
}

/** A leader in a child process and a standby in this one, queued behind it. */
async function arm(
  lib: 'locked' | 'etcd3',
  cluster: EtcdCluster,
  standby: { locker: Locker; client: Etcd3 },
  name: string,
  prefix: string,
): Promise<Armed> {
  const leader = spawnLeader({ lib, endpoints: cluster.endpoints, name, prefix, ttl: CRASH_TTL });
  const kill = (): number => {
    const t0 = now();
    leader.child.kill('SIGKILL');
    return t0;
  };
  try {
    await withTimeout(leader.leading, 20_000, `${lib} child leading`);
    if (lib === 'locked') {
      const s = standby.locker(name, hold);
      await until(() => s.position === 1, 10_000, 'locked standby queued');
      return {
        kill,
        started: new Promise((resolve) => s.once('start', () => resolve(now()))),
        release: () => s.remove(),
        exited: leader.exited,
      };
    }
    const election = watchable(standby.client.election(name, STANDBY_TTL));
    const ready = watching(election);
    const c = election.campaign('standby');
    c.on('error', () => {});
    await withTimeout(ready, 10_000, 'etcd3 standby watching');
    return {
      kill,
      started: new Promise((resolve) => c.once('elected', () => resolve(now()))),
      release: () => c.resign(),
      exited: leader.exited,
    };
  } catch (err) {
    kill();
    await leader.exited;
    throw err;
  }
}

/**
 * Each trial kills a leader of each library at the same moment (in random order), so
 * both see the same etcd and the same load; expiry is etcd's work, not the client's.
 */
async function crash(cluster: EtcdCluster): Promise<CrashResults> {
  const prefix = 'bench/crash/';
  const standby = {
    locker: locked(cluster.endpoints, { id: 'standby', ttl: STANDBY_TTL, prefix, handleSignals: false }),
    client: clientFor(cluster),
  };
  standby.locker.on('error', () => {});
  const samples = { locked: [] as number[], etcd3: [] as number[] };
  try {
    for (let i = 0; i < CRASH_TRIALS; i++) {
      const settled = await Promise.allSettled([
        arm('locked', cluster, standby, `crash${i}`, prefix),
        arm('etcd3', cluster, standby, `crash${i}`, prefix),
      ]);
      const armed = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      try {
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        const [l, e] = armed as [Armed, Armed];
        // A random phase against the children's keepalive timers, as a real crash would have.
        await sleep(50 + Math.random() * 700);
        let tl: number, te: number;
        if (Math.random() < 0.5) {
          tl = l.kill();
          te = e.kill();
        } else {
          te = e.kill();
          tl = l.kill();
        }
        const [sl, se] = await Promise.all([
          withTimeout(l.started, 15_000, 'locked failover'),
          withTimeout(e.started, 15_000, 'etcd3 failover'),
        ]);
        samples.locked.push(sl - tl);
        samples.etcd3.push(se - te);
        process.stderr.write('.');
        await Promise.all([l.release(), e.release()]);
      } finally {
        for (const x of armed) x.kill();
        await Promise.all(armed.map((x) => x.exited));
      }
    }
  } finally {
    await standby.locker.close();
    standby.client.close();
  }
  return {
    ttl: CRASH_TTL,
    locked: { ...dist(samples.locked), samples: samples.locked },
    etcd3: { ...dist(samples.etcd3), samples: samples.etcd3 },
  };
}

// ——— 4: scale ———

interface ScaleResult {
  names: number;
  /** From the first registration (locker/client already connected) until every name leads. */
  allLeadingMs: number;
  heapBytesPerName: number;
  leases: number;
  keepalivesPerSecond: number;
  releaseMs: number;
  /** Keys left under the prefix after the release (must be 0). */
  keysLeft: number;
  /** Names that did not lead (a campaign error, a lost leadership), with the errors seen. */
  failed: number;
  errors: Record<string, number>;
}

/** Counts errors by message, so a thousand identical ones make one line. */
function tally(errors: Record<string, number>, err: unknown): void {
  const msg = err instanceof Error ? err.message : String(err);
  errors[msg] = (errors[msg] ?? 0) + 1;
}

async function scaleLocked(cluster: EtcdCluster, n: number, measureKeepalive = true): Promise<ScaleResult> {
  const prefix = `bench/scale${n}/`;
  const client = clientFor(cluster);
  const leasesBefore = (await cluster.leases()).length;
  const locker = locked(cluster.endpoints, { id: 'scale', ttl: SCALE_TTL, prefix, handleSignals: false });
  const errors: Record<string, number> = {};
  locker.on('error', (err) => tally(errors, err));
  await locker.ready();
  const heap0 = heapUsed();
  let leading = 0;
  let all!: () => void;
  const allLeading = new Promise<void>((r) => (all = r));
  // Counts first starts only: a name that lost its leadership (and started again) must not count twice.
  const onStart = (): void => {
    if (++leading === n) all();
  };
  const t0 = now();
  await phase(`scale${n}-register`, async () => {
    for (let i = 0; i < n; i++) locker(`n${i}`, hold).once('start', onStart);
    await withTimeout(allLeading, 60_000, () => `${n} names leading (${leading} so far)`);
  });
  const allLeadingMs = now() - t0;
  const singletons: Singleton[] = Object.values(locker.singletons());
  const failed = n - singletons.filter((s) => s.isLeader).length;
  const heap1 = heapUsed();
  const leases = (await cluster.leases()).length - leasesBefore;
  const keepalivesPerSecond = measureKeepalive ? await keepaliveRate(cluster) : NaN;
  const t1 = now();
  await phase(`scale${n}-release`, () => locker.close());
  const releaseMs = now() - t1;
  const keysLeft = await countKeys(client, prefix);
  client.close();
  return {
    names: n,
    allLeadingMs,
    heapBytesPerName: (heap1 - heap0) / n,
    leases,
    keepalivesPerSecond,
    releaseMs,
    keysLeft,
    failed,
    errors,
  };
}

async function scaleEtcd3(cluster: EtcdCluster, n: number): Promise<ScaleResult> {
  const client = clientFor(cluster);
  await client.get('bench/warm-up'); // connect first, as the locker is ready before its run
  const leasesBefore = (await cluster.leases()).length;
  const heap0 = heapUsed();
  let elected = 0;
  let failed = 0;
  const errors: Record<string, number> = {};
  let all!: () => void;
  const allDecided = new Promise<void>((r) => (all = r));
  const campaigns: Campaign[] = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const c = client.election(`scale${i}`, SCALE_TTL).campaign('scale');
    let decided = false;
    const decide = (ok: boolean): void => {
      if (decided) return;
      decided = true;
      if (ok) elected++;
      else failed++;
      if (elected + failed === n) all();
    };
    // A campaign whose lease is lost emits 'error' and never 'elected'.
    c.on('error', (err) => {
      tally(errors, err);
      decide(false);
    });
    c.once('elected', () => decide(true));
    campaigns.push(c);
  }
  await withTimeout(allDecided, 60_000, () => `${n} etcd3 campaigns decided (${elected} elected, ${failed} failed so far)`);
  const allLeadingMs = now() - t0;
  const heap1 = heapUsed();
  const leases = (await cluster.leases()).length - leasesBefore;
  const keepalivesPerSecond = await keepaliveRate(cluster);
  const t1 = now();
  await Promise.all(campaigns.map((c) => c.resign()));
  const releaseMs = now() - t1;
  const keysLeft = await countKeys(client, 'election/scale');
  client.close();
  return {
    names: n,
    allLeadingMs,
    heapBytesPerName: (heap1 - heap0) / n,
    leases,
    keepalivesPerSecond,
    releaseMs,
    keysLeft,
    failed,
    errors,
  };
}

// ——— report ———

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  etcd: string;
  etcdMembers: number;
  os: string;
  loadAverageAtStart: number[];
}

interface Results {
  date: string;
  machine: Machine;
  durationSeconds: number;
  phaseSeconds: Record<string, number>;
  handover: HandoverResults;
  crash: CrashResults;
  scale: { ttl: number; locked1k: ScaleResult; locked10k: ScaleResult; etcd3_1k: ScaleResult };
  balance: BalanceResults;
  /** Per fault kind of one sick etcd member: this library and etcd3's Election side by side (bench/sick.ts). */
  sick: SickRow[];
  targets: { target: string; met: boolean; value: string }[];
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
const sec = (v: number): string => (v / 1000).toFixed(2) + ' s';
const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? (a / b).toFixed(2) + '×' : '—');
const kb = (v: number): string => (v / 1024).toFixed(2) + ' KB';
const int = (v: number): string => Math.round(v).toLocaleString('en-US');
const rate = (v: number): string => (Number.isNaN(v) ? '—' : v.toFixed(1) + '/s');

const leadCell = (x: ScaleResult): string => (x.failed ? `${ms(x.allLeadingMs)} (${int(x.failed)} did not lead)` : ms(x.allLeadingMs));

function table(r: Results): string {
  const { handover: h, crash: c, scale: s } = r;
  const rows: string[][] = [
    [
      'graceful hand-over p50',
      ms(h.locked.p50),
      ms(h.etcd3.p50),
      ms(h.floor.p50),
      ratio(h.locked.p50, h.floor.p50),
      ratio(h.locked.p50, h.etcd3.p50),
    ],
    [
      'graceful hand-over p99',
      ms(h.locked.p99),
      ms(h.etcd3.p99),
      ms(h.floor.p99),
      ratio(h.locked.p99, h.floor.p99),
      ratio(h.locked.p99, h.etcd3.p99),
    ],
    [
      `crash failover, ttl ${c.ttl} s: median (min–max)`,
      `${sec(c.locked.p50)} (${sec(c.locked.min)}–${sec(c.locked.max)})`,
      `${sec(c.etcd3.p50)} (${sec(c.etcd3.min)}–${sec(c.etcd3.max)})`,
      '—',
      '—',
      ratio(c.locked.p50, c.etcd3.p50),
    ],
  ];
  const scaleRows = (label: string, l: ScaleResult, e: ScaleResult | undefined): void => {
    const cell = (f: (x: ScaleResult) => string): string => (e ? f(e) : '—');
    const rat = (f: (x: ScaleResult) => number): string => (e ? ratio(f(l), f(e)) : '—');
    rows.push(
      [`${label}: all leading after`, leadCell(l), cell(leadCell), '—', '—', rat((x) => x.allLeadingMs)],
      [`${label}: heap per name`, kb(l.heapBytesPerName), cell((x) => kb(x.heapBytesPerName)), '—', '—', rat((x) => x.heapBytesPerName)],
      [`${label}: leases in etcd`, int(l.leases), cell((x) => int(x.leases)), '—', '—', rat((x) => x.leases)],
      [
        `${label}: keepalive msgs at rest`,
        rate(l.keepalivesPerSecond),
        cell((x) => rate(x.keepalivesPerSecond)),
        '—',
        '—',
        rat((x) => x.keepalivesPerSecond),
      ],
      [`${label}: release all`, ms(l.releaseMs), cell((x) => ms(x.releaseMs)), '—', '—', rat((x) => x.releaseMs)],
    );
  };
  scaleRows('1,000 names', s.locked1k, s.etcd3_1k);
  scaleRows('10,000 names', s.locked10k, undefined);
  const head = ['', 'locked', 'etcd3 Election', 'floor (put → watch)', 'locked / floor', 'locked / etcd3'];
  return [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function targets(r: Results): Results['targets'] {
  const { handover: h, crash: c, scale: s } = r;
  const t10 = s.locked10k;
  return [
    { target: 'hand-over p50 ≤ 1.5 × floor p50', met: h.locked.p50 <= 1.5 * h.floor.p50, value: ratio(h.locked.p50, h.floor.p50) },
    { target: "hand-over p99 ≤ etcd3's p99", met: h.locked.p99 <= h.etcd3.p99, value: `${ms(h.locked.p99)} vs ${ms(h.etcd3.p99)}` },
    { target: `crash failover median ≤ ttl (${c.ttl} s)`, met: c.locked.p50 <= c.ttl * 1000, value: sec(c.locked.p50) },
    { target: '10,000 names all leading within 3 s', met: t10.failed === 0 && t10.allLeadingMs <= 3000, value: leadCell(t10) },
    { target: '10,000 names on 1 lease', met: t10.leases === 1, value: String(t10.leases) },
    { target: '≤ 2 KB heap per name', met: t10.heapBytesPerName <= 2048, value: kb(t10.heapBytesPerName) },
    {
      target: 'keepalive traffic independent of names (10,000 vs 1,000 within ±1 msg/s)',
      met: Math.abs(t10.keepalivesPerSecond - s.locked1k.keepalivesPerSecond) <= 1,
      value: `${rate(s.locked1k.keepalivesPerSecond)} vs ${rate(t10.keepalivesPerSecond)}`,
    },
    {
      target: '10,000 names released within 1 s',
      met: t10.releaseMs <= 1000 && t10.keysLeft === 0,
      value: `${ms(t10.releaseMs)}, ${t10.keysLeft} keys left`,
    },
    ...balanceTargets(r.balance),
  ];
}

async function machine(cluster: EtcdCluster): Promise<Machine> {
  const res = await fetch(`${cluster.clientUrls[0]}/version`);
  const version = (await res.json()) as { etcdserver?: string };
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    etcd: version.etcdserver ?? 'unknown',
    etcdMembers: cluster.members.length,
    os: `${os.type()} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

async function main(): Promise<void> {
  const started = now();
  const loadAverageAtStart = os.loadavg();
  const cluster = await startEtcd({ members: 3 });
  try {
    if (only === 'balance') {
      // Replaces the section and its targets in bench/results.json (the rest stays as the last full run left it).
      const bal = await balance(cluster, (s) => process.stderr.write(s));
      process.stderr.write('\n');
      const mine = balanceTargets(bal);
      console.log(balanceTable(bal).join('\n'));
      console.log();
      for (const t of mine) console.log(`${t.met ? '✓' : '✗'} ${t.target}: ${t.value}`);
      const last = JSON.parse(readFileSync(RESULTS, 'utf8')) as Results;
      const targets = [
        ...last.targets.filter((t) => !t.target.startsWith('balance: ') && !/^(join|crash|drain): /.test(t.target)),
        ...mine,
      ];
      // A partial run (--balance-only) says nothing about the scenarios it left out.
      if (!process.argv.some((a) => a.startsWith('--balance-only='))) {
        writeFileSync(RESULTS, JSON.stringify({ ...last, balance: bal, targets }, null, 2) + '\n');
      }
      return;
    }
    if (only === 'scale10k') {
      const r = await scaleLocked(cluster, 10_000, false);
      console.log(JSON.stringify(r, null, 2));
      return;
    }
    if (only === 'sick') {
      // Also replaces the section in bench/results.json (the rest of it stays as the last full run left it).
      const sick = await sickMember((s) => process.stderr.write(s));
      console.log(sickTable(sick).join('\n'));
      const last = JSON.parse(readFileSync(RESULTS, 'utf8')) as Results;
      writeFileSync(RESULTS, JSON.stringify({ ...last, sick }, null, 2) + '\n');
      return;
    }
    if (only !== undefined) throw new Error(`unknown --only=${only} (known: scale10k, balance, sick)`);
    const m = { ...(await machine(cluster)), loadAverageAtStart: loadAverageAtStart.map((l) => Math.round(l * 100) / 100) };
    const seconds: Record<string, number> = {};
    const timed = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
      const t = now();
      try {
        return await fn();
      } finally {
        seconds[label] = Math.round((now() - t) / 100) / 10;
        process.stderr.write(` ${seconds[label]} s\n`);
      }
    };
    seconds['etcd start'] = Math.round((now() - started) / 100) / 10;
    process.stderr.write(`floor + hand-over, ${ROUNDS} rounds each in blocks of ${BLOCK} `);
    const h = await timed('hand-over', () => handover(cluster));
    process.stderr.write(`crash failover, ${CRASH_TRIALS} trials each, ttl ${CRASH_TTL} s `);
    const c = await timed('crash', () => crash(cluster));
    process.stderr.write('scale: locked 1,000');
    const locked1k = await timed('locked 1k', () => scaleLocked(cluster, 1_000));
    process.stderr.write('scale: etcd3 1,000');
    const etcd3_1k = await timed('etcd3 1k', () => scaleEtcd3(cluster, 1_000));
    process.stderr.write('scale: locked 10,000');
    const locked10k = await timed('locked 10k', () => scaleLocked(cluster, 10_000));
    process.stderr.write('balance:');
    const bal = await timed('balance', () => balance(cluster, (s) => process.stderr.write(s)));
    process.stderr.write('sick member (a cluster of its own):');
    const sick = await timed('sick member', () => sickMember((s) => process.stderr.write(s)));
    const results: Results = {
      date: new Date().toISOString(),
      machine: m,
      durationSeconds: 0,
      phaseSeconds: seconds,
      handover: h,
      crash: c,
      scale: { ttl: SCALE_TTL, locked1k, locked10k, etcd3_1k },
      balance: bal,
      sick,
      targets: [],
    };
    results.targets = targets(results);
    results.durationSeconds = Math.round((now() - started) / 100) / 10;
    console.log(table(results));
    console.log();
    console.log(balanceTable(bal).join('\n'));
    console.log();
    console.log(sickTable(sick).join('\n'));
    console.log();
    console.log(
      `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}; etcd ${m.etcd}, ${m.etcdMembers} members on loopback; ` +
        `load average at start ${m.loadAverageAtStart.join(' / ')}. Scale runs: ttl ${SCALE_TTL} s; keepalives counted from etcd's /metrics over ${KEEPALIVE_WINDOW_MS / 1000} s.`,
    );
    console.log();
    for (const t of results.targets) console.log(`${t.met ? '✓' : '✗'} ${t.target}: ${t.value}`);
    for (const [label, x] of Object.entries(results.scale)) {
      if (typeof x !== 'object') continue;
      for (const [msg, count] of Object.entries(x.errors)) console.log(`  ${label}: ${count} × ${msg}`);
    }
    console.log(`\n(${results.durationSeconds} s; JSON in bench/results.json)`);
    writeFileSync(RESULTS, JSON.stringify(results, null, 2) + '\n');
  } catch (err) {
    console.error(`etcd's last words:\n${cluster.diagnostics()}`);
    throw err;
  } finally {
    await cluster.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
