// THE WAY OUT of one name's lifecycle on this host: the half of its machine that lets go.
// A leadership ends (fn's signal aborts, `stop` is said), fn drains, our key is deleted
// through the release gate (release.ts) once fn has settled, and the name goes on: queue
// again, back off, or retire. This class holds the state because every one of these steps
// moves it, through its one `enter()`; the machine (name-machine.ts) extends it with the
// way in (campaign, queue, lead) and with what the locker drives. Two files rather than
// one of 400+ lines, cut where a reader's question changes: how does a name get a
// leadership, and how does it give one up?
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { publishLeadership } from './diagnostics.js';
import { EtcdUnavailableError, NotLeaderError } from './errors.js';
import type { HealthGate } from './health-gate.js';
import type { StopReason } from './leadership-types.js';
import type { ModePolicy } from './mode-policy.js';
import type { NameEvents, NameHost, TryAnswer } from './name-host.js';
import { resignUntilDone } from './name-resign.js';
import type { Claim, In, Next, State } from './name-state.js';
import type { HandOverPast } from '../etcd/store.js';

export abstract class NameRelease {
  /** Private to this class: only `enter()` changes it. */
  private now: State = { kind: 'idle' };
  /** Backoff after fn failures; grows until fn succeeds once. */
  protected errorBackoff: IBackoff<unknown> | undefined;
  protected campaignBackoff: IBackoff<unknown> | undefined;
  /** The `healthy` option's gate, if any (the machine makes it: its answers drive the way in). */
  protected health: HealthGate | undefined;

  constructor(
    readonly name: string,
    protected readonly host: NameHost,
    readonly policy: ModePolicy,
    protected readonly events: NameEvents,
  ) {}

  /** The current state (name-state.ts reads it). */
  get current(): State {
    return this.now;
  }

  /** The current state, for the steps of both halves. */
  protected get state(): State {
    return this.now;
  }

  /** Campaigns if idle and the locker has a session (the way in: name-machine.ts). */
  abstract start(): void;

  // ——— transitions ———

  protected enter(next: State): void {
    const prev = this.state;
    if (prev.kind === 'backoff' && next.kind !== 'backoff') this.host.clock.clearTimeout(prev.timer);
    this.now = next;
  }

  protected restart(): void {
    this.enter({ kind: 'idle' });
    this.start();
  }

  /** Ends a leadership: abort fn's signal, emit `stop`; the key waits for fn in `draining`. */
  protected stopLeading(s: In<'leading'>, reason: StopReason, then: Next, keyGoesWithLease: boolean, past?: HandOverPast): void {
    const claim = keyGoesWithLease || reason === 'deposed' ? undefined : s.claim;
    const st: State = { kind: 'draining', claim, run: s.run, then, ...(past ? { past } : {}) };
    this.enter(st);
    s.run.leadership.end(new NotLeaderError(this.name, reason));
    this.host.recorder.stopped(this.name, reason);
    publishLeadership(() => ({ id: this.host.nodeId, name: this.name, event: 'stop', token: s.run.leadership.token, reason }));
    this.events.stop(reason, s.run.leadership);
    if (s.run.done) return this.drained(st);
    s.run.warnIfStuck(this.host.clock, this.host.stopTimeoutMs, () =>
      this.events.report(
        new Error(
          `fn of '${this.name}' has not settled ${this.host.stopTimeoutMs} ms after its signal aborted (${reason}); ` +
            `the name stays held by this host until it does`,
        ),
      ),
    );
  }

  /** fn has settled after its leadership ended: release the key if it is ours, then go on. */
  protected drained(s: In<'draining'>): void {
    if (this.state !== s) return;
    if (s.claim && !s.claim.session.ended) {
      this.enter({ kind: 'resigning', then: s.then });
      return void this.resignKey(s.claim, s.run.settled, s.past);
    }
    this.proceed(s.then);
  }

  protected proceed(then: Next): void {
    if (then === 'retire') return this.retire();
    if (then === 'backoff') return this.backoff('error');
    this.restart();
  }

  /**
   * Deletes our key — once `settled` has, through the gate — retrying while our session
   * lives, then proceeds. `token` undefined: the campaign's answer was lost, and the lease
   * in the key's name guards the delete.
   */
  protected async resignKey(
    claim: Pick<Claim, 'session' | 'key'> & { token: bigint | undefined },
    settled?: Promise<void>,
    past?: HandOverPast,
  ): Promise<void> {
    const { session, key, token } = claim;
    const del = (): Promise<void> => resignUntilDone(this.host, this.name, session, key, token, this.events.report, past);
    await (settled ? this.host.gate.releaseKey(settled, del) : del());
    const s = this.state;
    if (s.kind === 'resigning') this.proceed(s.then);
  }

  /**
   * Campaign again after an exponential backoff with jitter: after an fn failure so a
   * standby gets its turn (grows until fn succeeds once); after a failed campaign write
   * so a struggling etcd is not hammered.
   */
  protected backoff(why: 'error' | 'campaign'): void {
    let duration: number;
    if (why === 'error') {
      this.errorBackoff = (this.errorBackoff ?? new ExponentialBackoff({ initialDelay: 200, maxDelay: 30_000 })).next(undefined);
      duration = this.errorBackoff.duration;
    } else {
      this.campaignBackoff = (this.campaignBackoff ?? new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 })).next(undefined);
      duration = this.campaignBackoff.duration;
    }
    const st: State = {
      kind: 'backoff',
      why,
      timer: this.host.clock.setTimeout(() => {
        if (this.state === st) this.restart();
      }, duration),
    };
    this.enter(st);
  }

  /** An unhealthy standby, or one out of a move's way, leaves the queue (its key is deleted) and campaigns again. */
  protected standAside(s: In<'queued'>, past?: HandOverPast): void {
    this.enter({ kind: 'resigning', then: 'campaign' });
    void this.resignKey(s.claim, Promise.resolve(), past);
  }

  /** A try-lock ends before it led: its caller is answered with why. */
  protected giveUp(why: string): void {
    this.retire(new EtcdUnavailableError(`try-lock of '${this.name}'`, new Error(why)));
  }

  protected retire(answer?: TryAnswer | Error): void {
    this.health?.stop();
    if (answer) this.events.answer(answer);
    this.enter({ kind: 'retired' });
    this.events.retired();
  }
}
