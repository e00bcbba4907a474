// THE RELEASE GATE: the one place where this host gives up a key or a lease.
//
// A key, or a lease with its keys, lets a standby in the moment it is deleted. So it is
// deleted only after every leadership on it has settled — fn's promise settled (for the
// CLI: the program's whole process group gone). Until then it stays: kept alive while
// the session lives, or left to expire by itself once the session is lost — which etcd
// does no earlier than ttl after our last acknowledged keepalive, after the step-down
// deadline aborted every fn. Losing a lease therefore never revokes it early, and the
// graceful paths (remove, close, SIGTERM) keep their millisecond hand-over because they
// drain first and release right after.
import type { Session } from './session.js';

export class ReleaseGate {
  /** Unsettled leaderships per session. */
  private readonly running = new Map<Session, Set<Promise<void>>>();

  /** Registers a leadership on `session`; `settled` resolves when its fn has settled. */
  hold(session: Session, settled: Promise<void>): void {
    let set = this.running.get(session);
    if (!set) this.running.set(session, (set = new Set()));
    set.add(settled);
    void settled.then(() => {
      set.delete(settled);
      if (set.size === 0 && this.running.get(session) === set) this.running.delete(session);
    });
  }

  /** Number of leaderships on `session` whose fn has not settled. */
  unsettled(session: Session): number {
    return this.running.get(session)?.size ?? 0;
  }

  /** Resolves once every leadership held on `session` has settled. */
  async settled(session: Session): Promise<void> {
    for (;;) {
      const set = this.running.get(session);
      if (!set || set.size === 0) return;
      await Promise.all(set);
    }
  }

  /** Deletes one key once its leadership (`settled`) is over. */
  async releaseKey(settled: Promise<void>, del: () => Promise<void>): Promise<void> {
    await settled;
    await del();
  }

  /**
   * Revokes `session`'s lease once every leadership on it has settled; true when etcd
   * answered. `retry`: a number of attempts, or a function called after each failed
   * attempt that resolves true to try again (it may wait first). Bounded by the caller:
   * etcd expires the lease by itself anyway.
   */
  async revoke(session: Session, timeoutMs: number, retry: number | (() => Promise<boolean>) = 1): Promise<boolean> {
    await this.settled(session);
    for (let attempt = 1; ; attempt++) {
      if (await session.revoke(timeoutMs)) return true;
      const again = typeof retry === 'number' ? attempt < retry : await retry();
      if (!again) return false;
    }
  }
}
