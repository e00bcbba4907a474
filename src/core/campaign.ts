import type { CampaignRequest, CampaignResult, ResignRequest, Store } from '../etcd/store.js';
import { TickBatcher } from './batcher.js';
import type { WriteWindow } from './write-window.js';

/**
 * The election's writes, batched per turn of the event loop (batcher.ts): campaigns share
 * nested transactions (one sub-txn per name), so registering 10,000 names costs ~100 round
 * trips, not 10,000; and key deletes (hand-overs, stand-asides, removals) share them too,
 * so a host that gives up k names at once releases them in k / 100 transactions. Per name
 * the order is unchanged: a key is deleted only once its fn settled (the release gate).
 */
export class CampaignBatcher {
  private readonly campaigns: TickBatcher<CampaignRequest, CampaignResult>;
  private readonly resigns: TickBatcher<ResignRequest, true>;

  constructor(store: Store, timeoutMs: () => number, window?: WriteWindow) {
    const options = window ? { window } : {};
    this.campaigns = new TickBatcher((batch) => store.campaign(batch, timeoutMs()), options);
    // One transaction: it applies as a whole or not at all, so every delete of it shares the answer.
    this.resigns = new TickBatcher(async (batch) => {
      await store.resign(batch, timeoutMs());
      return batch.map(() => true as const);
    }, options);
  }

  campaign(req: CampaignRequest): Promise<CampaignResult> {
    return this.campaigns.add(req);
  }

  resign(req: ResignRequest): Promise<void> {
    return this.resigns.add(req).then(() => undefined);
  }
}
