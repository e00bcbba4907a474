// THE LIFECYCLE OF ONE NAME on this host: one state machine whose states carry what they
// need; every transition goes through `enter()`. It turns election outcomes into runs of
// fn. Graceful step-downs (remove, close, fn failure) abort fn's signal, let fn settle,
// and only then delete the key, through the release gate (release.ts), so the next
// leader starts after this one has stopped: those steps, the way out, are NameRelease's
// (name-release.ts), which this class extends with the way in. What differs between a
// singleton, a try-lock and a lock is the ModePolicy given at construction
// (mode-policy.ts); health-gated candidacy is the HealthGate's to decide
// (health-gate.ts). What the machine needs from its locker and tells its handle is in
// name-host.ts; the public handle of a name is the Singleton (api/singleton.ts).
import { publishLeadership } from './diagnostics.js';
import { campaign } from './election.js';
import { EtcdUnavailableError, LeaderFunctionError } from './errors.js';
import { HealthGate, type HealthVerdict } from './health-gate.js';
import { ActiveLeadership, Run } from './leadership.js';
import type { SingletonFunction } from './leadership-types.js';
import type { ModePolicy } from './mode-policy.js';
import type { NameEvents, NameHost } from './name-host.js';
import { NameRelease } from './name-release.js';
import type { Claim, In, State } from './name-state.js';
import type { Session } from './session.js';
import type { CampaignResult, HandOverPast } from '../etcd/store.js';

/** The way in (campaign, queue, lead) and what the locker drives; the way out is NameRelease's (name-release.ts). */
export class NameMachine extends NameRelease {
  constructor(
    name: string,
    private readonly fn: SingletonFunction,
    host: NameHost,
    policy: ModePolicy,
    events: NameEvents,
    options?: { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number },
  ) {
    super(name, host, policy, events);
    if (options?.healthy) {
      this.health = new HealthGate(name, options.healthy, options.checkIntervalMs, host.clock, events.report, () => this.healthChanged());
    }
  }

  // ——— driven by the locker ———

  /** The session of the last campaign: the first on a session is a name entering it (campaign.ts, joining). */
  private campaignedOn: Session | undefined;

  /** start(), once the locker has a session again (one function per name: waiting twice is waiting once). */
  private readonly startLater = (): void => this.start();

  /** Campaigns if idle and the locker has a session. Idempotent. */
  start(): void {
    if (this.state.kind !== 'idle') return;
    if (this.health && !this.health.candidate) return; // campaigns again when the health check passes
    const session = this.host.session();
    if (!session) return this.host.whenSession(this.startLater);
    const st: State = { kind: 'campaigning', session, then: undefined };
    this.enter(st);
    const entering = this.campaignedOn !== session;
    this.campaignedOn = session;
    const c = campaign(this.host, this.name, session, this.policy.onBusy === 'refuse', entering);
    c.result.then(
      (res) => this.campaigned(st, c.key, res),
      (err: unknown) => this.campaignFailed(st, c.key, err),
    );
  }

  /** The view of this name changed (or may have). */
  judge(): void {
    const s = this.state;
    if (s.kind !== 'queued' && s.kind !== 'leading') return;
    const { claim } = s;
    const verdict = this.host.view.judge(this.name, claim.key, claim.token, claim.since);
    if (verdict === 'unknown') return;
    if (verdict === 'gone') {
      // Deleted by someone else (failover, an operator, expiry): queue again, or end.
      if (s.kind === 'leading') return this.stopLeading(s, 'deposed', this.policy.onLoss, false);
      if (this.policy.onBusy === 'refuse') return this.giveUp(`the key ${claim.key} was deleted before it led`);
      return this.restart();
    }
    const health = this.health?.verdict(s.kind, () => this.host.view.queue(this.name).length > 1);
    if (health !== undefined) return this.healthAct(s, health);
    // Placement (placement.ts): a standby steps out of the way of a requested move or, on
    // a draining host, of an eligible candidate; a leader hands over when its move is ready.
    if (s.kind === 'queued' && this.policy.standsAside && this.host.standsAside(this.name, claim.key)) return this.standAside(s);
    if (s.kind === 'leading' && this.policy.handsOver && this.host.handsOver(this.name, claim.key)) return void this.handOver();
    if (verdict === 'first' && s.kind === 'queued') {
      if (!claim.session.alive()) {
        // Past the step-down deadline (e.g. the process was paused): never start on a
        // lease etcd may already have expired. The session declares itself lost.
        queueMicrotask(() => claim.session.checkDeadline());
        return;
      }
      if (!claim.session.startable()) return this.awaitRenewal(s);
      this.lead(claim);
      // A move request for our key may be in the view already (its requester saw our key
      // first while we waited for a keepalive): no view change will announce it again, so
      // judge the hand-over now — else the failover waits out its timeout.
      const now = this.state;
      if (now.kind === 'leading' && now.claim === claim && this.policy.handsOver && this.host.handsOver(this.name, claim.key)) {
        this.handOver();
      }
    }
  }

