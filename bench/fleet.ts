// A fleet of balance hosts for the bench: each a process of its own (bench/child.ts) with
// the same names, its stamped events collected here, a live picture of who leads what
// (in arrival order, to know when to go on) and the exact one afterwards (bench/timeline.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BalanceEvent, ChildConfig } from './child.js';
import { Picture, Timeline, type FleetEvent } from './timeline.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

/** ms on the clock the hosts stamp with (CLOCK_MONOTONIC, shared by every process). */
export const stamp = (): number => Number(process.hrtime.bigint()) / 1e6;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** An event-loop stall longer than this is a slow second: near the renew deadline, it costs sessions. */
export const SLOW_STALL_MS = 500;

export interface FleetHost {
  id: string;
  /** Index in the fleet (FleetEvent.h). */
  h: number;
  zone?: string;
  child: ChildProcess;
  /** Stamps the host sent: its process runs; every name registered; every campaign key in its view. */
  boot?: number;
  registered?: number;
  in?: number;
  /** Names whose campaign key is in its view, as last reported (until `in`). */
  inCount: number;
  killedAt?: number;
  /** Its event loop's worst stall in each second, as reported (bench/child.ts): [stamp, ms]. */
  stalls: [t: number, maxMs: number][];
  exited: Promise<void>;
}

/** The worst event-loop stall of any host, and the host-seconds with one over SLOW_STALL_MS. */
export interface StallFigures {
  maxMs: number;
  host: string;
  slowSeconds: number;
}

export interface FleetConfig {
  endpoints: string[];
  /** Key prefix of the lockers; names are `n0`…. */
  prefix: string;
  names: number;
  ttl: number;
}

export class Fleet {
  readonly events: FleetEvent[] = [];
  /** Locker errors the hosts reported, stamped. */
  readonly errors: { t: number; message: string }[] = [];
  readonly hosts: FleetHost[] = [];
  readonly live: Picture;
  /** Parent's stamp of the last start or stop that arrived. */
  lastMoveSeen = stamp();
  /** A host that exited without being killed by the bench: every wait fails with this. */
  private died: string | undefined;

  constructor(readonly config: FleetConfig) {
    this.live = new Picture(config.names);
  }

  get ids(): string[] {
    return this.hosts.map((x) => x.id);
  }

  spawn(id: string, zone?: string): FleetHost {
    const cfg: ChildConfig = {
      lib: 'locked',
      endpoints: this.config.endpoints,
      name: 'n',
      prefix: this.config.prefix,
      ttl: this.config.ttl,
      id,
      names: this.config.names,
      ...(zone !== undefined ? { zone } : {}),
    };
    const child = fork(CHILD, [JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const h = this.hosts.length;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const host: FleetHost = { id, h, child, exited, inCount: 0, stalls: [], ...(zone !== undefined ? { zone } : {}) };
    child.on('error', () => {});
    child.once('exit', (code, signal) => {
      if (host.killedAt === undefined) this.died ??= `bench: host ${id} exited (${code ?? signal}) without being killed`;
    });
    // The child's `{ type: 'exit' }` (a graceful exit, so that `--cpu-prof` writes its profile)
    // is for ad-hoc profiling: the fleet ends its hosts with SIGKILL and never sends it.
    child.on('message', (m: { type: string; t?: number; ev?: BalanceEvent[]; in?: number; max?: number }) => {
      if (m.type === 'events') {
        for (const [k, i, t, r] of m.ev!) {
          if (k === 'x') {
            // One line per kind of error, not per name: 'n123' → 'n…'.
            this.errors.push({ t, message: (r ?? '').replace(/'n\d+'/g, "'n…'") });
            continue;
          }
          const e: FleetEvent = { k, i, h, t, ...(r !== undefined ? { r } : {}) };
          this.events.push(e);
          this.live.apply(e);
          if (k === 's' || k === 'p') this.lastMoveSeen = stamp();
        }
      } else if (m.type === 'stall') host.stalls.push([m.t!, m.max!]);
      else if (m.type === 'progress') host.inCount = m.in!;
      else if (m.type === 'boot' || m.type === 'registered' || m.type === 'in') {
        host[m.type] = m.t!;
        if (m.type === 'in') host.inCount = this.config.names;
      }
    });
    this.hosts.push(host);
    return host;
  }

  /** Event-loop stalls reported in [from, to), over every host; undefined if none was. */
  stalls(from: number, to: number): StallFigures | undefined {
    let worst: StallFigures | undefined;
    let slow = 0;
    for (const x of this.hosts) {
      for (const [t, ms] of x.stalls) {
        if (t < from || t >= to) continue;
        if (ms > SLOW_STALL_MS) slow++;
        if (!worst || ms > worst.maxMs) worst = { maxMs: ms, host: x.id, slowSeconds: 0 };
      }
    }
    return worst && { ...worst, slowSeconds: slow };
  }

  /** SIGKILL; returns the stamp taken right after it (the host's leaderships end there). */
  kill(host: FleetHost): number {
    host.child.kill('SIGKILL');
    const t = stamp();
    host.killedAt = t;
    const e: FleetEvent = { k: 'k', i: -1, h: host.h, t };
    this.events.push(e);
    this.live.apply(e);
    return t;
  }

  /** Resolves once `cond` holds on the live picture (polled); rejects after `ms` saying `what` and the picture. */
  async until(cond: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = stamp() + ms;
    for (;;) {
      if (this.died) throw new Error(this.died);
      if (cond()) return;
      if (stamp() > deadline) throw new Error(`bench: ${what} not within ${(ms / 1000).toFixed(0)} s (${this.live.describe(this.ids)})`);
      await sleep(10);
    }
  }

  /** Waits until no start or stop has arrived for `quietMs`; false if leaderships still moved after `maxMs`. */
  async quiet(quietMs: number, maxMs: number): Promise<boolean> {
    const deadline = stamp() + maxMs;
    while (stamp() - this.lastMoveSeen < quietMs) {
      if (this.died) throw new Error(this.died);
      if (stamp() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  /** The exact picture, once the batches in flight (20 ms apart) have arrived; with `dump`, also written there (JSON). */
  async timeline(dump?: string): Promise<Timeline> {
    await sleep(200);
    const tl = new Timeline(this.events, this.config.names);
    if (dump !== undefined) {
      const hosts = this.hosts.map(({ id, zone, boot, registered, in: inAt, killedAt }) => ({
        id,
        zone,
        boot,
        registered,
        in: inAt,
        killedAt,
      }));
      writeFileSync(dump, JSON.stringify({ config: this.config, hosts, errors: this.errors, events: tl.events }));
    }
    return tl;
  }

  async close(): Promise<void> {
    for (const x of this.hosts) if (x.killedAt === undefined) this.kill(x);
    await Promise.all(this.hosts.map((x) => x.exited));
  }
}
