export { locked, Locker, type LockerEvents, type Health, type MembersHealth, type MembersHealthOptions } from './locker.js';
export type { MemberHealth, PolledMemberHealth } from './member-health.js';
export type { MemberStatus, MemberRole, QuorumView, MemberPollOptions } from './member-status.js';
export type { BreakerState, MemberCalls } from './member-stats.js';
export {
  Singleton,
  type Leadership,
  type SingletonFunction,
  type SingletonEvents,
  type StopReason,
  type TryLockResult,
} from './singleton.js';
export type { LeaderInfo, NameStatus, Observer, ObserverEvents } from './cluster.js';
export type { OnceContext, OnceFunction, OnceOutcome } from './once.js';
export type { LockerOptions, SingletonOptions, LockOptions, FailoverOptions, DrainOptions, OnceOptions } from './options.js';
export type { HostStatus, MoveRequest } from './placement.js';
export {
  renderPrometheus,
  PROMETHEUS_CONTENT_TYPE,
  KEEPALIVE_RTT_BUCKETS,
  STOP_REASONS,
  PER_NAME_SERIES_LIMIT,
  type MetricsSnapshot,
  type NameMetrics,
  type HistogramSnapshot,
  type TimingMetrics,
  type RenderOptions,
} from './metrics.js';
export type { Clock, Timer } from './clock.js';
export {
  LeaseLostError,
  LockerClosedError,
  LeaderFunctionError,
  EtcdUnavailableError,
  NotLeaderError,
  LockCancelledError,
  AbortedError,
  HealthCheckError,
  HandOverError,
  HostNotFoundError,
  isLeaseLostError,
  isLockerClosedError,
  isLeaderFunctionError,
  isEtcdUnavailableError,
  isNotLeaderError,
  isLockCancelledError,
  isAbortedError,
  isHealthCheckError,
  isHandOverError,
  isHostNotFoundError,
} from './errors.js';
export type { SignalOption } from './abort.js';
export {
  DIAGNOSTICS_CHANNELS,
  type LeadershipMessage,
  type SessionMessage,
  type ErrorMessage,
  type WatchMoveMessage,
  type WatchMoveReason,
} from './diagnostics.js';
import { locked } from './locker.js';
export default locked;
