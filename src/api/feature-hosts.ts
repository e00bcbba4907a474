// One narrow host per feature, cut from the locker's runtime (runtime.ts): each feature is
// handed exactly what its own host interface asks for, so what a feature may touch is
// read off its interface, not off the whole locker. (The mover's and the leases' hosts
// are made by the runtime itself, which owns them.)
import type { Singleton, SingletonFunction, SingletonHost } from './singleton.js';
import type { ClusterHost } from '../features/cluster.js';
import type { OnceHost } from '../features/once.js';
import type { LockHost } from './lock.js';
import type { LockerRuntime } from './runtime.js';

/** What each name's handle and machine use: the election's parts, the session, placement's verdicts. */
export function singletonHost(rt: LockerRuntime): SingletonHost {
  const { opts } = rt;
  return {
    store: rt.store,
    batcher: rt.batcher,
    prefix: opts.prefix,
    nodeId: opts.id,
    client: rt.client,
    clock: opts.clock,
    stopTimeoutMs: opts.stopTimeoutMs,
    view: rt.view,
    gate: rt.gate,
    recorder: rt.recorder,
    requestTimeoutMs: () => rt.requestTimeoutMs(),
    session: () => rt.session(),
    whenSession: (start) => rt.whenSession(start),
    standsAside: (name, key) => rt.mover.standsAside(name, key),
    handsOver: (name, key) => rt.mover.handsOver(name, key),
    report: (err) => rt.report(err),
    unregister: (s) => rt.registry.unregister(s),
  };
}

/** What a run-once job uses: the store for its record, and `register` (the locker's) for its claim. */
export function onceHost(rt: LockerRuntime, register: (name: string, fn: SingletonFunction) => Singleton): OnceHost {
  const { opts } = rt;
  return {
    prefix: opts.prefix,
    nodeId: opts.id,
    store: rt.store,
    clock: opts.clock,
    closeSignal: rt.closeSignal,
    requestTimeoutMs: () => rt.requestTimeoutMs(),
    report: (err) => rt.report(err),
    register,
  };
}

/** What the cluster view uses: reads of the prefix, and the view's changes of one name. */
export function clusterHost(rt: LockerRuntime): ClusterHost {
  const { opts } = rt;
  return {
    prefix: opts.prefix,
    store: rt.store,
    clock: opts.clock,
    view: rt.view,
    closeSignal: rt.closeSignal,
    requestTimeoutMs: () => rt.requestTimeoutMs(),
    report: (err) => rt.report(err),
    watchName: (name, fn) => rt.watchName(name, fn),
  };
}

/** What a try-lock and a lock use: `add` (the locker's: validates and registers) and the registry's begin. */
export function lockHost(rt: LockerRuntime, add: LockHost['add']): LockHost {
  return {
    clock: rt.opts.clock,
    closed: () => rt.closed,
    add,
    begin: (s) => rt.registry.begin(s),
  };
}
