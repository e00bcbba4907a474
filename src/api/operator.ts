// An operator's calls of a locker, once the locker (locker.ts) has validated them: every
// host's status, a graceful failover, and the check that a host id names a live host —
// a typo in an id deserves a HostNotFoundError listing the live ones, not a timeout.
import { EtcdUnavailableError, HostNotFoundError, isHandOverError } from '../core/errors.js';
import { failover, type ClusterHost } from '../features/cluster.js';
import { parseControl } from '../features/control-records.js';
import { requestHandOver } from '../features/handover-request.js';
import { hostsStatus, knownHosts, type HostStatus } from '../features/host-status.js';
import type { ResolvedFailoverOptions } from './options.js';
import type { LockerRuntime } from './runtime.js';

/** `status({ hosts: true })`: one read of the prefix, every host's leaderships against its fair share. */
export async function hostsOf(rt: LockerRuntime): Promise<HostStatus[]> {
  const { prefix } = rt.opts;
  try {
    const snap = await rt.store.readPrefix(prefix, rt.requestTimeoutMs());
    return hostsStatus(snap.queues, parseControl(prefix, snap.control ?? new Map()));
  } catch (err) {
    throw new EtcdUnavailableError(`status read of prefix '${prefix}'`, err);
  }
}

/** `failover(name, o)`: a move request the leader acts on, or with `force` the delete of its key. */
export async function handOver(
  rt: LockerRuntime,
  cluster: ClusterHost,
  name: string,
  o: ResolvedFailoverOptions,
): Promise<string | undefined> {
  if (o.force) return failover(cluster, name);
  const { prefix, id } = rt.opts;
  const { timeoutMs } = o;
  try {
    return await requestHandOver(rt.store, rt.clock, prefix, name, id, {
      ...(o.to !== undefined ? { to: o.to } : {}),
      timeoutMs,
      requestTimeoutMs: rt.requestTimeoutMs(),
    });
  } catch (err) {
    // Not queued: a typo in `to` deserves another answer than a host queued elsewhere.
    if (o.to !== undefined && isHandOverError(err) && err.kind === 'not-queued') {
      const { live } = await knownHosts(rt.store, prefix, rt.requestTimeoutMs());
      if (!live.includes(o.to)) throw new HostNotFoundError(`failover('${name}', { to: '${o.to}' })`, o.to, live, '');
    }
    throw err;
  } finally {
    // The request has no lease: if its last delete went unanswered, our mover sweeps it.
    rt.mover.sweepSoon();
  }
}

/** Rejects with HostNotFoundError unless a live host has node id `id` (or, with `drained`, a drain order names it). */
export async function requireHost(rt: LockerRuntime, operation: string, id: string, drained: boolean): Promise<void> {
  const { live, draining } = await knownHosts(rt.store, rt.opts.prefix, rt.requestTimeoutMs());
  if (live.includes(id) || (drained && draining.has(id))) return;
  throw new HostNotFoundError(operation, id, live, 'pass force: true to write the order anyway, for a host about to start');
}
