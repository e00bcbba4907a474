// What the election core needs from etcd, and nothing more: a lease, the campaign and
// resign transactions of etcd's election protocol, a snapshot of the prefix and a watch
// of it. `etcd-store.ts` implements it with the etcd3 client; the deterministic
// simulation tests implement it with an in-memory model of etcd (test/helpers/sim/).
import type { Candidate, KeyEvent } from '../core/queue.js';

export interface CampaignRequest {
  /** `<prefix><name>/` */
  namePrefix: string;
  /** `<prefix><name>/<lease hex>` */
  key: string;
  value: string;
  leaseId: string;
  /** Try-lock: write the key only if the name has no candidate at all; never queue. */
  tryOnly?: boolean;
}

export interface CampaignResult {
  /** Revision of the transaction (etcd's whole store, not only our prefix). */
  revision: bigint;
  /**
   * A try-lock's answer: every key of the name at `revision`. Empty for other campaigns —
   * their queue comes from the prefix watch (a range in every campaign cost etcd more than
   * the write).
   */
  candidates: Candidate[];
  /** Create revision of our key (the fencing token once it leads); undefined when a try-lock found the name taken. */
  createRevision: bigint | undefined;
}

export interface PrefixSnapshot {
  revision: bigint;
  /** Candidates by name, leader first. Keys without '/' after the name (run-once records) are left out. */
  queues: Map<string, Candidate[]>;
  /** Control records (keys under `<prefix>/`: hosts, drain orders, move requests), key → value. */
  control?: Map<string, string>;
}

export interface WatchHandlers {
  /**
   * One watch response: every event of every revision in it, in revision order. A
   * revision's events are never split across two calls (a `del --prefix` or a lease
   * revoke is one revision with many events).
   */
  events(events: KeyEvent[]): void;
  /**
   * The watch missed events (its start revision was compacted, or etcd cancelled it):
   * called as soon as that is known. A new watch is being created; `ready` resolves
   * once etcd confirmed it, and events delivered from then on are gap-free.
   */
  reset(ready: Promise<void>): void;
  /** Connection state of the watch stream, for health reports. */
  connected(up: boolean): void;
}

export interface PrefixWatchHandle {
  /** Resolves once etcd confirmed the watch: a read issued after it is covered by the watch. */
  readonly ready: Promise<void>;
  /** The etcd member the watch is on, when it is on a real one. */
  readonly endpoint?: string;
  close(): Promise<void>;
}

/**
 * A key to delete if it is still the one this campaign wrote: guarded by its create
 * revision, or — when that was never learned — by the lease in its name.
 */
export interface ResignRequest {
  readonly key: string;
  readonly guard: { readonly createRevision: bigint } | { readonly leaseId: string };
  /** A hand-over past standbys: their keys go in the same revision as ours (HandOverPast). */
  readonly past?: HandOverPast;
}

/** A key as a guard sees it: it exists and still has this create revision. */
export interface KeyRevision {
  readonly key: string;
  readonly createRevision: bigint;
}

/**
 * A leader hands a name over to a candidate further back in its queue (placement.ts): the
 * standbys queued between them (`keys`) are deleted in the same revision as the leader's
 * key — so none of them ever sees itself first — if each still has its create revision and
 * `target` still queues; otherwise the leader's key alone goes, a plain hand-over to whoever
 * is next. One transaction instead of a request and p − 1 stand-asides, each a round trip
 * and an event on every host. Only for keys of our own lockers: they queue again when their
 * key goes, a Go campaigner (`etcdctl elect`) would not.
 */
export interface HandOverPast {
  readonly keys: readonly KeyRevision[];
  readonly target: KeyRevision;
  /**
   * A promotion (a first standby making way for a candidate further back, the leader
   * staying): the leader's key, which must still hold for anything to go. Without it the
   * first standby's key alone would go — and with the leader gone that standby is next to
   * lead: no stand-aside may sit between a crash and its failover.
   */
  readonly leader?: KeyRevision;
}

