// This host's record, `<prefix>/hosts/<id>` = { lease, weight?, zone?, joining? }, kept under
// its session's lease: the sign that keys on that lease are ours (placement leaves foreign
// keys alone), and where the others read its weight, its zone and whether it is joining (its
// names' campaigns are still going out: the others hold balancing). Written on each new
// session, when `joining` changes, and again when an operator's `del --prefix` took it;
// retried with backoff until it lands or the session ends.
import { sleep, type Clock } from '../core/clock.js';
import { EtcdUnavailableError } from '../core/errors.js';
import type { Session } from '../core/session.js';
import { hostKey } from '../etcd/keys.js';
import type { PrefixView } from '../core/view.js';
import type { ControlStore } from '../etcd/store.js';

/** What the record needs from its locker (the mover's host gives it). @internal */
export interface HostRecordHost {
  readonly view: PrefixView;
  readonly store: ControlStore;
  readonly prefix: string;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly weight: number;
  readonly zone: string | undefined;
  requestTimeoutMs(): number;
  report(err: Error): void;
}

/** @internal */
export class HostRecord {
  private session: Session | undefined;
  /** The session of the put under way (one at a time). */
  private putFor: Session | undefined;
  /** The record was seen gone while a put was under way: look again once it is done. */
  private recheck = false;
  /** Revision of the last put that landed: a view below it has yet to show that put. */
  private landedAt: bigint | undefined;
  private closed = false;
  private joining = false;
  /** `joining` changed while a put was under way: put again once it is done. */
  private rewrite = false;
  /** Waiting for a put under `session` that says `joining` as it is now to land (setJoining). */
  private landed: { session: Session; joining: boolean; resolve: () => void }[] = [];

  constructor(private readonly host: HostRecordHost) {}

  /**
   * A new session: publish the record under its lease — at the end of this turn, so that the
   * names starting on the session in the same turn (runtime.ts becameReady()) set `joining`
   * first: one put then says it, not a put without it and a second one the campaigns wait for.
   */
  publish(session: Session): void {
    this.session = session;
    queueMicrotask(() => {
      if (this.session === session && this.putFor !== session) this.putNow();
    });
  }

  /** Control records changed: write the record again if it is gone from a current view. */
  check(): void {
    const mine = this.session;
    if (this.putFor) {
      // The put may have landed before the delete we are told of (an operator's
      // `etcdctl del` right after it): once the put answers, its record may be gone.
      this.recheck = true;
      return;
    }
    const view = this.host.view;
    if (!mine || mine.ended || !view.current) return;
    // Our last put is not in the view yet: its event will call check() again. Judged now,
    // the record would look gone and be written twice.
    if (this.landedAt !== undefined && !view.reached(this.landedAt)) return;
    if (!view.control.has(hostKey(this.host.prefix, this.host.nodeId))) void this.put(mine);
  }

  /**
   * This host is joining, or no longer (campaign.ts): publish it with the record. Resolves
   * once a record saying so has landed — or there is nothing to wait for (no session, the
   * session ended, closed).
   */
  setJoining(on: boolean): Promise<void> {
    if (this.joining === on) return Promise.resolve();
    this.joining = on;
    const mine = this.session;
    if (!mine || mine.ended || this.closed) return Promise.resolve();
    const landed = new Promise<void>((resolve) => this.landed.push({ session: mine, joining: on, resolve }));
    this.putNow();
    return landed;
  }

  close(): void {
    this.closed = true;
    this.settle(undefined, undefined);
  }

  /** Puts the current session's record now, or once the put under way is done: one put at a time, so they land in order. */
  private putNow(): void {
    const mine = this.session;
    if (this.putFor) this.rewrite = true;
    else if (mine && !mine.ended && !this.closed) void this.put(mine);
  }

  /**
   * Answers the waiters of `session` whose `joining` a landed put carried (`written`), or all
   * of them (undefined: nothing more will land under it) — and any of an older session.
   * `session` undefined (closed): every waiter.
   */
  private settle(session: Session | undefined, written: boolean | undefined): void {
    const done = (w: (typeof this.landed)[number]): boolean =>
      session === undefined || w.session !== this.session || (w.session === session && (written === undefined || w.joining === written));
    const keep = this.landed.filter((w) => !done(w));
    for (const w of this.landed) if (done(w)) w.resolve();
    this.landed = keep;
  }

  private async put(session: Session): Promise<void> {
    this.putFor = session;
    try {
      let wait = 50;
      while (!this.closed && this.session === session && !session.ended) {
        try {
          const { weight, zone } = this.host;
          const joining = this.joining;
          const value = JSON.stringify({
            lease: session.hex,
            ...(weight !== 1 ? { weight } : {}),
            ...(zone !== undefined ? { zone } : {}),
            ...(joining ? { joining: true } : {}),
          });
          this.landedAt = await this.host.store.put(
            hostKey(this.host.prefix, this.host.nodeId),
            value,
            session.leaseId,
            this.host.requestTimeoutMs(),
          );
          this.settle(session, joining);
          return;
        } catch (err) {
          if (this.closed || session.ended) return this.settle(session, undefined);
          this.host.report(new EtcdUnavailableError(`write of the host record of '${this.host.nodeId}'`, err));
          await sleep(this.host.clock, wait);
          wait = Math.min(wait * 2, 2000);
        }
      }
    } finally {
      this.putFor = undefined;
      if (this.closed || session.ended) this.settle(session, undefined);
      if (this.rewrite) {
        this.rewrite = false;
        this.putNow();
      }
      if (this.recheck) {
        this.recheck = false;
        this.check();
      }
    }
  }
}
