// The long form of the safety suite (issue 3): random faults (host cut off, paused,
// killed, terminated; etcd member killed, frozen, cut off from its peers, slowed; quorum
// lost; keys deleted by an operator) for a set time against a
// real 3-node etcd and a few hosts as processes, each registering the same names with a
// fenced fn; then the history checker judges every host's history and a table is printed.
//
//   npm run chaos -- --seconds 60 [--hosts 4] [--names 3] [--ttl 2] [--seed 42]
//   npm run chaos -- --sim [--seconds 60] [--seed 42]   (the deterministic simulation, long form)
//
// Every host also calls locker.runOnce for one job per round (job1, job2, …: a job that
// honours its signal), and a fault deletes a job's record while it runs; the run-once
// rules are checked too (see checkOnce).
//
// Evidence that etcd ended a lease early: with every 'deposed' stop a host reports what
// it knew of the lease of that key (send time of the last keepalive etcd answered with
// TTL > 0, as seen on the etcd3 client; whether the library still held the lease; any
// revoke it sent — test/fixtures/host.ts, `probes`), and this process asks every etcd
// member for that lease's TimeToLive at once. A lease reported gone before that send
// time + ttl, which no host revoked, under a key no operator delete can explain, was
// ended early by etcd (see leaseVerdict).
//
// Exit code 0 only when there was no overlap, no fencing violation, no crash, no odd
// history, no broken run-once rule, and every name had exactly one leader again after
// the last fault healed.
// Every host talks to etcd through its own TCP proxies (one per member), so a host can
// be cut off without touching the others, and an etcd member kill affects all alike.
import { Etcd3 } from 'etcd3';
import { etcdRevokesLiveLeases, startEtcd, type EtcdCluster } from './helpers/etcd.js';
import { describeEvent, leadersOf, spawnHost, type Host, type HostConfig, type HostEvent } from './helpers/host.js';
import {
  checkHistories,
  historyOf,
  ms,
  type FaultWindow,
  type HistoryReport,
  type LeadershipSpan,
  type Overlap,
  type ProcessHistory,
} from './helpers/history.js';
import { startProxy, type Proxy } from './helpers/proxy.js';
import { memberUsers, partitionable, type Partitioner } from './helpers/partition.js';
import { sleep, waitFor } from './helpers/wait.js';

interface Options {
  seconds: number;
  hosts: number;
  names: number;
  ttl: number;
  seed: number;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { seconds: 60, hosts: 4, names: 3, ttl: 2, seed: Date.now() % 1_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const m = /^--(seconds|hosts|names|ttl|seed)(?:=(.*))?$/.exec(flag);
    if (!m) throw new Error(`unknown argument '${flag}' (expected --seconds N, --hosts N, --names N, --ttl N, --seed N)`);
    const raw = m[2] ?? argv[++i];
    const value = Number(raw);
    if (raw === undefined || !Number.isFinite(value) || value <= 0) throw new Error(`--${m[1]} needs a positive number, got '${raw}'`);
    opts[m[1] as keyof Options] = value;
  }
  if (opts.hosts < 2) throw new Error(`--hosts must be at least 2, got ${opts.hosts}`);
  if (!Number.isInteger(opts.ttl) || opts.ttl < 2) throw new Error(`--ttl must be a whole number ≥ 2, got ${opts.ttl}`);
  return opts;
}

/** Small seeded PRNG (mulberry32): the fault schedule of a seed is reproducible, its timing is not. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind =
  | 'blackhole'
  | 'pause'
  | 'kill-host'
  | 'sigterm'
  | 'kill-member'
  | 'freeze-member'
  | 'cut-member'
  | 'slow-member'
  | 'quorum-loss'
  | 'delete-key'
  | 'del-prefix-name'
  | 'del-prefix-all'
  | 'delete-once-record';
const KINDS: Kind[] = [
  'blackhole',
  'pause',
  'kill-host',
  'sigterm',
  'kill-member',
  'freeze-member',
  'cut-member',
  'slow-member',
  'quorum-loss',
  'delete-key',
  'del-prefix-name',
  'del-prefix-all',
  'delete-once-record',
];
const WEIGHTS: Record<Kind, number> = {
  blackhole: 3,
  pause: 3,
  'kill-host': 2,
  sigterm: 1,
  'kill-member': 2,
  'freeze-member': 2,
  'cut-member': 2,
  'slow-member': 1,
  'quorum-loss': 1,
  'delete-key': 1,
  'del-prefix-name': 1,
  'del-prefix-all': 0.5,
  'delete-once-record': 1.5,
};
const HOST_KINDS = new Set<Kind>(['blackhole', 'pause', 'kill-host', 'sigterm']);

interface Slot {
  id: string;
  incarnation: number;
  host: Host;
  proxies: Proxy[];
  /** Histories of earlier incarnations. */
  past: ProcessHistory[];
  /** A fault is aimed at this host right now. */
  busy: boolean;
  /** We killed or terminated the current process on purpose. */
  expectExit: boolean;
}

const now = (): bigint => process.hrtime.bigint();

/** An operator's delete (a key or a prefix), for the lease evidence; `revision` from `etcdctl -w json` when it answered. */
/**
 * An operator's delete of election keys of `name`, for the history checker's deposed window:
 * `key` when one key was deleted (not the whole queue), `revision` of the delete when etcdctl
 * reported it (a key created at or after it was not deleted by it).
 */
interface KeyDelete {
  name: string;
  at: bigint;
  until?: bigint;
  key?: string;
  revision?: bigint | undefined;
}

interface OperatorDelete {
  at: bigint;
  until?: bigint;
  key?: string;
  prefix?: string;
  revision?: bigint;
}

/** One member's answer to LeaseTimeToLive, stamped when it arrived. */
interface LeaseAnswer {
  member: number;
  at: bigint;
  ttl: number;
}

/** The TimeToLive of a deposed key's lease, asked of every member the moment the stop arrived. */
interface LeaseQuery {
  sent: bigint;
  answers: LeaseAnswer[];
  errors: string[];
}

/** A delete of a run-once record `<prefix><name>` (the fault, or `del --prefix` of everything). */
interface RecordDelete {
  name: string;
  at: bigint;
  /** When etcdctl answered; undefined: it failed, and may still have landed at any time after `at`. */
  until?: bigint;
  by: 'fault' | 'del-prefix-all';
}

/** One run-once job: every live host calls locker.runOnce(name) for it. */
interface OnceRound {
  name: string;
  from: bigint;
  asked: { label: string; host: Host }[];
}

const eventKey = (label: string, name: string, token: string): string => `${label} ${name} ${token}`;

