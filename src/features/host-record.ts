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
  private putting = false;
  /** The record was seen gone while a put was under way: look again once it is done. */
  private recheck = false;
  private closed = false;
  private joining = false;
  /** `joining` changed while a put was under way: put again once it is done. */
  private rewrite = false;
  /** Waiting for a put that says `joining` as it is now to land (setJoining). */
  private landed: { joining: boolean; resolve: () => void }[] = [];

  constructor(private readonly host: HostRecordHost) {}

  /** A new session: publish the record under its lease. */
  publish(session: Session): void {
    this.session = session;
    void this.put(session);
  }

  /** Control records changed: write the record again if it is gone from a current view. */
  check(): void {
    const mine = this.session;
    if (this.putting) {
      // The put may have landed before the delete we are told of (an operator's
      // `etcdctl del` right after it): once the put answers, its record may be gone.
      this.recheck = true;
      return;
    }
    if (mine && !mine.ended && this.host.view.current && !this.host.view.control.has(hostKey(this.host.prefix, this.host.nodeId))) {
      void this.put(mine);
    }
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
    const landed = new Promise<void>((resolve) => this.landed.push({ joining: on, resolve }));
    if (this.putting) this.rewrite = true;
    else void this.put(mine);
    return landed;
  }

  close(): void {
    this.closed = true;
    this.settle(undefined);
  }

  /** Answers the waiters whose `joining` a landed put carried (`written`), or all (undefined: nothing more will land). */
  private settle(written: boolean | undefined): void {
    const keep = this.landed.filter((w) => written !== undefined && w.joining !== written);
    for (const w of this.landed) if (!keep.includes(w)) w.resolve();
    this.landed = keep;
  }

  private async put(session: Session): Promise<void> {
    this.putting = true;
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
          await this.host.store.put(hostKey(this.host.prefix, this.host.nodeId), value, session.leaseId, this.host.requestTimeoutMs());
          this.settle(joining);
          return;
        } catch (err) {
          if (this.closed || session.ended) return this.settle(undefined);
          this.host.report(new EtcdUnavailableError(`write of the host record of '${this.host.nodeId}'`, err));
          await sleep(this.host.clock, wait);
          wait = Math.min(wait * 2, 2000);
        }
      }
    } finally {
      this.putting = false;
      if (this.closed || session.ended) this.settle(undefined);
      if (this.rewrite) {
        this.rewrite = false;
        if (!this.closed && this.session && !this.session.ended) void this.put(this.session);
      }
      if (this.recheck) {
        this.recheck = false;
        this.check();
      }
    }
  }
}
