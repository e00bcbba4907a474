// The cluster as one host sees it, member by member: asked on demand (health({ members:
// true }), `locked status --members`), never by the plain health() that probes call every
// second. Each member gets two calls at once, both bounded: etcd's Maintenance Status
// (its raft leader, term and indexes, its applied revision — answered by the member
// alone) and a linearizable read (count only) of the prefix, which needs the member's
// raft leader to confirm it (ReadIndex) — what `etcdctl endpoint health` checks. A member
// that was cut off and healed answers Status again before it serves linearizable reads:
// that gap, several seconds, is the rejoin window in which one more fault loses quorum.
// The calls go through each member's probe client (members.ts): no etcd3 breaker stands
// between the poll and the member, and the poll's failures never open one for the election.
import { performance } from 'node:perf_hooks';
import type { Member } from './members.js';
import { messageOf } from './member-stats.js';

/**
 * A member's role as its own Status answer tells it: `leader` (it is the raft leader),
 * `follower`, `learner` (a non-voting member catching up); `no leader` (it refused or
 * answered without a raft leader: cut off, or an election is under way); `no answer`
 * (nothing within the poll's time limit, or the connection was refused); `error` (any
 * other refusal, in `error`).
 */
export type MemberRole = 'leader' | 'follower' | 'learner' | 'no leader' | 'no answer' | 'error';

/** One member's answer to a poll (all of it from this host's point of view). */
export interface MemberStatus {
  role: MemberRole;
  /** The member's raft id, hex as etcdctl prints it. */
  memberId: string | undefined;
  /** The raft leader's id as this member sees it (hex); undefined without one. */
  leaderId: string | undefined;
  raftTerm: number | undefined;
  /** The member's applied revision of the key space (Status header). */
  revision: number | undefined;
  /** Raft log entries committed / applied by the member. */
  raftIndex: number | undefined;
  raftAppliedIndex: number | undefined;
  /** Revisions this member is behind the highest revision any member reported in this poll. */
  behind: number | undefined;
  /**
   * Its raft term is below the highest term any member reported in this poll: it has not yet
   * heard of the current raft leader — a member rejoining after a freeze or a cut, which may
   * still call itself `leader` for a moment.
   */
  staleTerm: boolean;
  /** Round trip of the Status call. */
  statusMs: number | undefined;
  /** True when a linearizable read through this member answered within the time limit (it serves the cluster). */
  linearizable: boolean;
  /** Round trip of that read; undefined when it did not answer. */
  readMs: number | undefined;
  /** Alarms the member reports (NOSPACE, CORRUPT…). */
  alarms: string[];
  /** Why Status or the read failed, when one did. */
  error: string | undefined;
}

/** The cluster's margin as this host sees it. */
export interface QuorumView {
  /** Members polled: the endpoints this host was given (etcd's own member list is not read). */
  members: number;
  /** Members needed for quorum: ⌊members/2⌋ + 1. */
  quorum: number;
  /** Members with a raft leader, at the current raft term, that served a linearizable read. */
  healthy: number;
  /**
   * How many more members may fail before quorum is lost: healthy − quorum. 0 means the
   * next fault (say, while a healed member is still rejoining) loses quorum; below 0, this
   * host sees no quorum.
   */
  tolerates: number;
  /** Endpoint of the raft leader when every member that answered names the same one and it answered too. */
  leader: string | undefined;
  /** False when answering members name different raft leaders (an election, or a member not yet caught up). */
  agreed: boolean;
}

/** Options of a member poll. */
export interface MemberPollOptions {
  /** Time limit of each call to each member, in milliseconds (default 1000). */
  timeoutMs?: number;
}

const hex = (id: string | undefined): string | undefined =>
  id === undefined || id === '' || id === '0' ? undefined : BigInt(id).toString(16);
const num = (v: string | number | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));

/** Rejects after `ms` unless `call` settled; the call itself keeps its own deadline. */
function bounded<T>(call: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    call,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await call();
  return { value, ms: Math.round(performance.now() - t0) };
}

function roleOfError(err: unknown): MemberRole {
  const text = messageOf(err);
  if (/no leader/i.test(text)) return 'no leader';
  if (/no answer within|deadline|UNAVAILABLE|ECONNREFUSED|ECONNRESET|No connection established/i.test(text)) return 'no answer';
  return 'error';
}

