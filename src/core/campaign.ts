import type { CampaignRequest, CampaignResult, Store } from '../etcd/store.js';

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
    private readonly store: Store,
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
    try {
      const results = await this.store.campaign(
        batch.map((p) => p.req),
        this.timeoutMs(),
      );
      batch.forEach((p, i) => {
        const r = results[i];
        if (r === undefined) p.reject(new Error(`campaign returned no result for ${p.req.key}`));
        else if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
