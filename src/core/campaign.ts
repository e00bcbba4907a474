import type { CampaignRequest, CampaignResult, ResignRequest, Store } from '../etcd/store.js';
import { TickBatcher } from './batcher.js';
import type { WriteWindow } from './write-window.js';
import { rendezvousRank } from './rendezvous.js';

/**
 * The election's writes, batched per turn of the event loop (batcher.ts): campaigns share
 * transactions (a put-if-absent per name, etcd-store.ts), so registering 10,000 names costs
 * ~100 round trips, not 10,000; and key deletes (hand-overs, stand-asides, removals) share them too,
 * so a host that gives up k names at once releases them in k / 100 transactions. Per name
 * the order is unchanged: a key is deleted only once its fn settled (the release gate).
 */
export class CampaignBatcher {
  private readonly campaigns: TickBatcher<CampaignRequest, CampaignResult>;
  private readonly resigns: TickBatcher<ResignRequest, true>;
  /** Campaigns of names entering a session (registration, a new session) not answered yet. */
  private entering = 0;
  /** Highest create revision of those campaigns' keys: the host's view has them all once it is there. */
  private enteringTop = 0n;
  private joining = false;
  /**
   * Called when `joining` changes (host-record.ts publishes it; placement holds balancing for
   * it). When it turns on, the campaigns wait for the promise returned: the record that says
   * so lands before any of them. When it turns off, `seenAt` is the revision this host's own
   * view must reach to show every one of those keys (undefined if none was written).
   */
  onJoining: ((joining: boolean, seenAt: bigint | undefined) => Promise<void> | void) | undefined;
  /** Holds a joining host's first campaigns of names nobody queues for yet (features/start-gate.ts). */
  startGate: StartGateHook | undefined;
  /** Entering campaigns of this turn, sorted out together once it ends (arrived()). */
  private arrivals: { req: CampaignRequest; resolve(r: CampaignResult): void; reject(e: unknown): void }[] = [];

  constructor(store: Store, timeoutMs: () => number, window?: WriteWindow) {
    const options = window ? { window } : {};
    this.campaigns = new TickBatcher((batch) => store.campaign(batch, timeoutMs()), { ...options, rank: hostRank });
    // One transaction: it applies as a whole or not at all, so every delete of it shares the answer.
    // Urgent in the window: a hand-over's name has no leader until its key is gone.
    this.resigns = new TickBatcher(
      async (batch) => {
        await store.resign(batch, timeoutMs());
        return batch.map(() => true as const);
      },
      { ...options, urgent: true },
    );
  }

  /**
   * `entering`: the name's first campaign on this session. While at least JOINING_AT of
   * those are out, this host is joining: the others hold balancing until its campaigns are
   * in (their shares would be computed from the part of its candidacy that has landed).
   */
  campaign(req: CampaignRequest, entering = false): Promise<CampaignResult> {
    if (!entering) return this.campaigns.add(req);
    const p = this.startGate?.mayHold(req) ? this.arrive(req) : this.campaigns.add(req);
    this.entering++;
    if (!this.joining && this.entering >= JOINING_AT) this.setJoining(true);
    const done = (res?: CampaignResult): void => {
      if (res?.createRevision !== undefined && res.createRevision > this.enteringTop) this.enteringTop = res.createRevision;
      if (--this.entering === 0 && this.joining) this.setJoining(false);
    };
    p.then(done, () => done());
    return p;
  }

  /**
   * Entering campaigns wait for the end of their turn: only then is it known whether the
   * turn makes this host joining (JOINING_AT) — a registration of a fleet's names, which the
   * start gate orders; a few names registered now and then go at once, first come first served.
   */
  private arrive(req: CampaignRequest): Promise<CampaignResult> {
    return new Promise((resolve, reject) => {
      if (this.arrivals.length === 0) setImmediate(() => this.arrived());
      this.arrivals.push({ req, resolve, reject });
    });
  }

  private arrived(): void {
    const all = this.arrivals;
    this.arrivals = [];
    const gate = this.joining ? this.startGate : undefined;
    for (const a of all) {
      const held = gate?.hold(a.req);
      if (held === undefined) this.campaigns.add(a.req).then(a.resolve, a.reject);
      else void held.then(() => this.campaigns.add(a.req).then(a.resolve, a.reject));
    }
  }

  private setJoining(on: boolean): void {
    this.joining = on;
    const seenAt = on || this.enteringTop === 0n ? undefined : this.enteringTop;
    if (!on) this.enteringTop = 0n;
    const published = this.onJoining?.(on, seenAt);
    if (on && published) this.campaigns.holdUntil(published);
  }

  resign(req: ResignRequest): Promise<void> {
    return this.resigns.add(req).then(() => undefined);
  }
}

/** The start gate as the batcher sees it. */
export interface StartGateHook {
  /** False: `req` is never held (its name has candidates, a try-lock, …): it goes at once, not at the end of its turn. */
  mayHold(req: CampaignRequest): boolean;
  /** Asked at the end of the turn, if the turn made this host joining: a promise holds `req` until it settles; undefined sends it now. */
  hold(req: CampaignRequest): Promise<void> | undefined;
}

/**
 * Campaigns of entering names out at once that make a host "joining": two full batches — a
 * registration of a fleet's names, or a host with many names on a new session; a few names
 * registered now and then never hold anyone's balancing.
 */
export const JOINING_AT = 200;

/**
 * Each host sends the campaigns of one turn in an order of its own: by the rendezvous rank
 * of its node id and the name (rendezvous.ts). When a fleet starts at once, every host's
 * first batches then cover different names — the names the start gate (features/start-gate.ts)
 * would have it lead — instead of whoever's first batch lands first leading the same
 * hundred names everywhere and balancing moving most of them. The order within a turn means
 * nothing else: every campaign of it is sent either way.
 */
const hostRank = (r: CampaignRequest): number => rendezvousRank(r.value, r.namePrefix);
