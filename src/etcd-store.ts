// The Store of the election core on a real etcd, through the etcd3 client.
import type { Etcd3, ILeaseKeepAliveResponse, IRequestOp, ITxnRequest, ITxnResponse, IRangeResponse } from 'etcd3';
import { prefixEnd } from './keys.js';
import type { WatchMoveReason } from './diagnostics.js';
import type { Member, Members } from './members.js';
import type { Candidate } from './queue.js';
import { readPrefix } from './reads.js';
import type { CampaignRequest, CampaignResult, PrefixSnapshot, PrefixWatchHandle, Store, WatchHandlers } from './store.js';
import { PrefixWatch } from './watch.js';

const deadline = (timeoutMs: number): { deadline: Date } => ({ deadline: new Date(Date.now() + timeoutMs) });

/**
 * Every call goes to the member that answered last and is hedged to the next member if
 * it has not answered within a fraction of its deadline (members.ts). All of them are
 * safe to send twice: put-if-absent of our own key, a guarded delete, a revoke, reads,
 * and the lease grant, whose surplus lease is revoked (grant()).
 */
export class EtcdStore implements Store {
  /** `freshnessMs`: how often the prefix watch checks that its member keeps up (watch.ts); 0 never. */
  constructor(
    private readonly members: Members,
    private readonly freshnessMs = 0,
    /** Told when the prefix watch moves to another member (the locker publishes it on `locked:watch`). */
    private readonly watchMoved?: (from: Member, to: Member, reason: WatchMoveReason, after: bigint) => void,
  ) {}

  /** When a call has not answered, the next member gets it too. */
  private static hedgeMs(timeoutMs: number): number {
    return Math.max(100, timeoutMs / 3);
  }

  /**
   * Hedged like every call: a grant that hangs on a frozen member must not keep a host
   * that lost its session from getting a new one from a healthy member. Only one lease
   * is used: a surplus grant — a second member answering too, or any answer after the
   * call gave up — is revoked at once rather than left to expire.
   */
  async grant(ttl: number, timeoutMs: number): Promise<string> {
    let taken = false;
    try {
      return await this.members.hedged(
        async (client) => {
          const res = await client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, deadline(timeoutMs));
          if (res.error) throw new Error(`etcd refused the lease grant: ${res.error}`);
          if (taken) {
            client.leaseClient.leaseRevoke({ ID: res.ID }, deadline(timeoutMs)).catch(() => undefined); // expires by itself otherwise
            throw new Error(`surplus lease ${res.ID} revoked`);
          }
          taken = true;
          return res.ID;
        },
        EtcdStore.hedgeMs(timeoutMs),
        timeoutMs,
      );
    } finally {
      taken = true;
    }
  }

  keepAlive(leaseId: string, timeoutMs: number): Promise<number> {
    return this.members.hedged(
      async (client, m) => {
        const ttl = Number((await keepaliveOnce(client, leaseId, timeoutMs)).TTL);
        m.stats.keptAlive(); // health(): which member keeps the lease alive
        return ttl;
      },
      EtcdStore.hedgeMs(timeoutMs),
      timeoutMs,
    );
  }

  revoke(leaseId: string, timeoutMs: number): Promise<void> {
    return this.members.hedged(
      async (client) => void (await client.leaseClient.leaseRevoke({ ID: leaseId }, deadline(timeoutMs))),
      EtcdStore.hedgeMs(timeoutMs),
      timeoutMs,
    );
  }

  campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
    return this.members.hedged((client) => campaignOn(client, requests, timeoutMs), EtcdStore.hedgeMs(timeoutMs), timeoutMs);
  }

  resign(key: string, guard: { createRevision: bigint } | { leaseId: string }, timeoutMs: number): Promise<void> {
    const k = Buffer.from(key);
    const compare =
      'createRevision' in guard
        ? { key: k, target: 'Create' as const, result: 'Equal' as const, create_revision: guard.createRevision.toString() }
        : { key: k, target: 'Lease' as const, result: 'Equal' as const, lease: guard.leaseId };
    return this.members.hedged(
      async (client) =>
        void (await client.kv.txn({ compare: [compare], success: [{ request_delete_range: { key: k } }] }, deadline(timeoutMs))),
      EtcdStore.hedgeMs(timeoutMs),
      timeoutMs,
    );
  }

  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot> {
    return this.members.hedged((client) => readPrefix(client, prefix, timeoutMs), EtcdStore.hedgeMs(timeoutMs), timeoutMs);
  }

  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle {
    return new PrefixWatch(this.members, prefix, handlers, 2_000, this.freshnessMs, this.watchMoved);
  }
}