export interface Store {
  /** Grants a lease of `ttl` seconds; resolves with its id (decimal string). */
  grant(ttl: number, timeoutMs: number): Promise<string>;
  /**
   * One keepalive; resolves with the TTL etcd reports (≤ 0: expired or revoked).
   * `attempt` counts consecutive failures before this one (a store may change member);
   * `hedgeMs`: when the call has no answer by then, a store of several members sends it
   * to the next one too.
   */
  keepAlive(leaseId: string, timeoutMs: number, attempt: number, hedgeMs?: number): Promise<number>;
  revoke(leaseId: string, timeoutMs: number): Promise<void>;
  /** Campaign writes, one result (or Error) per request, in order. */
  campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]>;
  /**
   * Deletes each key if it is still the one its campaign wrote (ResignRequest), all in one
   * transaction: one revision, however many keys.
   */
  resign(requests: readonly ResignRequest[], timeoutMs: number): Promise<void>;
  /** Every name's queue under `prefix` in one consistent snapshot. */
  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot>;
  /** Watches every key under `prefix` from now on. */
  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle;
}

/** One key as etcd holds it. */
export interface StoredKey {
  value: string;
  createRevision: bigint;
  modRevision: bigint;
}

/** One write of `ControlStore.writeControl`: a put (under `leaseId` when given), or a delete while the key holds `ifValue`. */
export type ControlWrite =
  | { readonly key: string; readonly put: string; readonly leaseId?: string | undefined }
  | { readonly key: string; readonly removeIf: string };

/** A put that lands only while a leadership holds and a record is unchanged (run-once records). */
export interface FencedPut {
  /** The leadership: its key must still have this create revision (the fencing token). */
  fence: { key: string; createRevision: bigint };
  key: string;
  value: string;
  /** Mod revision `key` must have (0n: absent). */
  modRevision: bigint;
  /** Under this lease, if given. */
  leaseId?: string;
}

/** A watch of one key. */
export interface KeyWatchHandle {
  /** Resolves once etcd confirmed the watch: a read issued after it is covered. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * The etcd layer as the features on top of the election core use it — control records
 * (host records, drain orders, move and standby requests), the reads of `failover`,
 * `status` and `leader`, and run-once records — so that every etcd access of balancing,
 * drain, failover, the cluster view and run-once goes through one interface, which the
 * simulation implements too. Every call is safe to send twice (members.ts hedges them).
 */
export interface ControlStore extends Store {
  /** Puts `key` = `value`, under `leaseId` when given; resolves with the write's revision. */
  put(key: string, value: string, leaseId: string | undefined, timeoutMs: number): Promise<bigint>;
  /** Deletes `key`; with `ifValue`, only while it still holds that value. */
  remove(key: string, ifValue: string | undefined, timeoutMs: number): Promise<void>;
  /**
   * Puts and guarded deletes of control records, all in one transaction (one revision);
   * the keys are distinct. A put under a lease etcd no longer has fails the whole write.
   */
  writeControl(writes: readonly ControlWrite[], timeoutMs: number): Promise<void>;
  /** One key, or undefined when it does not exist. */
  get(key: string, timeoutMs: number): Promise<StoredKey | undefined>;
  /** The candidates of one name (`<prefix><name>/`), leader first; with `leaderOnly`, at most the leader. */
  readQueue(namePrefix: string, timeoutMs: number, leaderOnly?: boolean): Promise<Candidate[]>;
  /**
   * Deletes the election key `key` if it still has `createRevision` (a forced failover);
   * resolves with the name's queue at the revision of that transaction, leader first.
   */
  depose(key: string, createRevision: bigint, namePrefix: string, timeoutMs: number): Promise<Candidate[]>;
  /** The fenced put; resolves with the new mod revision, 'deposed' (the fence key is gone or newer) or 'conflict' (the record changed). */
  putFenced(write: FencedPut, timeoutMs: number): Promise<bigint | 'deposed' | 'conflict'>;
  /** Calls `onPut` with each new value of `key` from now on (a broken watch only costs speed: callers also read). */
  watchKey(key: string, onPut: (value: string) => void): KeyWatchHandle;
}
