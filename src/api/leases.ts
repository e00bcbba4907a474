// The leases of one locker, one Session at a time: granted with backoff until etcd
// answers, and given back once lost. A lost lease is revoked only after every fn on it
// has settled (the release gate), and is worth revoking at all because a lease left to
// expire keeps this host's keys first in line for up to a ttl: its names would wait that
// long. The runtime (runtime.ts) holds the current session and says what a grant and a
// loss mean for everything else.
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { sleep } from '../core/clock.js';
import { EtcdUnavailableError, type LeaseLostError } from '../core/errors.js';
import type { ReleaseGate } from '../core/release.js';
import { Session } from '../core/session.js';
import type { Store } from '../etcd/store.js';
import type { ResolvedOptions } from './options.js';

/** What the leases need of their locker. */
export interface LeasesHost {
  /** The store sessions keep their lease alive through. */
  readonly store: Store;
  readonly opts: ResolvedOptions;
  readonly gate: ReleaseGate;
  /** Aborted when the locker closes: retries stop. */
  readonly closeSignal: AbortSignal;
  /** True once the locker began to close: no lease is granted any more. */
  closed(): boolean;
  requestTimeoutMs(): number;
  report(err: Error): void;
}

export class Leases {
  /** Lost sessions whose lease is revoked once every fn on it settled and etcd answers. */
  private readonly lost = new Set<Session>();

  constructor(private readonly host: LeasesHost) {}

  /**
   * Grants a lease, retrying with exponential backoff and jitter until it works or the
   * locker closes; hands the new session to `granted`. `lost` hears when a session is lost.
   */
  async grant(granted: (session: Session) => void, lost: (session: Session, err: LeaseLostError) => void): Promise<void> {
    let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next();
    let session: Session | undefined;
    while (!this.host.closed() && !session) {
      try {
        session = await Session.grant(this.host.store, this.host.opts, (err) => lost(session!, err));
      } catch (err) {
        if (this.host.closed()) return;
        this.host.report(new EtcdUnavailableError('lease grant', err));
        await this.pause(backoff.duration);
        backoff = backoff.next(undefined);
      }
    }
    if (!session) return;
    if (this.host.closed()) {
      await session.close(true); // nothing ran on it
      return;
    }
    granted(session);
  }

  /** `session` was lost: it is given back by giveBack(), or on a later grant, or on close. */
  remember(session: Session): void {
    this.lost.add(session);
  }

  /**
   * Revokes a lost session's lease once every fn on it has settled — and keeps trying for
   * a while: a session is typically lost while etcd cannot answer (its raft leader froze
   * and the others refuse with "no leader" until they elect one). Left to expire, the
   * lease keeps this host's keys first in line for up to a ttl after the new raft leader
   * took over (etcd renews every lease when a raft leader takes office): its names would
   * wait that long. Stops at 2 × ttl after the loss, or when the locker closes (close
   * revokes too).
   */
  giveBack(session: Session): void {
    const { opts, closeSignal } = this.host;
    const until = opts.clock.now() + 2 * opts.ttl * 1000;
    const again = async (): Promise<boolean> => {
      if (closeSignal.aborted || opts.clock.now() >= until) return false;
      await this.pause(200);
      return !closeSignal.aborted;
    };
    void this.host.gate.revoke(session, Math.min(1000, opts.renewDeadlineMs), again).then((ok) => {
      if (ok) this.lost.delete(session);
    });
  }

  /** etcd answers again: revoke the leases of lost sessions whose fns have settled (their keys would make our names wait a full TTL). */
  retry(): void {
    for (const old of this.lost) {
      void this.host.gate.revoke(old, this.host.requestTimeoutMs(), 2).then(() => this.lost.delete(old));
    }
  }

  /** On close: one revoke each of the lost leases whose fns have all settled. */
  closing(): Promise<unknown>[] {
    const revokes: Promise<unknown>[] = [];
    for (const old of this.lost) if (this.host.gate.unsettled(old) === 0) revokes.push(this.host.gate.revoke(old, 1000));
    return revokes;
  }

  /** Waits `ms`, or less if the locker closes. Leaves no listener behind (outages can be long). */
  private pause(ms: number): Promise<void> {
    return sleep(this.host.opts.clock, ms, this.host.closeSignal);
  }
}