async function campaignOn(client: Etcd3, requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
  if (requests.length === 1) {
    const r = requests[0]!;
    const res = await client.kv.txn(campaignTxn(r), deadline(timeoutMs));
    return [attempt(() => readResult(r, res, BigInt(res.header.revision)))];
  }
  const res = await client.kv.txn({ success: requests.map((r) => ({ request_txn: campaignTxn(r) })) }, deadline(timeoutMs));
  const revision = BigInt(res.header.revision);
  return requests.map((r, i) =>
    attempt(() => {
      const sub = res.responses[i]?.response_txn;
      if (!sub) throw new Error(`nested campaign txn returned no response for ${r.key}`);
      return readResult(r, sub, revision);
    }),
  );
}

/**
 * The campaign write of etcd's election protocol, plus the read of the whole queue in
 * the same transaction: put-if-absent makes a retried txn harmless (etcd3 retries
 * unary calls that may have succeeded), and the range gives the queue at exactly the
 * revision of our own write.
 */
export function campaignTxn(r: CampaignRequest): ITxnRequest {
  const key = Buffer.from(r.key);
  const range: IRequestOp = { request_range: { key: Buffer.from(r.namePrefix), range_end: prefixEnd(r.namePrefix) } };
  // A compare over a range holds only if it holds for every key in it, and an empty
  // range compares as a missing key: `Create == 0` over the name = nobody campaigns.
  const compare = r.tryOnly
    ? {
        key: Buffer.from(r.namePrefix),
        range_end: prefixEnd(r.namePrefix),
        target: 'Create' as const,
        result: 'Equal' as const,
        create_revision: 0,
      }
    : { key, target: 'Create' as const, result: 'Equal' as const, create_revision: 0 };
  return {
    compare: [compare],
    success: [{ request_put: { key, value: Buffer.from(r.value), lease: r.leaseId } }, range],
    failure: [range],
  };
}

function readResult(r: CampaignRequest, res: Pick<ITxnResponse, 'succeeded' | 'responses'>, revision: bigint): CampaignResult {
  const range: IRangeResponse | undefined = res.responses[res.succeeded ? 1 : 0]?.response_range;
  const candidates: Candidate[] = (range?.kvs ?? []).map((kv) => {
    const key = kv.key.toString();
    const value = kv.value.toString();
    // Share the strings the campaign already holds instead of a second copy per name.
    return key === r.key && value === r.value
      ? { key: r.key, value: r.value, createRevision: BigInt(kv.create_revision) }
      : { key, value, createRevision: BigInt(kv.create_revision) };
  });
  const mine = candidates.find((c) => c.key === r.key);
  if (!mine && !r.tryOnly) throw new Error(`campaign for ${r.key} did not find its own key in the queue`);
  return { revision, candidates, createRevision: mine?.createRevision };
}

function attempt<T>(fn: () => T): T | Error {
  try {
    return fn();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * One keepalive on a stream of its own: the answer belongs to exactly this request, so
 * its send time is known, and a stream stuck on a dead connection is abandoned with it.
 * The stream is half-closed before it is cancelled, which etcd3 does not count against
 * the member (hedging, not its breaker, moves us off a sick member).
 */
async function keepaliveOnce(client: Etcd3, leaseId: string, timeoutMs: number): Promise<ILeaseKeepAliveResponse> {
  const stream = await client.leaseClient.leaseKeepAlive();
  return new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`keepalive not answered within ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (err: unknown, res?: ILeaseKeepAliveResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.end();
      if (res) {
        resolve(res);
      } else {
        stream.cancel();
        reject(err);
      }
    };
    stream.on('data', (res: ILeaseKeepAliveResponse) => finish(undefined, res));
    stream.on('error', (err: unknown) => finish(err)); // also swallows the late CANCELLED of our own cancel()
    stream.write({ ID: leaseId });
  });
}
