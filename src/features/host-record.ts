// This host's record, `<prefix>/hosts/<id>` = { lease, weight?, zone? }, kept under its
// session's lease: the sign that keys on that lease are ours (placement leaves foreign keys
// alone), and where the others read its weight and zone. Written on each new session, and
// again when an operator's `del --prefix` took it; retried with backoff until it lands or
// the session ends.
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

  close(): void {
    this.closed = true;
  }

  private async put(session: Session): Promise<void> {
    this.putting = true;
    try {
      let wait = 50;
      while (!this.closed && this.session === session && !session.ended) {
        try {
          const { weight, zone } = this.host;
          const value = JSON.stringify({
            lease: session.hex,
            ...(weight !== 1 ? { weight } : {}),
            ...(zone !== undefined ? { zone } : {}),
          });
          await this.host.store.put(hostKey(this.host.prefix, this.host.nodeId), value, session.leaseId, this.host.requestTimeoutMs());
          return;
        } catch (err) {
          if (this.closed || session.ended) return;
          this.host.report(new EtcdUnavailableError(`write of the host record of '${this.host.nodeId}'`, err));
          await sleep(this.host.clock, wait);
          wait = Math.min(wait * 2, 2000);
        }
      }
    } finally {
      this.putting = false;
      if (this.recheck) {
        this.recheck = false;
        this.check();
      }
    }
  }
}
