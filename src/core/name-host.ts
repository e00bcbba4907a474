// The per-name machine's (name-machine.ts) two boundaries: what it needs from the locker
// it runs on (NameHost), and what it tells the handle that owns it (NameEvents). Declared
// here, beside the machine, so the core depends on no layer above it: the locker's runtime
// (api/) hands each name an object of NameHost's shape, and the public handle
// (api/singleton.ts) adds only what the handle itself asks of its locker.
import type { Etcd3 } from '../etcd/etcd3.js';
import type { Clock } from './clock.js';
import type { ElectionContext } from './election.js';
import type { Leadership, StopReason } from './leadership-types.js';
import type { ReleaseGate } from './release.js';
import type { Session } from './session.js';
import type { PrefixView } from './view.js';

/** Counts leaderships as they start and stop (features/metrics.ts records them). */
export interface LeadershipCounter {
  started(name: string): void;
  stopped(name: string, reason: StopReason): void;
}

/** What a name's machine needs from its locker. @internal */
export interface NameHost extends ElectionContext {
  /** The application's etcd client: a leadership's `fence()` writes through it. */
  readonly client: Etcd3;
  readonly clock: Clock;
  readonly stopTimeoutMs: number;
  readonly view: PrefixView;
  readonly gate: ReleaseGate;
  readonly recorder: LeadershipCounter;
  /** The session to campaign with, when the locker has one and its view is current. */
  session(): Session | undefined;
  /**
   * Calls `start` once there is such a session again (start() found none). Names wait here
   * instead of being tried one by one on every view change: that was O(names) per event, the
   * largest cost of a host with 100,000 names.
   */
  whenSession(start: () => void): void;
  /** Should our queued key of `name` step out of the way (placement.ts)? */
  standsAside(name: string, key: string): boolean;
  /** Should our leadership of `name` (key `key`) be handed over now (placement.ts)? */
  handsOver(name: string, key: string): boolean;
}

/** A try-lock's answer, before the handle adds itself to it. */
export type TryAnswer = { acquired: true } | { acquired: false; holder: string | undefined };

/** What the machine tells its handle (singleton.ts). */
export interface NameEvents {
  start(leadership: Leadership): void;
  stop(reason: StopReason, leadership: Leadership): void;
  /** etcd trouble or a failing fn: the singleton's `error` event, else the locker's. */
  report(err: Error): void;
  /** The try-lock's answer; nobody hears it unless a `tryLock()` waits for one. */
  answer(r: TryAnswer | Error): void;
  /** The name has left this host for good. */
  retired(): void;
}