async function main(): Promise<number> {
  if (process.argv.includes('--sim')) {
    // The long form of the deterministic simulation (test/sim/): no etcd, virtual time.
    const { longSimulation } = await import('./sim/long.js');
    return longSimulation(process.argv.slice(2).filter((a) => a !== '--sim'));
  }
  const opts = parseArgs(process.argv.slice(2));
  const rand = prng(opts.seed);
  // The run-once rounds draw from their own stream: the fault schedule of a seed stays as it was.
  const onceRand = prng(opts.seed ^ 0x5bd1e995);
  const between = (lo: number, hi: number): number => lo + rand() * (hi - lo);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const ttlMs = opts.ttl * 1000;
  const prefix = 'chaos/';
  const names = Array.from(
    { length: opts.names },
    (_, i) => ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'][i] ?? `name${i}`,
  );
  const t0 = now();
  const clock = (): string => `${(ms(now() - t0) / 1000).toFixed(1).padStart(6)} s`;
  const log = (line: string): void => void process.stderr.write(`${clock()}  ${line}\n`);

  log(`chaos: ${opts.seconds} s, ${opts.hosts} hosts × ${names.length} names, ttl ${opts.ttl} s, seed ${opts.seed}`);
  // Members run as their own unix users so that one can be cut off from its peers with
  // iptables (cut-member); that needs root. Without it the run says so and goes on
  // without that fault kind.
  const root = process.getuid?.() === 0;
  const users = root ? memberUsers(3) : undefined;
  if (!root) log('not root: no cut-member faults (members cut off from their peers need iptables and unix users)');
  const cluster: EtcdCluster = await startEtcd({ members: 3, ...(users ? { users } : {}) });
  const net: Partitioner | undefined = users ? await partitionable(cluster, users) : undefined;
  // One client per member, straight to it on loopback (not through any host's proxies).
  const ttlClients = cluster.endpoints.map((e) => new Etcd3({ hosts: `http://${e}` }));
  /** Asks every member for the TimeToLive of lease `id` (decimal); each answer is stamped. */
  const queryLease = (id: string): LeaseQuery => {
    const q: LeaseQuery = { sent: now(), answers: [], errors: [] };
    const p = Promise.all(
      ttlClients.map((c, member) =>
        c.leaseClient.leaseTimeToLive({ ID: id, keys: false }, { deadline: new Date(Date.now() + 1500) }).then(
          (res) => void q.answers.push({ member, at: now(), ttl: Number(res.TTL) }),
          (err: unknown) => void q.errors.push(`m${member}: ${(err as Error).message}`),
        ),
      ),
    ).then(() => undefined);
    queriesInFlight.add(p);
    void p.finally(() => queriesInFlight.delete(p));
    return q;
  };
  /** The probes of one host process: a deposed key's lease is looked up in etcd at once. */
  const probe = (host: Host, label: string): void => {
    host.onEvent((ev) => {
      if (ev.type === 'stop' && ev.reason === 'deposed' && ev.lease && ev.name !== undefined && ev.token !== undefined) {
        leaseQueries.set(eventKey(label, ev.name, ev.token), queryLease(ev.lease.id));
      }
    });
  };
  const slots: Slot[] = [];
  const faults: FaultWindow[] = [];
  /** Operator deletes of election keys, per name. */
  const deletes: KeyDelete[] = [];
  const operatorDeletes: OperatorDelete[] = [];
  const recordDeletes: RecordDelete[] = [];
  const leaseQueries = new Map<string, LeaseQuery>();
  const queriesInFlight = new Set<Promise<void>>();
  const onceRounds: OnceRound[] = [];
  let currentRound: OnceRound | undefined;
  /** When a frozen raft leader was resumed (see etcdRevokesLiveLeases). */
  const leaderThaws: bigint[] = [];
  const counts = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
  const cuts: { host: string; from: bigint; to?: bigint }[] = [];
  const unexpected: string[] = [];
  let etcdBusy = false;
  let stopping = false;

  const config = (slot: { id: string; proxies: Proxy[] }): HostConfig => ({
    endpoints: slot.proxies.map((p) => p.endpoint),
    id: slot.id,
    ttl: opts.ttl,
    prefix,
    // Host i sits out name i (when there are fewer names than hosts, some sit out none), so
    // names get different queues and leaders instead of all following the oldest host.
    names: opts.hosts >= 3 && names.length > 1 ? names.filter((_, j) => j !== Number(slot.id.slice(1)) % opts.hosts) : names,
    fencePrefix: `${prefix}fence/`,
    // Keeps writing 3 times after its signal aborted, as a careless fn would: fencing must reject what comes too late.
    // fn honours its signal (overlap is judged from fn's start until its promise settles);
    // writes in flight at a step-down, and those of paused hosts, exercise the fence.
    fn: { kind: 'fenced', everyMs: 100 },
    // Listeners with bugs: the locker reports their throws and goes on.
    throwingListeners: true,
    // Lease evidence on 'deposed' stops, revokes, run-once leaderships.
    probes: true,
  });

  /** This process joins run-once round `round` (a job that honours its signal). */
  const askOnce = (slot: Slot, round: OnceRound, jobMs: number): void => {
    const host = slot.host;
    if (!host.alive) return;
    round.asked.push({ label: `${slot.id}#${slot.incarnation}`, host });
    host.request({ op: 'once', name: round.name, job: { kind: 'until-abort', ms: jobMs }, maxAttempts: 5 }).catch(() => {
      // The process died meanwhile: its history says what it did.
    });
  };
  let roundJobMs = 0;

  const watchExit = (slot: Slot, host: Host): void => {
    void host.exited.then(({ code, signal }) => {
      if (slot.host === host && !slot.expectExit && !stopping) {
        unexpected.push(`${slot.id}#${slot.incarnation} exited (${code ?? signal}): ${host.stderr.slice(-2000)}`);
        log(`!! ${slot.id}#${slot.incarnation} exited unexpectedly (${code ?? signal})`);
      }
    });
  };

  async function launch(slot: Slot): Promise<void> {
    slot.incarnation++;
    slot.expectExit = false;
    slot.host = await spawnHost(config(slot));
    probe(slot.host, `${slot.id}#${slot.incarnation}`);
    watchExit(slot, slot.host);
    if (currentRound && !stopping) askOnce(slot, currentRound, roundJobMs);
  }

  const historiesOf = (slot: Slot): ProcessHistory[] => [...slot.past, historyOf(slot.host, `${slot.id}#${slot.incarnation}`, slot.id)];

  let exitCode = 1;
  try {
    for (let i = 0; i < opts.hosts; i++) {
      const id = `h${i}`;
      const proxies = await Promise.all(cluster.endpoints.map((e) => startProxy(e)));
      const slot: Slot = {
        id,
        incarnation: 1,
        host: await spawnHost(config({ id, proxies })),
        proxies,
        past: [],
        busy: false,
        expectExit: false,
      };
      probe(slot.host, `${id}#1`);
      watchExit(slot, slot.host);
      slots.push(slot);
    }
    await waitFor(
      () =>
        names.every(
          (n) =>
            leadersOf(
              slots.map((s) => s.host),
              n,
            ).length === 1,
        ),
      {
        timeoutMs: 30_000,
        message: 'a leader for every name at start',
      },
    );
    log(
      `started: leaders ${names
        .map(
          (n) =>
            `${n}=${
              leadersOf(
                slots.map((s) => s.host),
                n,
              )[0]!.id
            }`,
        )
        .join(' ')}`,
    );

    /** A host to aim at: the leader of some name if it is free, else any free host. */
    const target = (): Slot | undefined => {
      const free = slots.filter((s) => !s.busy && s.host.alive);
      if (free.length === 0) return undefined;
      if (rand() < 0.75) {
        const leader = leadersOf(
          slots.map((s) => s.host),
          pick(names),
        )[0];
        const slot = free.find((s) => s.host === leader);
        if (slot) return slot;
      }
      return pick(free);
    };

    async function hostFault(kind: Kind, slot: Slot): Promise<void> {
      slot.busy = true;
      const from = now();
      const window: FaultWindow = { kind, from, host: slot.id };
      faults.push(window);
      const label = `${slot.id}#${slot.incarnation}`;
      const leading = names.filter((n) => slot.host.leads(n));
      try {
        switch (kind) {
          case 'blackhole': {
            const d = between(300, 3 * ttlMs);
            log(`blackhole ${label} (leads ${leading.join(',') || 'nothing'}) for ${d.toFixed(0)} ms`);
            for (const p of slot.proxies) p.blackhole();
            const cut: { host: string; from: bigint; to?: bigint } = { host: label, from };
            cuts.push(cut);
            await sleep(d);
            cut.to = now();
            for (const p of slot.proxies) p.heal();
            break;
          }
          case 'pause': {
            const d = between(300, 2 * ttlMs + 1000);
            log(`SIGSTOP ${label} (leads ${leading.join(',') || 'nothing'}) for ${d.toFixed(0)} ms`);
            slot.host.kill('SIGSTOP');
            await sleep(d);
            slot.host.kill('SIGCONT');
            break;
          }
          case 'kill-host':
          case 'sigterm': {
            const d = between(500, 3000);
            log(
              `${kind === 'sigterm' ? 'SIGTERM' : 'SIGKILL'} ${label} (leads ${leading.join(',') || 'nothing'}), restart in ${d.toFixed(0)} ms`,
            );
            slot.expectExit = true;
            slot.host.kill(kind === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
            const exited = await Promise.race([slot.host.exited.then(() => true), sleep(ttlMs + 5000).then(() => false)]);
            if (!exited) {
              unexpected.push(`${label} did not exit within ttl + 5 s of ${kind}`);
              await slot.host.stop();
            }
            await sleep(d);
            slot.past.push(historyOf(slot.host, label, slot.id));
            if (!stopping) await launch(slot);
            break;
          }
          default:
            throw new Error(`not a host fault: ${kind}`);
        }
      } finally {
        window.to = now();
        slot.busy = false;
      }
    }

    async function etcdFault(kind: Kind): Promise<void> {
      etcdBusy = true;
      const from = now();
      try {
        switch (kind) {
          case 'kill-member': {
            const leaderIdx = await cluster.leaderIndex();
            const i = rand() < 0.5 && leaderIdx >= 0 ? leaderIdx : Math.floor(rand() * 3);
            const d = between(1000, 8000);
            const m = cluster.members[i]!;
            log(`kill etcd ${m.name}${i === leaderIdx ? ' (raft leader)' : ''} for ${d.toFixed(0)} ms`);
            const window: FaultWindow = { kind, from };
            faults.push(window);
            await m.kill();
            await sleep(d);
            await m.start();
            window.to = now();
            break;
          }
          case 'quorum-loss': {
            const keep = Math.floor(rand() * 3);
            const down = cluster.members.filter((_, i) => i !== keep);
            const d = between(1000, 6000);
            log(`quorum loss: kill etcd ${down.map((m) => m.name).join(', ')} for ${d.toFixed(0)} ms`);
            const window: FaultWindow = { kind, from, blocksDecisions: true };
            faults.push(window);
            await Promise.all(down.map((m) => m.kill()));
            await sleep(d);
            for (const m of down) await m.start();
            window.to = now();
            break;
          }
          case 'delete-key': {
            // Forced failover of a name whose leader's host is not under a fault.
            const name = pick(names);
            const leader = leadersOf(
              slots.map((s) => s.host),
              name,
            )[0];
            const slot = slots.find((s) => s.host === leader);
            if (!leader || !slot || slot.busy) return;
            const key = leader.events.filter((e) => e.type === 'start' && e.name === name).at(-1)?.key;
            if (!key) return;
            log(`etcdctl del ${key} (leader of ${name}: ${slot.id}#${slot.incarnation})`);
            const at = now();
            const r = await cluster.etcdctl(['del', key, '-w', 'json'], { timeoutMs: 5000 });
            const od = operatorDelete(at, r, { key });
            operatorDeletes.push(od);
            if (r.code === 0) deletes.push({ name, at, until: now(), key, revision: od.revision });
            break;
          }
          case 'freeze-member': {
            // A member that accepts connections and answers nothing (a stalled disk, a
            // paused VM): hosts must move their keepalives and watches off it.
            const leaderIdx = await cluster.leaderIndex();
            const i = rand() < 0.3 && leaderIdx >= 0 ? leaderIdx : Math.floor(rand() * 3);
            const m = cluster.members[i]!;
            if (!m.isRunning || m.pid === undefined) return;
            const d = between(1000, 3 * ttlMs);
            log(`freeze etcd ${m.name}${i === leaderIdx ? ' (raft leader)' : ''} for ${d.toFixed(0)} ms`);
            const window: FaultWindow = { kind, from };
            faults.push(window);
            process.kill(m.pid, 'SIGSTOP');
            try {
              await sleep(d);
            } finally {
              if (m.pid !== undefined) process.kill(m.pid, 'SIGCONT');
              window.to = now();
              if (i === leaderIdx) leaderThaws.push(window.to);
            }
            break;
          }
          case 'cut-member': {
            // Cut off from its peers while every host still reaches it: it loses its raft
            // leader (or, if it led, its followers) and answers nothing that needs one.
            if (!net) return;
            const leaderIdx = await cluster.leaderIndex();
            const i = rand() < 0.3 && leaderIdx >= 0 ? leaderIdx : Math.floor(rand() * 3);
            const m = cluster.members[i]!;
            if (!m.isRunning) return;
            const d = between(1000, 4 * ttlMs);
            log(`cut etcd ${m.name}${i === leaderIdx ? ' (raft leader)' : ''} off its peers for ${d.toFixed(0)} ms`);
            const window: FaultWindow = { kind, from };
            faults.push(window);
            net.cut(i);
            try {
              await sleep(d);
            } finally {
              net.heal(i);
              window.to = now();
            }
            break;
          }
          case 'slow-member': {
            // Every host's link to one member gets 1–1.5 s of latency each way.
            const i = Math.floor(rand() * 3);
            const latency = between(1000, 1500);
            const d = between(1000, 4 * ttlMs);
            log(`slow etcd ${cluster.members[i]!.name}: +${latency.toFixed(0)} ms each way for ${d.toFixed(0)} ms`);
            const window: FaultWindow = { kind, from };
            faults.push(window);
            for (const slot of slots) slot.proxies[i]!.delay(latency);
            try {
              await sleep(d);
            } finally {
              for (const slot of slots) slot.proxies[i]!.delay(0);
              window.to = now();
            }
            break;
          }
          case 'del-prefix-name':
          case 'del-prefix-all': {
            // What an operator does to clear a queue (one revision, one delete per key):
            // every candidate learns its key is gone, the leader stops, all queue again.
            const one = kind === 'del-prefix-name' ? pick(names) : undefined;
            const range = one ? `${prefix}${one}/` : prefix;
            log(`etcdctl del --prefix ${range}`);
            const at = now();
            const r = await cluster.etcdctl(['del', '--prefix', range, '-w', 'json'], { timeoutMs: 5000 });
            const od = operatorDelete(at, r, { prefix: range });
            operatorDeletes.push(od);
            const until = r.code === 0 ? now() : undefined;
            if (r.code === 0) for (const n of one ? [one] : names) deletes.push({ name: n, at, until: now(), revision: od.revision });
            // Everything: the run-once records and the keys of their elections too.
            if (!one) {
              for (const round of onceRounds) {
                recordDeletes.push({ name: round.name, at, by: 'del-prefix-all', ...(until !== undefined ? { until } : {}) });
                if (until !== undefined) deletes.push({ name: round.name, at, until });
              }
            }
            break;
          }
          case 'delete-once-record': {
            // An operator resets a run-once job while an attempt of it runs: the runner
            // must still finish alone, nothing may run beside it, and a new run (from
            // attempt 1) may only come once the record is gone.
            const running = runningJob();
            if (!running) return;
            const key = `${prefix}${running.name}`;
            log(`etcdctl del ${key} (run-once record, while ${running.label} runs attempt ${running.attempt})`);
            const at = now();
            const r = await cluster.etcdctl(['del', key, '-w', 'json'], { timeoutMs: 5000 });
            operatorDeletes.push(operatorDelete(at, r, { key }));
            recordDeletes.push({ name: running.name, at, by: 'fault', ...(r.code === 0 ? { until: now() } : {}) });
            break;
          }
          default:
            throw new Error(`not an etcd fault: ${kind}`);
        }
      } finally {
        etcdBusy = false;
      }
    }

    /** An attempt of the current round's job that runs now, and where. */
    function runningJob(): { name: string; label: string; attempt: number } | undefined {
      const round = currentRound;
      if (!round) return undefined;
      for (const slot of slots) {
        if (!slot.host.alive) continue;
        let open: HostEvent | undefined;
        for (const e of slot.host.events) {
          if (e.name !== round.name) continue;
          if (e.type === 'job-start') open = e;
          if (e.type === 'job-end' || e.type === 'outcome') open = undefined;
        }
        if (open) return { name: round.name, label: `${slot.id}#${slot.incarnation}`, attempt: open.attempt ?? 0 };
      }
      return undefined;
    }

    /** Run-once rounds until the faults stop: each round a new job; the next starts once every caller has its outcome (or died), ≤ 20 s. */
    let faultsOver = false;
    const onceLoop = (async (): Promise<void> => {
      for (let k = 1; !faultsOver; k++) {
        const round: OnceRound = { name: `job${k}`, from: now(), asked: [] };
        roundJobMs = 1000 + onceRand() * 3000;
        onceRounds.push(round);
        currentRound = round;
        for (const slot of slots) askOnce(slot, round, roundJobMs);
        const deadline = Date.now() + 20_000;
        while (
          Date.now() < deadline &&
          !round.asked.every(({ host }) => !host.alive || host.events.some((e) => e.type === 'outcome' && e.name === round.name))
        ) {
          await sleep(100);
        }
        currentRound = undefined;
        if (faultsOver) break;
        await sleep(300 + onceRand() * 1200);
      }
    })();

    const running = new Set<Promise<void>>();
    const track = (p: Promise<void>, kind: Kind): void => {
      counts[kind]++;
      const q = p.catch((err: unknown) => {
        unexpected.push(`fault ${kind} failed: ${(err as Error).stack ?? String(err)}`);
        log(`!! fault ${kind} failed: ${(err as Error).message}`);
      });
      running.add(q);
      void q.finally(() => running.delete(q));
    };

    const endAt = Date.now() + opts.seconds * 1000;
    const total = KINDS.reduce((s, k) => s + WEIGHTS[k], 0);
    while (Date.now() < endAt) {
      await sleep(between(300, 2500));
      if (Date.now() >= endAt) break;
      let r = rand() * total;
      const kind = KINDS.find((k) => (r -= WEIGHTS[k]) < 0) ?? 'blackhole';
      if (HOST_KINDS.has(kind)) {
        // At most half the hosts under a fault at once: someone can always take over.
        if (slots.filter((s) => s.busy).length >= Math.floor(opts.hosts / 2)) continue;
        const slot = target();
        if (slot) track(hostFault(kind, slot), kind);
      } else {
        if (etcdBusy) continue;
        // Only while an attempt runs: that is the case to exercise.
        if (kind === 'delete-once-record' && !runningJob()) continue;
        track(etcdFault(kind), kind);
      }
    }
    faultsOver = true;
    log(`faults stop; waiting for ${running.size} to heal`);
    while (running.size > 0) await Promise.all([...running]);
    await onceLoop;
    const healedAt = now();
    let settled = true;
    try {
      await waitFor(
        () =>
          names.every(
            (n) =>
              leadersOf(
                slots.map((s) => s.host),
                n,
              ).length === 1,
          ),
        {
          timeoutMs: ttlMs + 20_000,
          intervalMs: 10,
          message: 'exactly one leader of every name after the last heal',
        },
      );
    } catch (err) {
      settled = false;
      log(`!! ${(err as Error).message}`);
    }
    const settleMs = ms(now() - healedAt);
    const endOfRun = now();
    stopping = true;
    const histories = slots.flatMap(historiesOf);
    for (const s of slots) s.expectExit = true;
    await Promise.all(slots.map((s) => s.host.stop()));

    await Promise.all([...queriesInFlight]);
    // The singletons' histories without the run-once jobs (they would count as names nobody leads after their round).
    const onceNames = new Set(onceRounds.map((r) => r.name));
    const singletonHistories = histories.map((h) => ({
      ...h,
      events: h.events.filter((e) => e.name === undefined || !onceNames.has(e.name)),
    }));
    const report = checkHistories(singletonHistories, { endOfRun, faults, deletes });
    const once = checkOnce(histories, onceRounds, recordDeletes, { endOfRun, faults, deletes });
    const crashes = histories.flatMap((h) => h.events.filter((e) => e.type === 'crash').map((e) => `${h.label}: ${e.message}`));
    const failures = printTable(opts, counts, report, {
      cuts,
      crashes,
      unexpected,
      settled,
      settleMs,
      histories,
      t0,
      faults,
      leaderThaws,
      once,
      deletes,
      evidence: { leaseQueries, operatorDeletes, prefix, ttlNs: BigInt(ttlMs) * 1_000_000n },
    });
    exitCode = failures === 0 ? 0 : 1;
  } finally {
    stopping = true;
    await Promise.all(slots.map((s) => s.host.stop().catch(() => {})));
    await Promise.all(slots.flatMap((s) => s.proxies.map((p) => p.close())));
    for (const c of ttlClients) c.close();
    await net?.close();
    await cluster.close();
  }
  return exitCode;
}

/** What an `etcdctl del … -w json` did: its revision when it answered. */
function operatorDelete(at: bigint, r: { code: number; stdout: string }, what: { key: string } | { prefix: string }): OperatorDelete {
  const d: OperatorDelete = { at, ...what };
  if (r.code === 0) {
    d.until = now();
    const m = /"revision":\s*(\d+)/.exec(r.stdout);
    if (m) d.revision = BigInt(m[1]!);
  }
  return d;
}

interface EvidenceInputs {
  leaseQueries: ReadonlyMap<string, LeaseQuery>;
  operatorDeletes: readonly OperatorDelete[];
  prefix: string;
  ttlNs: bigint;
}

/** Whether etcd ended the lease of a deposed key early, and the facts that say so. */
interface LeaseVerdict {
  early: boolean;
  /** What the members said of the lease right after the stop. */
  etcd: 'gone' | 'alive' | 'no answer';
  facts: string[];
}

/**
 * The lease evidence of the 'deposed' stop of (label, name, token). "etcd ended a live
 * lease early" only when all of these hold:
 * - the host's library still held the lease (current, not lost, inside its step-down deadline);
 * - the host saw etcd answer a keepalive (or the grant) sent at S with TTL > 0, and the
 *   stop came before S + ttl — etcd could not have expired the lease by then;
 * - a member answered TimeToLive with -1 (no such lease: a revoke was applied) before S + ttl;
 * - no process of that host sent a revoke of it before that answer;
 * - no operator delete could have deleted the key (a delete of it or of a prefix holding
 *   it, issued before the stop, at a revision after the key's creation; one that did
 *   not answer, or whose revision is unknown, counts if issued within 30 s before the stop).
 */
function leaseVerdict(
  histories: readonly ProcessHistory[],
  label: string,
  name: string,
  token: string,
  ev: EvidenceInputs,
  t0: bigint,
): LeaseVerdict | undefined {
  const h = histories.find((x) => x.label === label);
  const stop = h?.events.find((e) => e.type === 'stop' && e.name === name && e.token === token && e.reason === 'deposed' && e.lease);
  if (!h || !stop?.lease) return undefined;
  const L = stop.lease;
  const at = (t: bigint): string => `${(ms(t - t0) / 1000).toFixed(3)} s`;
  const tStop = BigInt(stop.t);
  const key = h.events.find((e) => e.type === 'start' && e.name === name && e.token === token)?.key ?? `${ev.prefix}${name}/${L.hex}`;
  const q = ev.leaseQueries.get(eventKey(label, name, token));
  const limit = L.ackSent !== undefined ? BigInt(L.ackSent) + ev.ttlNs : undefined;
  const gone = q?.answers.filter((a) => a.ttl === -1).sort((a, b) => (a.at < b.at ? -1 : 1))[0];
  const alive = q?.answers.filter((a) => a.ttl > 0) ?? [];
  const revokes = histories
    .filter((x) => x.host === h.host)
    .flatMap((x) => x.events.filter((e) => e.type === 'revoke' && e.leaseId === L.id).map((e) => ({ label: x.label, t: BigInt(e.t) })));
  const revokedBefore = revokes.filter((r) => r.t < (gone?.at ?? tStop));
  const explaining = ev.operatorDeletes.filter(
    (d) =>
      (d.key === key || (d.prefix !== undefined && key.startsWith(d.prefix))) &&
      d.at <= tStop &&
      (d.revision !== undefined ? d.revision > BigInt(token) : d.at >= tStop - 30_000_000_000n),
  );
  const facts = [
    `lease ${L.hex} of key ${key} (token ${token}); deposed stop at ${at(tStop)}`,
    `library: ${L.libAlive ? 'held it, inside its step-down deadline' : 'did NOT hold it alive'}${L.libAckAgoMs !== undefined ? ` (last acknowledged keepalive sent ${L.libAckAgoMs} ms before)` : ''}`,
    limit !== undefined
      ? `etcd3 client: last keepalive answered with TTL > 0 sent at ${at(BigInt(L.ackSent!))}: etcd may not expire it before ${at(limit)}${tStop < limit ? '' : ' — already passed at the stop'}`
      : 'etcd3 client: no acknowledged keepalive or grant of it seen',
    L.goneSaid !== undefined ? `a keepalive was answered 'gone' at ${at(BigInt(L.goneSaid))} (before the stop)` : '',
    q === undefined
      ? 'TimeToLive: not asked'
      : gone
        ? `TimeToLive: m${gone.member} said no such lease at ${at(gone.at)} (asked at ${at(q.sent)})${limit !== undefined && gone.at >= limit ? ' — but not before the limit' : ''}`
        : alive.length
          ? `TimeToLive: alive (${alive.map((a) => `m${a.member} ${a.ttl} s`).join(', ')})`
          : `TimeToLive: no answer (${q.errors.join('; ') || 'none'})`,
    revokedBefore.length
      ? `revoked by ${revokedBefore.map((r) => `${r.label} at ${at(r.t)}`).join(', ')}`
      : 'no revoke of it sent by its host',
    explaining.length
      ? `operator deletes that may have removed the key: ${explaining.map((d) => `${d.key ?? `${d.prefix}*`} at ${at(d.at)}${d.revision !== undefined ? ` rev ${d.revision}` : ' (no answer)'}`).join(', ')}`
      : 'no operator delete of the key since its creation',
  ].filter(Boolean);
  const early =
    L.libAlive &&
    limit !== undefined &&
    tStop < limit &&
    gone !== undefined &&
    gone.at < limit &&
    L.revokeSent === undefined &&
    revokedBefore.length === 0 &&
    explaining.length === 0;
  return { early, etcd: gone ? 'gone' : alive.length ? 'alive' : 'no answer', facts };
}

/** What the run-once rounds did and which of their rules broke. */
interface OnceCheck {
  rounds: number;
  runs: number;
  okRuns: number;
  outcomes: { done: number; failed: number; rejected: number };
  /** Record deletes: by the fault (while a run ran), by `del --prefix` of everything (one per job so far). */
  recordDeletes: { fault: number; all: number };
  /** Runs that started from attempt 1 again after their record was deleted. */
  restarts: number;
  /** Callers (processes alive at the end) without an outcome. */
  waiting: number;
  /** Attempts that began after their leadership had stopped (fn called with its signal already aborted). */
  lateStarts: number;
  /** Who is still waiting, and why calls were rejected (not failures: for the reader). */
  notes: string[];
  /** Overlaps of job runs (job-start … job-end) of different processes, judged like leaderships. */
  report: HistoryReport;
  /** Histories whose leaderships are the job runs (for the lease evidence of their 'deposed' ends). */
  histories: ProcessHistory[];
  violations: string[];
}

/**
 * The run-once rules, with the record `<prefix><name>` deleted now and then (the fault):
 * - no two runs of a job overlap (a run: job-start … job-end; judged like leaderships:
 *   the same tolerated windows, each run ending with the reason its leadership stopped);
 * - attempt numbers go up, and never past maxAttempts; they start again (from 1, or
 *   lower) only after a delete of the record issued before that run;
 * - once an outcome was reported, a new run starts only after a delete of the record
 *   that ended after the last run before that outcome ended;
 * - every caller reports the same outcome, unless a record delete lies between two
 *   different ones; 'done' names a run that ended well on that host with that attempt.
 */
function checkOnce(
  histories: readonly ProcessHistory[],
  rounds: readonly OnceRound[],
  recordDeletes: readonly RecordDelete[],
  opts: Parameters<typeof checkHistories>[1],
): OnceCheck {
  const onceNames = new Set(rounds.map((r) => r.name));
  const violations: string[] = [];
  const MAX_ATTEMPTS = 5;
  const slackNs = 1_000_000_000n;
  const end = (d: RecordDelete): bigint => d.until ?? opts.endOfRun + 1n;
  // Job runs as leaderships: start at job-start, stop at job-end with the reason of the
  // leadership's own stop if that came first ('done' otherwise).
  const jobHistories: ProcessHistory[] = histories.map((h) => {
    const stops = new Map<string, HostEvent>();
    const keys = new Map<string, string>();
    for (const e of h.events) {
      if (e.name === undefined || !onceNames.has(e.name)) continue;
      if (e.type === 'stop' && e.token !== undefined) stops.set(`${e.name} ${e.token}`, e);
      if (e.type === 'start' && e.token !== undefined && e.key !== undefined) keys.set(`${e.name} ${e.token}`, e.key);
    }
    const events: HostEvent[] = [];
    for (const e of h.events) {
      if (e.name === undefined || !onceNames.has(e.name) || e.token === undefined) continue;
      const k = `${e.name} ${e.token}`;
      if (e.type === 'job-start') {
        const key = keys.get(k);
        events.push({ t: e.t, id: e.id, type: 'start', name: e.name, token: e.token, ...(key !== undefined ? { key } : {}) });
      } else if (e.type === 'job-end') {
        const stop = stops.get(k);
        const reason = stop && BigInt(stop.t) <= BigInt(e.t) ? (stop.reason ?? '?') : 'done';
        events.push({ t: e.t, id: e.id, type: 'stop', name: e.name, token: e.token, reason });
      }
    }
    return { ...h, events };
  });
  const report = checkHistories(jobHistories, opts);

  let runs = 0;
  let okRuns = 0;
  let restarts = 0;
  let waiting = 0;
  let lateStarts = 0;
  const notes: string[] = [];
  const outcomes = { done: 0, failed: 0, rejected: 0 };
  for (const round of rounds) {
    const name = round.name;
    const all = histories.flatMap((h) => h.events.filter((e) => e.name === name).map((e) => ({ e, label: h.label, t: BigInt(e.t) })));
    all.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
    const starts = all.filter((x) => x.e.type === 'job-start');
    const ends = all.filter((x) => x.e.type === 'job-end');
    const outs = all.filter((x) => x.e.type === 'outcome' && x.e.status !== undefined);
    const deletesOf = recordDeletes.filter((d) => d.name === name);
    runs += starts.length;
    okRuns += ends.filter((x) => x.e.ok).length;
    for (const x of all) {
      if (x.e.type !== 'outcome') continue;
      if (x.e.status === 'done') outcomes.done++;
      else if (x.e.status === 'failed') outcomes.failed++;
      else {
        outcomes.rejected++;
        notes.push(`'${name}': ${x.label} rejected: ${x.e.message}`);
      }
    }
    for (const a of round.asked) {
      const h = histories.find((x) => x.label === a.label);
      if (h && h.exitedAt === undefined && h.killedAt === undefined && !h.events.some((e) => e.type === 'outcome' && e.name === name)) {
        waiting++;
        const last = h.events.filter((e) => e.name === name).at(-1);
        notes.push(
          `'${name}': ${a.label} still waiting at the end${last ? ` (last: ${last.type}${last.reason ? ` ${last.reason}` : ''}${last.message ? ` ${last.message}` : ''})` : ''}`,
        );
      }
    }
    const seen = new Set<string>();
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]!;
      const attempt = s.e.attempt ?? 0;
      const id = `${s.label} ${s.e.token}`;
      if (seen.has(id)) violations.push(`'${name}': ${s.label} ran twice under one leadership (token ${s.e.token})`);
      seen.add(id);
      const h = histories.find((x) => x.label === s.label);
      const stop = h?.events.find((e) => e.type === 'stop' && e.name === name && e.token === s.e.token);
      if (stop && BigInt(stop.t) < s.t) {
        lateStarts++;
        notes.push(
          `'${name}': ${s.label} began attempt ${attempt} ${ms(s.t - BigInt(stop.t)).toFixed(0)} ms after its leadership stopped (${stop.reason})`,
        );
      }
      if (attempt < 1 || attempt > MAX_ATTEMPTS)
        violations.push(`'${name}': ${s.label} ran attempt ${attempt} (maxAttempts ${MAX_ATTEMPTS})`);
      const prev = starts[i - 1];
      if (prev && attempt <= (prev.e.attempt ?? 0)) {
        const reset = deletesOf.some((d) => d.at < s.t && end(d) >= prev.t - slackNs);
        if (!reset)
          violations.push(
            `'${name}': ${s.label} ran attempt ${attempt} after ${prev.label} ran attempt ${prev.e.attempt}, with no record delete between`,
          );
        else restarts++;
      }
      // A run after an outcome: only on a record wiped after that outcome's last run.
      const decided = outs.filter((o) => o.t < s.t).at(-1);
      if (decided) {
        const lastEnd = ends.filter((x) => x.t <= decided.t).at(-1)?.t ?? round.from;
        if (!deletesOf.some((d) => d.at < s.t && end(d) >= lastEnd)) {
          violations.push(
            `'${name}': ${s.label} ran attempt ${attempt} after ${decided.label} had the outcome '${decided.e.status}' (attempts ${decided.e.attempts}), with no record delete between`,
          );
        }
      }
    }
    // What each record delete of the fault led to (for the reader).
    for (const d of deletesOf.filter((x) => x.by === 'fault')) {
      const ran = starts.filter((x) => x.t < d.at).at(-1);
      const next = starts.find((x) => x.t > d.at);
      const firstOut = outs.find((x) => x.t > d.at);
      notes.push(
        `'${name}': record deleted at ${ms(d.at - round.from).toFixed(0)} ms into the job, during ${ran ? `${ran.label}'s attempt ${ran.e.attempt}` : 'no run'}; ` +
          `${next ? `next run: ${next.label} attempt ${next.e.attempt}` : 'no run after it'}; ` +
          `${firstOut ? `outcome after it: '${firstOut.e.status}' attempts ${firstOut.e.attempts} by ${firstOut.e.by}` : 'no outcome after it'}`,
      );
    }
    // Outcomes: one per record lifetime.
    const firsts: typeof outs = [];
    for (const o of outs) {
      if (!firsts.some((f) => f.e.status === o.e.status && f.e.attempts === o.e.attempts && f.e.by === o.e.by)) firsts.push(o);
    }
    for (let i = 1; i < firsts.length; i++) {
      const a = firsts[i - 1]!;
      const b = firsts[i]!;
      const lastEnd = ends.filter((x) => x.t <= a.t).at(-1)?.t ?? round.from;
      if (!deletesOf.some((d) => d.at < b.t && end(d) >= lastEnd)) {
        violations.push(
          `'${name}': ${b.label} has the outcome '${b.e.status}' (attempts ${b.e.attempts}, by ${b.e.by}) but ${a.label} had '${a.e.status}' (attempts ${a.e.attempts}, by ${a.e.by}), with no record delete between`,
        );
      }
    }
    for (const o of firsts) {
      if (o.e.status === 'done' && !ends.some((x) => x.e.ok && x.e.attempt === o.e.attempts && x.e.id === o.e.by)) {
        violations.push(
          `'${name}': outcome 'done' (attempts ${o.e.attempts}, by ${o.e.by}) but no run of attempt ${o.e.attempts} ended well on ${o.e.by}`,
        );
      }
      if ((o.e.attempts ?? 0) > MAX_ATTEMPTS)
        violations.push(`'${name}': outcome with ${o.e.attempts} attempts (maxAttempts ${MAX_ATTEMPTS})`);
    }
  }
  return {
    rounds: rounds.length,
    runs,
    okRuns,
    outcomes,
    recordDeletes: {
      fault: recordDeletes.filter((d) => d.by === 'fault').length,
      all: recordDeletes.filter((d) => d.by === 'del-prefix-all').length,
    },
    restarts,
    waiting,
    lateStarts,
    notes,
    report,
    histories: jobHistories,
    violations,
  };
}

