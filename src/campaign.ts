import type { Etcd3, IRequestOp, ITxnRequest, ITxnResponse, IRangeResponse } from 'etcd3';
import { prefixEnd } from './keys.js';
import type { Candidate } from './queue.js';

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
  /** Revision at which `candidates` was read. */
  revision: bigint;
  /** Every key of the name at `revision`, ours included. */
  candidates: Candidate[];
  /** Create revision of our key (the fencing token once it leads); undefined when a try-lock found the name taken. */
  createRevision: bigint | undefined;
}

/**
 * The campaign write of etcd's election protocol, plus the read of the whole queue in
 * the same transaction: put-if-absent makes a retried txn harmless (etcd3 retries
 * unary calls that may have succeeded), and the range gives a snapshot at exactly the
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
    // The queue keeps these for as long as the name is registered: share the strings
    // the election already holds instead of keeping a second copy of each per name.
    return key === r.key && value === r.value
      ? { key: r.key, value: r.value, createRevision: BigInt(kv.create_revision) }
      : { key, value, createRevision: BigInt(kv.create_revision) };
  });
  const mine = candidates.find((c) => c.key === r.key);
  if (!mine && !r.tryOnly) throw new Error(`campaign for ${r.key} did not find its own key in the queue`);
  return { revision, candidates, createRevision: mine?.createRevision };
}

interface Pending {
  req: CampaignRequest;
  resolve(r: CampaignResult): void;
  reject(e: unknown): void;
}

/**
 * Sub-transactions per request. etcd's --max-txn-ops (default 128) bounds the outer txn,
 * and each sub-txn gets what the outer one left over (128 − 100 = 28 ≥ our 2 ops); at
 * 127 sub-txns etcd answers "too many operations in txn request".
 */
const BATCH = 100;
/** Batches in flight at once. */
const PARALLEL = 8;

/**
 * Campaigns requested in the same turn of the event loop share nested transactions
 * (one sub-txn per name), so registering 10,000 names costs ~100 round trips, not 10,000.
 */
export class CampaignBatcher {
  private pending: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly ready: Pending[][] = [];

  constructor(
    private readonly client: Etcd3,
    private readonly timeoutMs: () => number,
  ) {}

  campaign(req: CampaignRequest): Promise<CampaignResult> {
    return new Promise<CampaignResult>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += BATCH) this.ready.push(all.slice(i, i + BATCH));
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < PARALLEL && this.ready.length > 0) {
      const batch = this.ready.shift()!;
      this.inFlight++;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async send(batch: Pending[]): Promise<void> {
    const options = { deadline: new Date(Date.now() + this.timeoutMs()) };
    try {
      if (batch.length === 1) {
        const p = batch[0]!;
        const res = await this.client.kv.txn(campaignTxn(p.req), options);
        settle(p, () => readResult(p.req, res, BigInt(res.header.revision)));
        return;
      }
      const res = await this.client.kv.txn({ success: batch.map((p) => ({ request_txn: campaignTxn(p.req) })) }, options);
      const revision = BigInt(res.header.revision);
      batch.forEach((p, i) => {
        const sub = res.responses[i]?.response_txn;
        settle(p, () => {
          if (!sub) throw new Error(`nested campaign txn returned no response for ${p.req.key}`);
          return readResult(p.req, sub, revision);
        });
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}

function settle(p: Pending, fn: () => CampaignResult): void {
  try {
    p.resolve(fn());
  } catch (err) {
    p.reject(err);
  }
}
