// The per-member part of `locker.health()`: which member this host uses for what, and how
// its calls there went (member-stats.ts) — with `{ members: true }` also each member's own
// answer about the cluster (member-status.ts) and the quorum margin.
import { performance } from 'node:perf_hooks';
import type { BreakerState, MemberCalls } from '../etcd/member-stats.js';
import { pollMembers, type MemberPollOptions, type MemberStatus, type QuorumView } from '../etcd/member-status.js';
import type { Members } from '../etcd/members.js';

/** This host's view of one etcd member, from the calls it made there (no round trip to ask). */
export interface MemberHealth extends MemberCalls {
  /** The member as listed in `hosts`. */
  endpoint: string;
  /** Calls start on this member (the one that answered last); the others get them only when it is slow or fails. */
  preferred: boolean;
  /** The last acknowledged keepalive of this host's lease went to this member. */
  keepalive: boolean;
  /** Milliseconds since this member last acknowledged a keepalive of this host; undefined if it never did. */
  lastKeepaliveAgoMs: number | undefined;
  /** The prefix watch is on this member. */
  watch: boolean;
  /** etcd3's circuit breaker for the member; undefined when `etcd.faultHandling.host` is not a circuit breaker. */
  breaker: BreakerState | undefined;
  /**
   * True while calls to this member are not sent at all: its breaker is open (after 3
   * failures in a row; it lets a trial call through 1 s later) or isolated. A member that
   * is merely not `preferred` is not skipped: it still gets every call that is hedged.
   */
  skipped: boolean;
}

/** One member in `health({ members: true })`: this host's view plus the member's own answer. */
export interface PolledMemberHealth extends MemberHealth {
  status: MemberStatus;
}

/** The members of this host's view, in `hosts` order. */
export function membersHealth(members: Members, watchEndpoint: string | undefined): MemberHealth[] {
  const preferred = members.current;
  let keeper: number | undefined;
  let keeperAt = -Infinity;
  for (const m of members.all) {
    const at = m.stats.keepaliveAt;
    if (at !== undefined && at > keeperAt) [keeper, keeperAt] = [m.index, at];
  }
  return members.all.map((m) => {
    const breaker = m.breaker();
    const calls = m.stats.snapshot();
    const at = m.stats.keepaliveAt;
    return {
      endpoint: m.endpoint,
      preferred: m === preferred,
      keepalive: m.index === keeper,
      lastKeepaliveAgoMs: at === undefined ? undefined : Math.round(performance.now() - at),
      watch: watchEndpoint !== undefined && m.endpoint === watchEndpoint,
      breaker,
      skipped: breaker === 'open' || breaker === 'isolated',
      ...calls,
    };
  });
}

/**
 * Polls every member (bounded, at once) and returns this host's view of each with its
 * answer. The poll's own calls count in the figures (calls, round trips, errors), not
 * in etcd3's breakers: `skipped` stays what the election's calls made it.
 */
export async function polledMembersHealth(
  members: Members,
  key: string,
  watchEndpoint: () => string | undefined,
  options: MemberPollOptions,
): Promise<{ members: PolledMemberHealth[]; quorum: QuorumView }> {
  const { statuses, quorum } = await pollMembers(members.all, key, options);
  const view = membersHealth(members, watchEndpoint());
  return { members: view.map((m, i) => ({ ...m, status: statuses[i]! })), quorum };
}
