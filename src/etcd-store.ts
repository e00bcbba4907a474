// The Store of the election core on a real etcd, through the etcd3 client.
import type { Etcd3, ILeaseKeepAliveResponse, IRequestOp, ITxnRequest, ITxnResponse, IRangeResponse } from 'etcd3';
import { prefixEnd } from './keys.js';
import type { Candidate } from './queue.js';
import { readPrefix } from './reads.js';
import type { CampaignRequest, CampaignResult, PrefixSnapshot, PrefixWatchHandle, Store, WatchHandlers } from './store.js';
import { PrefixWatch } from './watch.js';

const deadline = (timeoutMs: number): { deadline: Date } => ({ deadline: new Date(Date.now() + timeoutMs) });

export class EtcdStore implements Store {
  constructor(readonly client: Etcd3) {}

  async grant(ttl: number, timeoutMs: number): Promise<string> {
    const res = await this.client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, deadline(timeoutMs));
    if (res.error) throw new Error(`etcd refused the lease grant: ${res.error}`);
    return res.ID;
  }

  async keepAlive(leaseId: string, timeoutMs: number, attempt: number): Promise<number> {
    // A first slow answer is usually load, not a dead connection: abandon just the
    // stream. From the second failure in a row on, let gRPC's deadline fail the call,
    // which makes etcd3 drop the member's connection and dial again (or another member).
    const res = await keepaliveOnce(this.client, leaseId, timeoutMs, attempt >= 1);
    return Number(res.TTL);
  }

  async revoke(leaseId: string, timeoutMs: number): Promise<void> {
    await this.client.leaseClient.leaseRevoke({ ID: leaseId }, deadline(timeoutMs));
  }

  async campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
    if (requests.length === 1) {
      const r = requests[0]!;
      const res = await this.client.kv.txn(campaignTxn(r), deadline(timeoutMs));
      return [attempt(() => readResult(r, res, BigInt(res.header.revision)))];
    }
    const res = await this.client.kv.txn({ success: requests.map((r) => ({ request_txn: campaignTxn(r) })) }, deadline(timeoutMs));
    const revision = BigInt(res.header.revision);
    return requests.map((r, i) =>
      attempt(() => {
        const sub = res.responses[i]?.response_txn;
        if (!sub) throw new Error(`nested campaign txn returned no response for ${r.key}`);
        return readResult(r, sub, revision);
      }),
    );
  }

  async resign(key: string, guard: { createRevision: bigint } | { leaseId: string }, timeoutMs: number): Promise<void> {
    const k = Buffer.from(key);
    const compare =
      'createRevision' in guard
        ? { key: k, target: 'Create' as const, result: 'Equal' as const, create_revision: guard.createRevision.toString() }
        : { key: k, target: 'Lease' as const, result: 'Equal' as const, lease: guard.leaseId };
    await this.client.kv.txn({ compare: [compare], success: [{ request_delete_range: { key: k } }] }, deadline(timeoutMs));
  }

  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot> {
    return readPrefix(this.client, prefix, timeoutMs);
  }

  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle {
    return new PrefixWatch(this.client, prefix, handlers);
  }
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
    ? { key: Buffer.from(r.namePrefix), range_end: prefixEnd(r.namePrefix), target: 'Create' as const, result: 'Equal' as const, create_revision: 0 }
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
 * With `resetOnTimeout`, the call carries a gRPC deadline: its failure makes etcd3 mark
 * the member failed and reconnect. Without, the stream is half-closed before it is
 * cancelled, which etcd3 does not count against the member.
 */
async function keepaliveOnce(client: Etcd3, leaseId: string, timeoutMs: number, resetOnTimeout: boolean): Promise<ILeaseKeepAliveResponse> {
  const stream = await client.leaseClient.leaseKeepAlive(resetOnTimeout ? deadline(timeoutMs) : {});
  return new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`keepalive not answered within ${timeoutMs} ms`)),
      resetOnTimeout ? timeoutMs + 250 : timeoutMs,
    );
    let done = false;
    const finish = (err: unknown, res?: ILeaseKeepAliveResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Half-close first: etcd3 only blames the member for errors on a writable stream.
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
