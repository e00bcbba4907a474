// One leadership of a name on this host, as fn sees it (ActiveLeadership), and one run
// of fn on it (Run): when fn settles, the release gate (release.ts) lets the key go.
import type { ComparatorBuilder, Etcd3 } from '../etcd/etcd3.js';
import { wallTime, type Clock } from './clock.js';
import { NotLeaderError } from './errors.js';
import type { Session } from './session.js';
import type { Leadership } from './leadership-types.js';

/**
 * A class rather than an object literal: a literal with a getter gets a hidden class
 * and a property dictionary of its own (~0.6 KB per leadership), and `signal` as a getter
 * lets Node create the AbortSignal (~0.7 KB) only if fn or a listener asks for it.
 */
export class ActiveLeadership implements Leadership {
  /** Wall-clock ms for display, from the locker's Clock (virtual in the simulation). */
  readonly since: number;
  /** Why the leadership ended; undefined while it lasts. */
  private endedBy: NotLeaderError | undefined;
  // Made on first use of `signal`: a Node AbortSignal costs ~0.8 KB of heap (its own hidden
  // class and two listener maps), more than the rest of a leadership, and many fns never
  // read it. A signal first read after the end is born aborted with the same reason.
  private controller: AbortController | undefined;
  constructor(
    readonly name: string,
    readonly nodeId: string,
    readonly key: string,
    readonly token: string,
    private readonly session: Session,
    private readonly client: Etcd3,
    clock: Clock,
  ) {
    this.since = wallTime(clock);
  }
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.endedBy) this.controller.abort(this.endedBy);
    }
    return this.controller.signal;
  }
  /** True once the leadership has ended (its signal is, or will be born, aborted). */
  get ended(): boolean {
    return this.endedBy !== undefined;
  }
  /** Ends the leadership once: aborts the signal if anyone holds it. */
  end(reason: NotLeaderError): void {
    if (this.endedBy) return;
    this.endedBy = reason;
    this.controller?.abort(reason);
  }
  get active(): boolean {
    return this.endedBy === undefined && this.session.alive();
  }
  check(): void {
    if (!this.active) {
      throw new NotLeaderError(this.name, this.endedBy ? String(this.endedBy.reason) : 'lost');
    }
  }
  fence(): ComparatorBuilder {
    return this.client.if(this.key, 'Create', '==', this.token);
  }
}

/** One run of fn on a leadership. */
export class Run {
  /** True once fn's promise has settled. */
  done = false;
  /** Resolves when fn's promise has settled, either way. Never rejects. */
  readonly settled: Promise<void>;
  private resolveSettled!: () => void;

  constructor(
    readonly leadership: ActiveLeadership,
    /** The session this run leads on (for health: a run outliving its lease). */
    readonly session: Session,
  ) {
    this.settled = new Promise<void>((r) => (this.resolveSettled = r));
  }

  /** Follows fn's result until it settles, then calls `after` with undefined (fulfilled) or the error. */
  follow(result: unknown, after: (err: unknown) => void): void {
    Promise.resolve(result).then(
      () => {
        this.done = true;
        this.resolveSettled();
        after(undefined);
      },
      (err: unknown) => {
        this.done = true;
        this.resolveSettled();
        after(err ?? new Error('fn rejected without a reason'));
      },
    );
  }

  /** Calls `warn` if fn has not settled `ms` after its leadership ended (it holds the name until it does). */
  warnIfStuck(clock: Clock, ms: number, warn: () => void): void {
    const timer = clock.setTimeout(() => {
      if (!this.done) warn();
    }, ms);
    void this.settled.then(() => clock.clearTimeout(timer));
  }
}