  /**
   * First in line on a session whose keepalive is overdue (session.ts, startable()):
   * judge again at its next acknowledgement; if the session is lost instead, sessionLost()
   * has moved us on and this state is gone.
   */
  private awaitRenewal(s: In<'queued'>): void {
    if (s.awaitingRenewal) return;
    s.awaitingRenewal = true;
    void s.claim.session.renewed().then(() => {
      s.awaitingRenewal = false;
      if (this.state === s) this.judge();
    });
  }

  /**
   * Hands the leadership over gracefully: fn's signal aborts ('handover'), fn drains, then
   * our key is deleted and we queue again at the back, so whoever is next starts after us.
   * False if this host does not lead the name, or its mode is not moved. `past`: to a
   * candidate further back — the standbys ahead of it go with our key (store.ts, HandOverPast).
   */
  handOver(past?: HandOverPast): boolean {
    const s = this.state;
    if (s.kind !== 'leading' || !this.policy.handsOver) return false;
    this.stopLeading(s, 'handover', 'campaign', false, past);
    return true;
  }

  /**
   * Steps back to the end of the queue if queued and not leading (standby balance). `past`:
   * the standbys between us and the promoted candidate go with our key, while the leader's
   * key holds (store.ts, HandOverPast).
   */
  stepBack(past?: HandOverPast): boolean {
    const s = this.state;
    if (s.kind !== 'queued' || !this.policy.handsOver) return false;
    this.standAside(s, past);
    return true;
  }

  /** `session` is gone: every leadership on it stops now, synchronously. */
  sessionLost(session: Session): void {
    const s = this.state;
    switch (s.kind) {
      case 'campaigning':
        // Whatever the write did, its key goes with the lost lease.
        if (s.session !== session) return;
        if (s.then === 'retire' || this.policy.onBusy === 'refuse') return this.giveUp('the lease was lost');
        return this.restart();
      case 'queued':
        if (s.claim.session !== session) return;
        if (this.policy.onBusy === 'refuse') return this.giveUp('the lease was lost');
        return this.restart();
      case 'leading':
        if (s.claim.session !== session) return;
        // The key stays under the lost lease; the gate revokes it once fn has settled.
        return this.stopLeading(s, 'lost', this.policy.onLoss, true);
      case 'draining':
        // Its key now goes with the lost lease, once fn has settled (the gate).
        if (s.claim?.session === session) s.claim = undefined;
        return;
      default:
        return;
    }
  }

  /** A new session is here: a campaign backoff from the old one is not worth waiting out. */
  sessionChanged(): void {
    if (this.state.kind === 'backoff' && this.state.why === 'campaign') this.restart();
  }

  /**
   * remove() or close(): leave for good from whatever state. On close the lease revoke
   * (after every fn settled) deletes the key.
   */
  leave(reason: 'removed' | 'closed'): void {
    const s = this.state;
    switch (s.kind) {
      case 'idle':
      case 'backoff':
        return this.retire();
      case 'queued':
        if (reason === 'closed') return this.retire();
        this.enter({ kind: 'resigning', then: 'retire' });
        return void this.resignKey(s.claim, Promise.resolve());
      case 'leading':
        return this.stopLeading(s, reason, 'retire', reason === 'closed');
      case 'campaigning':
      case 'draining':
      case 'resigning':
        s.then = 'retire';
        return;
      case 'retired':
        return;
    }
  }

  /** The locker is closing: stop; resolves once fn has settled. The lease revoke removes the key. */
  async close(): Promise<void> {
    this.leave('closed');
    const s = this.state;
    if (s.kind === 'draining') await s.run.settled;
  }

  // ——— the way in ———

