export { locked, Locker, type LockerEvents, type Health, type MembersHealth, type MembersHealthOptions } from './api/locker.js';
export type { MemberHealth, PolledMemberHealth } from './features/member-health.js';
export type { MemberStatus, MemberRole, QuorumView, MemberPollOptions } from './etcd/member-status.js';
export type { BreakerState, MemberCalls } from './etcd/member-stats.js';
export {
  Singleton,
  type Leadership,
  type SingletonFunction,
  type SingletonEvents,
  type StopReason,
  type TryLockResult,
} from './api/singleton.js';
export type { LeaderInfo, NameStatus, Observer, ObserverEvents } from './features/cluster.js';
export type { OnceContext, OnceFunction, OnceOutcome } from './features/once.js';
export type { LockerOptions, SingletonOptions, LockOptions, FailoverOptions, DrainOptions, OnceOptions } from './api/options.js';
export type { HostStatus, MoveRequest } from './features/placement.js';
export { etcdFailureKind, type EtcdFailureKind } from './etcd/failure-kind.js';
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
} from './features/metrics.js';
export type { Clock, Timer } from './core/clock.js';
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
} from './core/errors.js';
export type { SignalOption } from './core/abort.js';
export {
  DIAGNOSTICS_CHANNELS,
  type LeadershipMessage,
  type SessionMessage,
  type ErrorMessage,
  type WatchMoveMessage,
  type WatchMoveReason,
} from './core/diagnostics.js';
import { locked } from './api/locker.js';
export default locked;
