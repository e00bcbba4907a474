// What the election core needs from etcd, and nothing more: a lease, the campaign and
// resign transactions of etcd's election protocol, a snapshot of the prefix and a watch
// of it. `etcd-store.ts` implements it with the etcd3 client; the deterministic
// simulation tests implement it with an in-memory model of etcd (test/helpers/sim/).
import type { Candidate, KeyEvent } from './queue.js';

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
  /** Every key of the name at `revision`, ours included. */
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

export interface Store {
  /** Grants a lease of `ttl` seconds; resolves with its id (decimal string). */
  grant(ttl: number, timeoutMs: number): Promise<string>;
  /**
   * One keepalive; resolves with the TTL etcd reports (≤ 0: expired or revoked).
   * `attempt` counts consecutive failures before this one (a store may change member).
   */
  keepAlive(leaseId: string, timeoutMs: number, attempt: number): Promise<number>;
  revoke(leaseId: string, timeoutMs: number): Promise<void>;
  /** Campaign writes, one result (or Error) per request, in order. */
  campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]>;
  /**
   * Deletes `key` if it is still the one this campaign wrote: guarded by its create
   * revision, or — when that was never learned — by the lease in its name.
   */
  resign(key: string, guard: { createRevision: bigint } | { leaseId: string }, timeoutMs: number): Promise<void>;
  /** Every name's queue under `prefix` in one consistent snapshot. */
  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot>;
  /** Watches every key under `prefix` from now on. */
  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle;
}