  private campaigned(st: In<'campaigning'>, key: string, res: CampaignResult): void {
    this.campaignBackoff = undefined;
    if (res.createRevision === undefined) {
      // A try-lock found the name taken: nothing of ours is in etcd.
      if (this.state === st) this.retire({ acquired: false, holder: res.candidates[0]?.value });
      return;
    }
    const claim: Claim = { session: st.session, key, token: res.createRevision, since: res.createRevision };
    if (this.state !== st) return; // the session was lost meanwhile: the key goes with it
    if (st.then !== undefined) {
      // remove() (or close) arrived during the write: take the key back out.
      if (st.session.ended) return this.retire();
      this.enter({ kind: 'resigning', then: st.then });
      return void this.resignKey(claim, Promise.resolve());
    }
    this.enter({ kind: 'queued', claim });
    this.judge();
  }

  private campaignFailed(st: In<'campaigning'>, key: string, err: unknown): void {
    if (this.state !== st) return;
    const e = new EtcdUnavailableError(`campaign for '${this.name}'`, err);
    if (this.policy.onBusy === 'refuse' || st.then !== undefined) {
      // The write may have landed although its answer was lost: a key left behind would
      // block the name for every host. Delete it (guarded by our lease), then end.
      this.events.answer(e);
      this.enter({ kind: 'resigning', then: 'retire' });
      return void this.resignKey({ session: st.session, key, token: undefined });
    }
    this.events.report(e);
    // Campaign again later; put-if-absent finds a key that did land.
    this.backoff('campaign');
  }

  private lead(claim: Claim): void {
    const leadership = new ActiveLeadership(
      this.name,
      this.host.nodeId,
      claim.key,
      claim.token.toString(),
      claim.session,
      this.host.client,
      this.host.clock,
    );
    const run = new Run(leadership, claim.session);
    this.enter({ kind: 'leading', claim, run });
    this.host.recorder.started(this.name);
    publishLeadership(() => ({ id: this.host.nodeId, name: this.name, event: 'start', token: leadership.token }));
    this.host.gate.hold(claim.session, run.settled);
    this.campaignBackoff = undefined;
    this.events.answer({ acquired: true });
    let result: unknown;
    try {
      this.events.start(leadership);
      // A 'start' listener may have removed us, or the session may be gone. `remove()` as
      // fn gets it ends the leadership and resolves at once: fn is what a release waits for.
      result = leadership.ended ? undefined : this.fn(() => (this.leave('removed'), Promise.resolve()), leadership);
    } catch (err) {
      result = Promise.reject(err);
    }
    run.follow(result, (err) => this.fnSettled(run, err));
  }

  private fnSettled(run: Run, err: unknown): void {
    const s = this.state;
    if (s.kind === 'leading' && s.run === run) {
      if (err === undefined) {
        // A lock is released as soon as its fn has settled.
        if (this.policy.onSettle === 'release') return this.leave('removed');
        // fn finished its work while leading: this host keeps the name (a standby would
        // only run it again); the next run comes after the next election.
        this.errorBackoff = undefined;
        return;
      }
      // A lock's fn failing is its caller's answer, not the locker's trouble.
      if (this.policy.reportsFailure) this.events.report(new LeaderFunctionError(this.name, err));
      const now = this.state;
      if (now.kind === 'leading' && now.run === run) this.stopLeading(now, 'error', this.policy.onError, false);
      return;
    }
    if (s.kind === 'draining' && s.run === run) this.drained(s);
  }

  /** A health check answered (health-gate.ts). */
  private healthChanged(): void {
    if (this.health!.candidate) return this.start();
    const s = this.state;
    // campaigning: judged once queued; idle and backoff: start() waits for a pass;
    // draining and resigning: go on, then start() waits.
    if (s.kind !== 'queued' && s.kind !== 'leading') return;
    const verdict = this.health!.verdict(s.kind, () => this.host.view.queue(this.name).length > 1);
    if (verdict !== undefined) this.healthAct(s, verdict);
  }

  /** Carries out what a failing check asks; 'keep-leading' asks nothing. */
  private healthAct(s: In<'queued'> | In<'leading'>, verdict: HealthVerdict): void {
    if (verdict === 'stand-aside' && s.kind === 'queued') return this.standAside(s);
    if (verdict === 'hand-over' && s.kind === 'leading') return this.stopLeading(s, 'unhealthy', 'campaign', false);
  }
}
