// etcd's election protocol for one name, as thin as etcd's own `concurrency.Election`:
// write our key (put-if-absent, under the session's lease) and delete it. Who is first
// is the PrefixView's to say; leases are the Session's; what runs is the Singleton's.
import type { CampaignBatcher } from './campaign.js';
import { electionKey, namePrefix } from '../etcd/keys.js';
import type { Session } from './session.js';
import type { CampaignResult, HandOverPast, Store } from '../etcd/store.js';

export interface ElectionContext {
  readonly store: Store;
  readonly batcher: CampaignBatcher;
  readonly prefix: string;
  readonly nodeId: string;
  /** Deadline for one etcd request, in ms. */
  requestTimeoutMs(): number;
}

export interface Campaign {
  readonly key: string;
  readonly result: Promise<CampaignResult>;
}

/**
 * Joins the back of `name`'s queue with `session`'s key; with `tryOnly`, only if the queue is
 * empty. `entering`: the name's first campaign on this session (CampaignBatcher, joining).
 */
export function campaign(ctx: ElectionContext, name: string, session: Session, tryOnly: boolean, entering = false): Campaign {
  const key = electionKey(ctx.prefix, name, session.leaseId);
  const result = ctx.batcher.campaign(
    {
      namePrefix: namePrefix(ctx.prefix, name),
      key,
      value: ctx.nodeId,
      leaseId: session.leaseId,
      tryOnly,
    },
    entering,
  );
  return { key, result };
}

/**
 * Deletes our key, guarded by its create revision so a newer campaign's key is never
 * touched. Without a known create revision (the campaign's answer was lost), the lease
 * in the key's name is the guard: only that session can have written that key.
 */
export function resign(ctx: ElectionContext, key: string, token: bigint | undefined, session: Session, past?: HandOverPast): Promise<void> {
  if (token === undefined) return ctx.batcher.resign({ key, guard: { leaseId: session.leaseId } });
  return ctx.batcher.resign({ key, guard: { createRevision: token }, ...(past ? { past } : {}) });
}
