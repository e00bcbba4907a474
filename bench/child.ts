// A host process of the benches, in one of three shapes:
// - crash failover: the leader that gets SIGKILLed, so nothing of it (no revoke, no resign,
//   no half-sent request) survives the kill and the standby can only take over once etcd
//   expires the lease; tells the parent `{ type: 'leading' }` over IPC once elected;
// - balance (`names`): one host of a fleet, every leadership start/stop and fn run stamped
//   and reported (bench/fleet.ts reads them);
// - sick member (`electNames`): a host on etcd3's own `Election`.
//
// Config as JSON in argv[2].
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import locked, { type LockerOptions, type Singleton } from '../src/index.js';

export interface ChildConfig {
  lib: 'locked' | 'etcd3';
  endpoints: string[];
  name: string;
  /** locked: key prefix of the locker. */
  prefix: string;
  ttl: number;
  /** This host's id (balance, sick member). */
  id?: string;
  /**
   * Balance bench: register `${name}0`…`${name}${names−1}` and report, batched every
   * FLUSH_MS as `{ type: 'events', ev: BalanceEvent[] }`, every leadership start and stop and
   * every fn run; `{ type: 'boot' | 'registered' | 'in', t }` when the process runs, when
   * every name is registered, when every name's campaign key is in this host's view
   * (`{ type: 'progress', in }` every ten passes over the names still out until then: how many are in).
   */
  names?: number;
  /** Balance bench: the locker option `zone`, passed only when the locker has that option. */
  zone?: string;
  /**
   * Sick-member bench, etcd3 only: campaign with etcd3's `Election` for each of these
   * names, tell every election and every loss as `{ type: 'start' | 'stop', name, t }`
   * (t: process.hrtime.bigint(), decimal), and campaign again 500 ms after a loss — what
   * an application on etcd3 would do.
   */
  electNames?: string[];
}

/**
 * One stamped event of a balance host: [kind, name index, t (ms of CLOCK_MONOTONIC, as
 * process.hrtime.bigint() / 1e6, shared by all processes of the machine), stop reason or
 * error message]. Kinds: 's' leadership start, 'p' leadership stop, 'f' fn called,
 * 'e' fn settled, 'x' a locker error (index −1).
 */
export type BalanceEvent = [kind: 's' | 'p' | 'f' | 'e' | 'x', index: number, t: number, reason?: string];

/** How often a balance host sends its events: stamps are taken at the event, so this only delays the parent's view. */
const FLUSH_MS = 20;
/** Locker errors reported per balance host, at most (a storm of them must not swamp the IPC channel). */
const MAX_ERRORS = 1_000;

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const leading = (): void => void process.send?.({ type: 'leading' });

if (config.lib === 'locked' && config.names !== undefined) {
  balanceHost(config, config.names);
} else if (config.electNames !== undefined) {
  const client = new Etcd3({ hosts: config.endpoints.map((e) => `http://${e}`) });
  const tell = (type: 'start' | 'stop', name: string): void => void process.send?.({ type, name, t: process.hrtime.bigint().toString() });
  const run = (name: string): void => {
    const campaign = client.election(name, config.ttl).campaign(config.id ?? 'child');
    let leading = false;
    let over = false;
    campaign.on('elected', () => {
      leading = true;
      tell('start', name);
    });
    campaign.on('error', () => {
      if (over) return;
      over = true;
      if (leading) tell('stop', name);
      void campaign.resign().catch(() => {});
      setTimeout(() => run(name), 500);
    });
  };
  for (const name of config.electNames) run(name);
} else if (config.lib === 'locked') {
  const locker = locked(config.endpoints, { id: 'child', ttl: config.ttl, prefix: config.prefix, handleSignals: false });
  locker.on('error', () => {});
  locker(config.name, () => {}).on('start', leading);
} else {
  const client = new Etcd3({ hosts: config.endpoints.map((e) => `http://${e}`) });
  const campaign = client.election(config.name, config.ttl).campaign('child');
  campaign.on('elected', leading);
  campaign.on('error', () => {});
}

// The parent going away (bench aborted) must not leave this process holding a lease.
process.on('disconnect', () => process.exit(0));

function balanceHost(config: ChildConfig, names: number): void {
  const stamp = (): number => Number(process.hrtime.bigint()) / 1e6;
  process.send?.({ type: 'boot', t: stamp() });
  let buf: BalanceEvent[] = [];
  let errors = 0;
  const flush = (): void => {
    if (buf.length === 0) return;
    process.send?.({ type: 'events', ev: buf });
    buf = [];
  };
  setInterval(flush, FLUSH_MS);
  // Event-loop stalls: a keepalive can only be sent and its answer read when the loop runs,
  // so a stall near renewDeadline is what turns CPU starvation into lost sessions.
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  setInterval(() => {
    process.send?.({ type: 'stall', t: stamp(), max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 });
    delay.reset();
  }, 1_000);
  // A graceful exit on request, so that `--cpu-prof` can write its profile.
  process.on('message', (m: { type?: string }) => {
    if (m.type === 'exit') process.exit(0);
  });
  const options: LockerOptions = { id: config.id ?? 'child', ttl: config.ttl, prefix: config.prefix, handleSignals: false };
  // `zone` is not (yet) an option of every version of the locker: the parent sets it only where it is.
  if (config.zone !== undefined) Object.assign(options, { zone: config.zone });
  const locker = locked(config.endpoints, options);
  locker.on('error', (err) => {
    if (errors++ < MAX_ERRORS) buf.push(['x', -1, stamp(), err.message]);
  });
  const singletons: Singleton[] = [];
  for (let i = 0; i < names; i++) {
    const s = locker(
      `${config.name}${i}`,
      (_remove, l) =>
        new Promise<void>((resolve) => {
          buf.push(['f', i, stamp()]);
          const settle = (): void => {
            buf.push(['e', i, stamp()]);
            resolve();
          };
          if (l.signal.aborted) settle();
          else l.signal.addEventListener('abort', settle, { once: true });
        }),
    );
    s.on('start', () => buf.push(['s', i, stamp()]));
    s.on('stop', (reason) => buf.push(['p', i, stamp(), reason]));
    singletons.push(s);
  }
  process.send?.({ type: 'registered', t: stamp() });
  // Every campaign key in this host's view: each name has had a place in its queue (a name
  // that is in stays counted, though a hand-over briefly takes its key out and back). Names
  // are looked at in passes over those still out, at most SCAN a tick (100,000 position reads
  // every 10 ms would be the host's whole CPU; at 5,000 a tick the harness still took ~5 % of
  // the CPU of a host registering 100,000 names — the figure it measures); campaigns go out
  // in a per-host order, not by index, so the count is of all names, not of a prefix of them.
  // The last names are found within a tick or two: by then few are still out.
  const SCAN = 1_000;
  let out = singletons.map((_, i) => i);
  let still: number[] = [];
  let at = 0;
  let polls = 0;
  const poll = setInterval(() => {
    const stop = Math.min(out.length, at + SCAN);
    for (; at < stop; at++) if (singletons[out[at]!]!.position === undefined) still.push(out[at]!);
    if (at < out.length) return;
    [out, still, at] = [still, [], 0];
    if (out.length > 0) {
      if (++polls % 10 === 0) process.send?.({ type: 'progress', in: singletons.length - out.length });
      return;
    }
    clearInterval(poll);
    process.send?.({ type: 'in', t: stamp() });
  }, 10);
}