function printTable(
  opts: Options,
  counts: Record<Kind, number>,
  r: HistoryReport,
  extra: {
    cuts: { host: string; from: bigint; to?: bigint }[];
    crashes: string[];
    unexpected: string[];
    settled: boolean;
    settleMs: number;
    histories: ProcessHistory[];
    t0: bigint;
    faults: FaultWindow[];
    leaderThaws: bigint[];
    once: OnceCheck;
    deletes: readonly KeyDelete[];
    evidence: EvidenceInputs;
  },
): number {
  // etcd with etcd-io/etcd#15247 (etcdRevokesLiveLeases: 3.4, 3.5 through 3.5.30 — #16822 did not
  // end it for a frozen process, bench/etcd-thaw.ts): a raft leader whose
  // raft loop stalled (here: SIGSTOP) still thinks it is primary for leases when it
  // resumes, and revokes every lease whose TTL ran out in its own view — leases the new
  // leader kept alive all along — through proposal forwarding. The keys of healthy
  // leaders vanish; the old leader learns it from the same delete event as its successor
  // ('deposed', a few ms later) and then hears its lease is gone. No client can prevent
  // that; such overlaps are counted apart, with their evidence, and only on an affected
  // etcd: on a fixed one they would be this library's fault.
  const affected = etcdRevokesLiveLeases();
  const s = BigInt(1e9);
  const byEtcd = (o: Overlap): boolean =>
    affected &&
    extra.leaderThaws.some((t) => o.from >= t - s / 2n && o.from <= t + 2n * s) &&
    [o.a.label, o.b.label].some((label) =>
      extra.histories
        .find((h) => h.label === label)
        ?.events.some(
          (e) => e.type === 'lost' && /expired or revoked/.test(e.message ?? '') && BigInt(e.t) >= o.from - s && BigInt(e.t) <= o.to + s,
        ),
    );
  // The same etcd bug family without a frozen leader to point at (e.g. a stale leader
  // renewing or revoking leases after a leader change): the deposed side's lease was
  // ended by etcd while the keepalive rule still guaranteed it (leaseVerdict). Counted
  // apart only on an affected etcd, only when the overlap ends with that deposed
  // leadership, within 1 s.
  const once = extra.once;
  const verdictOf = (o: Overlap, rep: HistoryReport): LeaseVerdict | undefined => {
    for (const side of [o.a, o.b]) {
      const l = rep.leaderships.find((x) => x.name === o.name && x.label === side.label && x.token === side.token);
      if (!l || l.endedBy !== 'stop' || l.reason !== 'deposed') continue;
      const v = leaseVerdict(extra.histories, side.label, o.name, side.token, extra.evidence, extra.t0);
      if (v) return v;
    }
    return undefined;
  };
  const earlyEnd = (o: Overlap, rep: HistoryReport): LeaseVerdict | undefined => {
    if (!affected || o.ms > 1000) return undefined;
    for (const side of [o.a, o.b]) {
      const l = rep.leaderships.find((x) => x.name === o.name && x.label === side.label && x.token === side.token);
      if (!l || l.endedBy !== 'stop' || l.reason !== 'deposed' || l.end !== o.to) continue;
      const v = leaseVerdict(extra.histories, side.label, o.name, side.token, extra.evidence, extra.t0);
      if (v?.early) return v;
    }
    return undefined;
  };
  type Judged = { o: Overlap; rep: HistoryReport; what: 'once' | 'singleton'; etcd?: 'etcd#15247' | 'early' };
  const judged: Judged[] = [
    ...r.overlaps.map((o) => ({ o, rep: r, what: 'singleton' as const })),
    ...once.report.overlaps.map((o) => ({ o, rep: once.report, what: 'once' as const })),
  ].map((j): Judged => (byEtcd(j.o) ? { ...j, etcd: 'etcd#15247' } : earlyEnd(j.o, j.rep) ? { ...j, etcd: 'early' } : j));
  const etcdOverlaps = judged.filter((j) => j.etcd === 'etcd#15247');
  const earlyOverlaps = judged.filter((j) => j.etcd === 'early');
  const overlaps = judged.filter((j) => j.etcd === undefined && j.what === 'singleton');
  const onceOverlaps = judged.filter((j) => j.etcd === undefined && j.what === 'once');
  // Every deposed stop with lease evidence, overlap or not: how often etcd ended a live lease early.
  const deposedStops = extra.histories.flatMap((h) =>
    h.events
      .filter((e) => e.type === 'stop' && e.reason === 'deposed' && e.lease && e.name !== undefined && e.token !== undefined)
      .map((e) => ({ h, e })),
  );
  const verdicts = deposedStops.map(({ h, e }) => ({
    label: h.label,
    e,
    v: leaseVerdict(extra.histories, h.label, e.name!, e.token!, extra.evidence, extra.t0),
  }));
  const earlyStops = verdicts.filter((x) => x.v?.early);
  // Step-down after a cut: from the blackhole to the end of each leadership the cut host
  // held, for cuts longer than renewDeadline (shorter ones may be ridden out). The rule
  // says ≤ renewDeadline; a step-down later than that + 1 s of timer slack is a failure.
  const renewMs = (opts.ttl * 2000) / 3;
  const stepDowns: number[] = [];
  const late: string[] = [];
  for (const c of extra.cuts) {
    if (c.to === undefined || ms(c.to - c.from) <= renewMs) continue;
    for (const l of r.leaderships) {
      if (l.label !== c.host || l.start >= c.from || l.end <= c.from) continue;
      if (l.endedBy !== 'stop') continue; // killed or paused meanwhile: not a step-down
      const d = ms(l.end - c.from);
      stepDowns.push(d);
      if (d > renewMs + 1000) late.push(`${l.label} kept '${l.name}' ${d.toFixed(0)} ms after being cut off (${l.reason})`);
    }
  }
  // A deposed leader stops within ttl/3 of its key's delete (sick-member issue, point 3),
  // whichever member its watch is on. Measured from the return of the operator's delete
  // command (the delete had happened by then) to the 'deposed' stop of the leadership it
  // ended: the first delete of its key (a one-key delete of that very key, or a del
  // --prefix of its queue, at a revision after the key's creation) that returned after the
  // leadership began. Not judged when the
  // host itself was under a fault meanwhile (paused, cut off, killed). Late: over ttl/3 +
  // 500 ms of timer and scheduling slack.
  const thirdMs = (opts.ttl * 1000) / 3;
  const deposeMs: number[] = [];
  const lateDeposed: { l: LeadershipSpan; ms: number; at: bigint }[] = [];
  const keyOf = (l: LeadershipSpan): string | undefined =>
    extra.histories.find((h) => h.label === l.label)?.events.find((e) => e.type === 'start' && e.name === l.name && e.token === l.token)
      ?.key;
  for (const l of r.leaderships) {
    if (l.endedBy !== 'stop' || l.reason !== 'deposed') continue;
    const key = keyOf(l);
    const d = extra.deletes
      .filter(
        (x) =>
          x.name === l.name &&
          (x.key === undefined || x.key === key) &&
          (x.revision === undefined || BigInt(l.token) < x.revision) &&
          x.until !== undefined &&
          x.until > l.start &&
          x.at < l.end,
      )
      .sort((a, b) => (a.at < b.at ? -1 : 1))[0];
    if (!d) continue; // deposed by something else (a lease etcd revoked)
    const hostFault = extra.faults.some((f) => f.host === l.host && f.from < l.end && (f.to ?? l.end) > d.at);
    if (hostFault) continue;
    const x = Math.max(0, ms(l.end - d.until!));
    deposeMs.push(x);
    if (x > thirdMs + 500) lateDeposed.push({ l, ms: x, at: d.at });
  }
  const maxOf = (xs: number[]): string => (xs.length ? `${Math.max(...xs).toFixed(1)} ms` : '–');
  const rows: [string, string][] = [];
  for (const k of KINDS) rows.push([`faults: ${k}`, String(counts[k])]);
  rows.push(['faults: total', String(KINDS.reduce((s, k) => s + counts[k], 0))]);
  rows.push(['host processes', String(extra.histories.length)]);
  rows.push(['leaderships', String(r.leaderships.length)]);
  rows.push(['overlaps (must be 0)', String(overlaps.length)]);
  rows.push([
    `overlaps after etcd revoked a live lease (etcd#15247${affected ? ', this etcd is affected' : ''})`,
    String(etcdOverlaps.length),
  ]);
  rows.push([
    `overlaps after etcd ended a live lease early (lease evidence${affected ? ', this etcd is affected' : ', not excused: this etcd is fixed'})`,
    String(earlyOverlaps.length),
  ]);
  rows.push([
    'deposed stops: etcd ended the lease early / lease alive / gone otherwise / no answer',
    `${earlyStops.length} / ${verdicts.filter((x) => x.v?.etcd === 'alive').length} / ${verdicts.filter((x) => x.v?.etcd === 'gone' && !x.v.early).length} / ${verdicts.filter((x) => !x.v || x.v.etcd === 'no answer').length} (of ${verdicts.length})`,
  ]);
  rows.push([
    'tolerated: stop right after SIGCONT or a stall of the process',
    `${r.wakeOverlaps.length} (longest ${maxOf(r.wakeOverlaps.map((o) => o.ms))})`,
  ]);
  rows.push(['tolerated: stop right after key delete', `${r.deposeOverlaps.length} (longest ${maxOf(r.deposeOverlaps.map((o) => o.ms))})`]);
  rows.push(['fenced writes accepted', String(r.fencing.accepted)]);
  rows.push(['fenced writes rejected by the fence', String(r.fencing.rejected)]);
  rows.push(['fenced writes failed (etcd unreachable)', String(r.fencing.failed)]);
  rows.push(['fencing violations (must be 0)', String(r.fencing.violations.length)]);
  rows.push(['step-down after a cut, worst', `${maxOf(stepDowns)} (n=${stepDowns.length}, renewDeadline ${renewMs.toFixed(0)} ms)`]);
  rows.push(['late step-downs (must be 0)', String(late.length)]);
  const sortedDepose = deposeMs.slice().sort((a, b) => a - b);
  rows.push([
    'deposed stop after an operator delete, p50 / worst',
    sortedDepose.length
      ? `${sortedDepose[Math.floor(sortedDepose.length / 2)]!.toFixed(0)} / ${maxOf(sortedDepose)} (n=${sortedDepose.length}, ttl/3 ${thirdMs.toFixed(0)} ms)`
      : '–',
  ]);
  rows.push(['late deposed stops, over ttl/3 + 500 ms (must be 0)', String(lateDeposed.length)]);
  const all = extra.histories.flatMap((h) => h.events);
  const moves = (reason: string): number => all.filter((e) => e.type === 'watch' && e.reason === reason).length;
  rows.push(['watch moves: preferred / dropped / behind / silent', ['preferred', 'dropped', 'behind', 'silent'].map(moves).join(' / ')]);
  // A stall that overlaps a SIGSTOP of its process is the pause fault, not starvation.
  const stalls = extra.histories.flatMap((h) =>
    h.events
      .filter((e) => e.type === 'stall')
      .filter((e) => {
        const to = BigInt(e.t);
        const from = to - BigInt(Math.round((e.ms ?? 0) + 50)) * 1_000_000n;
        return !(h.pauses ?? []).some((p) => !p.stall && p.from < to && (p.to ?? to) > from);
      })
      .map((e) => e.ms ?? 0),
  );
  rows.push(['host event loops stalled > 200 ms, pauses left out (CPU starvation)', `${stalls.length} (worst ${maxOf(stalls)})`]);
  // Only pauses longer than renewDeadline: the deadline had passed at SIGCONT, so the leadership had to end at once.
  const renewNs = BigInt(Math.round(renewMs)) * 1_000_000n;
  const mustStop = r.wakeStops.filter((w) => w.wokeAt - w.pausedAt > renewNs);
  rows.push(['stop after SIGCONT (paused > renewDeadline), worst', `${maxOf(mustStop.map((w) => w.ms))} (n=${mustStop.length})`]);
  const g = r.worstGap;
  rows.push([
    'worst time to a new leader',
    g
      ? `${g.effectiveMs.toFixed(0)} ms ('${g.name}' after ${g.prev}${g.effectiveMs !== g.ms ? `, ${g.ms.toFixed(0)} ms counting excused faults` : ''})`
      : '–',
  ]);
  rows.push(['one leader per name after the last heal', extra.settled ? `yes, ${extra.settleMs.toFixed(0)} ms after it` : 'NO']);
  rows.push(['crashes / unexpected exits (must be 0)', String(extra.crashes.length + extra.unexpected.length)]);
  rows.push(['odd histories (must be 0)', String(r.anomalies.length + once.report.anomalies.length)]);
  rows.push([
    'once: jobs / runs (ended well) / outcomes done, failed, rejected',
    `${once.rounds} / ${once.runs} (${once.okRuns}) / ${once.outcomes.done}, ${once.outcomes.failed}, ${once.outcomes.rejected}`,
  ]);
  rows.push([
    'once: records deleted while a run ran / by del --prefix of all; runs from the start again',
    `${once.recordDeletes.fault} / ${once.recordDeletes.all}; ${once.restarts}`,
  ]);
  rows.push(['once: callers still waiting at the end', String(once.waiting)]);
  rows.push(['once: attempts begun after their leadership stopped (must be 0)', String(once.lateStarts)]);
  rows.push([
    'once: tolerated overlaps of runs (after SIGCONT / after key delete)',
    `${once.report.wakeOverlaps.length} / ${once.report.deposeOverlaps.length}`,
  ]);
  rows.push(['once: overlapping runs (must be 0)', String(onceOverlaps.length)]);
  rows.push(['once: broken rules (must be 0)', String(once.violations.length)]);
  const failures =
    overlaps.length +
    onceOverlaps.length +
    once.violations.length +
    once.lateStarts +
    once.report.anomalies.length +
    r.fencing.violations.length +
    late.length +
    lateDeposed.length +
    extra.crashes.length +
    extra.unexpected.length +
    r.anomalies.length +
    (extra.settled ? 0 : 1);
  rows.push(['result', failures === 0 ? 'PASS' : `FAIL (${failures})`]);

  // Per fault kind: step-downs ('lost') and leaderless gaps that began during a fault of
  // that kind (or within renewDeadline + 1 s after it).
  const slackNs = BigInt(Math.round(renewMs + 1000)) * 1_000_000n;
  const kinds = [...new Set(extra.faults.map((f) => f.kind))].sort();
  const perKind: string[] = ['', '| fault kind | faults | step-downs (lost) | leaderless gap p50 / p99 / max |', '|---|---|---|---|'];
  for (const k of kinds) {
    const ws = extra.faults.filter((f) => f.kind === k);
    const inside = (t: bigint): boolean => ws.some((w) => t >= w.from && t <= (w.to ?? t) + slackNs);
    const downs = r.leaderships.filter((l) => l.endedBy === 'stop' && l.reason === 'lost' && inside(l.end)).length;
    const gaps = r.gaps
      .filter((g) => inside(g.from))
      .map((g) => g.ms)
      .sort((a, b) => a - b);
    const q = (p: number): string => (gaps.length ? `${gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))]!.toFixed(0)}` : '–');
    perKind.push(
      `| ${k} | ${ws.length} | ${downs} | ${gaps.length ? `${q(0.5)} / ${q(0.99)} / ${gaps[gaps.length - 1]!.toFixed(0)} ms (n=${gaps.length})` : '–'} |`,
    );
  }

  /** The events of these processes between two stamps, one line each (writes left out). */
  const said = (labels: string[], from: bigint, to: bigint): void => {
    for (const label of labels) {
      const h = extra.histories.find((x) => x.label === label);
      for (const e of h?.events ?? []) {
        const t = BigInt(e.t);
        if (t < from || t > to || e.type === 'write') continue;
        const what = describeEvent(e);
        out.push(`    ${(ms(t - extra.t0) / 1000).toFixed(3)} s  ${label}  ${what}`);
      }
    }
  };
  const w = Math.max(...rows.map(([k]) => k.length));
  const out: string[] = [`\nchaos: ${opts.seconds} s, ${opts.hosts} hosts × ${opts.names} names, ttl ${opts.ttl} s, seed ${opts.seed}`, ''];
  out.push(`| ${'what'.padEnd(w)} | value`);
  out.push(`|${'-'.repeat(w + 2)}|${'-'.repeat(30)}`);
  for (const [k, v] of rows) out.push(`| ${k.padEnd(w)} | ${v}`);
  out.push(...perKind);
  const worst = r.gaps
    .slice()
    .sort((a, b) => b.effectiveMs - a.effectiveMs)
    .slice(0, 5);
  if (worst.length) {
    out.push('', 'slowest hand-overs (effective ms, raw ms):');
    for (const x of worst)
      out.push(
        `  ${x.name.padEnd(8)} after ${x.prev.padEnd(6)} at ${(ms(x.from - extra.t0) / 1000).toFixed(1)} s: ${x.effectiveMs.toFixed(0)} (${x.ms.toFixed(0)})`,
      );
  }
  for (const { o, rep, what, etcd } of judged.slice(0, 20)) {
    const tag =
      etcd === 'etcd#15247'
        ? ' [etcd#15247: a resumed raft leader revoked live leases]'
        : etcd === 'early'
          ? ' [etcd ended a live lease early]'
          : '';
    out.push(
      `OVERLAP${tag} ${what === 'once' ? 'of once runs ' : ''}'${o.name}': ${o.a.label} (token ${o.a.token}) and ${o.b.label} (token ${o.b.token}), ${o.ms.toFixed(3)} ms at ${(ms(o.from - extra.t0) / 1000).toFixed(3)} s`,
    );
    const v = verdictOf(o, rep);
    if (v) for (const f of v.facts) out.push(`    evidence: ${f}`);
    // What both processes said from 4 s before to 1 s after: the clue for the next reader.
    said([o.a.label, o.b.label], o.from - 4_000_000_000n, o.to + 1_000_000_000n);
  }
  for (const { l, ms: x, at } of lateDeposed.slice(0, 10)) {
    out.push(
      `LATE DEPOSED '${l.name}': ${l.label} (token ${l.token}) stopped ${x.toFixed(0)} ms after the delete returned (issued at ${(ms(at - extra.t0) / 1000).toFixed(3)} s)`,
    );
    for (const f of extra.faults.filter((f) => f.from < l.end && (f.to ?? l.end) > at - 4_000_000_000n)) {
      out.push(
        `    fault ${f.kind}${f.host ? ` on ${f.host}` : ''} ${(ms(f.from - extra.t0) / 1000).toFixed(3)} s – ${f.to !== undefined ? `${(ms(f.to - extra.t0) / 1000).toFixed(3)} s` : 'end'}`,
      );
    }
    said([l.label], at - 4_000_000_000n, l.end + 1_000_000_000n);
  }
  for (const v of r.fencing.violations.slice(0, 20)) {
    out.push(
      `FENCING '${v.name}': ${v.write.label} token ${v.write.token} accepted at revision ${v.write.revision} after ${v.newer.label} token ${v.newer.token} at ${v.newer.revision}`,
    );
  }
  for (const x of earlyStops.slice(0, 10)) {
    out.push(`EARLY LEASE END '${x.e.name}' ${x.label} (token ${x.e.token}):`);
    for (const f of x.v!.facts) out.push(`    ${f}`);
  }
  for (const v of once.violations.slice(0, 20)) out.push(`ONCE ${v}`);
  for (const n of once.notes.slice(0, 10)) out.push(`once note: ${n}`);
  for (const a of [...r.anomalies, ...once.report.anomalies].slice(0, 20)) out.push(`ODD ${a}`);
  for (const l of late.slice(0, 20)) out.push(`LATE ${l}`);
  for (const c of extra.crashes.slice(0, 10)) out.push(`CRASH ${c}`);
  for (const u of extra.unexpected.slice(0, 10)) out.push(`UNEXPECTED ${u}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failures;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`chaos failed to run: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 2;
  },
);