/** Polls one member: Status and a linearizable read of `key`, at once. */
async function pollOne(m: Member, key: string, timeoutMs: number): Promise<MemberStatus> {
  // gRPC's own deadline a little later than ours: the answer names the member and the limit
  // ("no answer within 1000 ms") instead of gRPC's transport details.
  const deadline = (): { deadline: Date } => ({ deadline: new Date(Date.now() + timeoutMs + 500) });
  const [status, read] = await Promise.allSettled([
    timed(() => bounded(m.stats.track(m.probe().maintenance.status(deadline())), timeoutMs, `status of ${m.endpoint}`)),
    timed(() =>
      bounded(
        m.stats.track(m.probe().kv.range({ key: Buffer.from(key), count_only: true }, deadline())),
        timeoutMs,
        `linearizable read on ${m.endpoint}`,
      ),
    ),
  ]);
  const linearizable = read.status === 'fulfilled';
  const readMs = linearizable ? read.value.ms : undefined;
  if (status.status === 'rejected') {
    return {
      role: roleOfError(status.reason),
      memberId: undefined,
      leaderId: undefined,
      raftTerm: undefined,
      revision: undefined,
      raftIndex: undefined,
      raftAppliedIndex: undefined,
      behind: undefined,
      staleTerm: false,
      statusMs: undefined,
      linearizable,
      readMs,
      alarms: [],
      error: messageOf(status.reason),
    };
  }
  const s = status.value.value;
  const memberId = hex(s.header.member_id);
  const leaderId = hex(s.leader);
  const role: MemberRole = leaderId === undefined ? 'no leader' : s.isLearner ? 'learner' : leaderId === memberId ? 'leader' : 'follower';
  return {
    role,
    memberId,
    leaderId,
    raftTerm: num(s.raftTerm),
    revision: num(s.header.revision),
    raftIndex: num(s.raftIndex),
    raftAppliedIndex: num(s.raftAppliedIndex),
    behind: undefined,
    staleTerm: false,
    statusMs: status.value.ms,
    linearizable,
    readMs,
    alarms: [...(s.errors ?? [])],
    error: read.status === 'rejected' ? messageOf(read.reason) : undefined,
  };
}

/**
 * Polls every member at once, each call bounded by `timeoutMs`: resolves within about
 * that long whatever the members do (a frozen one shows as `no answer`). `key` is read
 * linearizably (count only): use the locker's prefix, which the user may read.
 */
export async function pollMembers(
  members: readonly Member[],
  key: string,
  options: MemberPollOptions = {},
): Promise<{ statuses: MemberStatus[]; quorum: QuorumView }> {
  const timeoutMs = options.timeoutMs ?? 1000;
  if (!(typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new RangeError(`timeoutMs of a member poll must be a positive number of milliseconds, got ${String(timeoutMs)}`);
  }
  const statuses = await Promise.all(members.map((m) => pollOne(m, key, timeoutMs)));
  const top = statuses.reduce<number | undefined>(
    (max, s) => (s.revision !== undefined && (max === undefined || s.revision > max) ? s.revision : max),
    undefined,
  );
  const term = statuses.reduce((max, s) => Math.max(max, s.raftTerm ?? 0), 0);
  for (const s of statuses) {
    if (s.revision !== undefined && top !== undefined) s.behind = top - s.revision;
    s.staleTerm = s.raftTerm !== undefined && s.raftTerm < term;
  }
  const leaders = new Set(statuses.map((s) => s.leaderId).filter((id): id is string => id !== undefined));
  const agreed = leaders.size <= 1 && !statuses.some((s) => s.role === 'no leader' && s.memberId !== undefined);
  const leaderIndex = agreed && leaders.size === 1 ? statuses.findIndex((s) => s.role === 'leader') : -1;
  const quorum = Math.floor(members.length / 2) + 1;
  const healthy = statuses.filter((s) => s.leaderId !== undefined && !s.staleTerm && s.linearizable).length;
  return {
    statuses,
    quorum: {
      members: members.length,
      quorum,
      healthy,
      tolerates: healthy - quorum,
      leader: leaderIndex >= 0 ? members[leaderIndex]!.endpoint : undefined,
      agreed,
    },
  };
}
