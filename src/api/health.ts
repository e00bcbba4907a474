// What `locker.health()` answers: the types, and what each field means. The snapshot is
// taken by the runtime (runtime.ts), the member poll by member-health.ts.
import type { SignalOption } from '../core/abort.js';
import type { MemberPollOptions, QuorumView } from '../etcd/member-status.js';
import type { MemberHealth, PolledMemberHealth } from '../features/member-health.js';

/** Cheap, synchronous health for probes. */
export interface Health {
  /** True when the locker holds a lease that is inside its step-down deadline (or has nothing to hold). */
  ok: boolean;
  /**
   * Liveness (client-go's leader-election health check): false only while a leader fn of
   * this host still runs past the time etcd may have expired its lease (see `health()`).
   * Never false merely because etcd is unreachable: restarting would not bring it back.
   */
  live: boolean;
  /** Readiness: a lease is held (inside its step-down deadline) and the prefix watch is connected. */
  ready: boolean;
  /** Names whose fn makes `live` false: still running past its lease's TTL since the last acknowledged keepalive. */
  overdue: string[];
  leaseId: string | undefined;
  /** Milliseconds since the send of the last acknowledged keepalive. */
  lastKeepaliveAgoMs: number | undefined;
  /** Names this host leads now. */
  leading: string[];
  /** Names registered on this host. */
  registered: string[];
  watchConnected: boolean;
  /** The etcd member the prefix watch is on (as listed in `hosts`); it follows the member that answers and keeps up. */
  watchEndpoint: string | undefined;
  lastError: string | undefined;
  /** This host's view of each etcd member, in `hosts` order: what it uses it for and how its calls there went. */
  members: MemberHealth[];
}

/** `health({ members: true })`: health() with each member's own answer, and the quorum margin. */
export interface MembersHealth extends Health {
  members: PolledMemberHealth[];
  quorum: QuorumView;
}

/** Options of `health({ members: true })`: `timeoutMs` bounds each call to each member (default 1000). */
export interface MembersHealthOptions extends MemberPollOptions, SignalOption {
  members: true;
}
