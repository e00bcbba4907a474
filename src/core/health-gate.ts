// Health-gated candidacy of one name: the check (health-check.ts) says pass or fail; this
// file says what that means for the name — no campaign before the first pass, a standby
// leaves the queue at the first failure, a leader hands over after two in a row if anyone
// else queues, and keeps leading (saying so once) if nobody does. The per-name machine
// (name-machine.ts) carries the decisions out.
import type { Clock } from './clock.js';
import { HealthCheckError } from './errors.js';
import { HealthCheck } from './health-check.js';

/** What a failing check asks of a name's key. */
export type HealthVerdict =
  /** A standby leaves the queue (its key is deleted) and campaigns again once healthy. */
  | 'stand-aside'
  /** The leader hands over gracefully: fn drains first, then the key goes. */
  | 'hand-over'
  /** The leader keeps leading unhealthy: nobody else queues, and an unhealthy leader is better than none. */
  | 'keep-leading';

export class HealthGate {
  private readonly check: HealthCheck;
  /** The leader said once that it keeps leading unhealthy (nobody else queues). */
  private saidKeepsLeading = false;

  constructor(
    private readonly name: string,
    healthy: () => boolean | Promise<boolean>,
    intervalMs: number,
    clock: Clock,
    private readonly report: (err: Error) => void,
    /** A check answered: the machine asks `candidate` and `verdict()` again. */
    changed: () => void,
  ) {
    this.check = new HealthCheck(healthy, intervalMs, clock, (failures, why) => {
      if (failures === 0) this.saidKeepsLeading = false;
      if (failures === 1) this.report(new HealthCheckError(this.name, failures, why!, 'this host is no candidate until it passes'));
      changed();
    });
    this.check.start();
  }

  /** A candidate campaigns once its check has passed, and while it passes. */
  get candidate(): boolean {
    return this.check.checked && this.check.failures === 0;
  }

  /**
   * What a queued or leading key does while this host is no candidate; undefined when
   * nothing is to be done (a candidate, or a leader after a single failure). `othersQueue`
   * is asked only for a leader past two failures (it reads the queue).
   */
  verdict(kind: 'queued' | 'leading', othersQueue: () => boolean): HealthVerdict | undefined {
    if (this.candidate) return undefined;
    if (kind === 'queued') return 'stand-aside';
    if (this.check.failures < 2) return undefined;
    if (othersQueue()) return 'hand-over';
    if (!this.saidKeepsLeading) {
      this.saidKeepsLeading = true;
      this.report(
        new HealthCheckError(
          this.name,
          this.check.failures,
          this.check.lastFailure ?? 'unknown',
          'no other candidate queues, so this host keeps leading',
        ),
      );
    }
    return 'keep-leading';
  }

  stop(): void {
    this.check.stop();
  }
}
