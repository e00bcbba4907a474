// Health-gated candidacy (Consul ties sessions to health checks; nothing does it for etcd
// elections): a singleton registered with `healthy` is a candidate only while its check
// passes. This file owns the check — when it runs, what counts as a failure, how many in a
// row — and tells the name's health gate (health-gate.ts) what changed; what a change
// does to the name (leave the queue, hand over) is decided there. Its options
// (`healthy`, `checkIntervalMs`) are declared and validated in options.ts.
import type { Clock, Timer } from './clock.js';

/** Runs a check every interval; reports each verdict with the number of failures in a row. */
export class HealthCheck {
  /** Failures in a row (0 after a pass). */
  failures = 0;
  /** False until the first check has answered: a host campaigns only after a pass. */
  checked = false;
  /** Why the last failing check failed. */
  lastFailure: string | undefined;
  private timer: Timer | undefined;
  private stopped = false;

  constructor(
    private readonly check: () => boolean | Promise<boolean>,
    private readonly intervalMs: number,
    private readonly clock: Clock,
    private readonly verdict: (failures: number, why: string | undefined) => void,
  ) {}

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.clock.setTimeout(() => void this.run(), ms);
  }

  private async run(): Promise<void> {
    let why: string | undefined;
    try {
      const ok = await new Promise<boolean>((resolve, reject) => {
        const t = this.clock.setTimeout(() => reject(new Error(`no answer within ${this.intervalMs} ms`)), this.intervalMs);
        Promise.resolve()
          .then(() => this.check())
          .then(
            (v) => {
              this.clock.clearTimeout(t);
              resolve(v === true);
            },
            (e: unknown) => {
              this.clock.clearTimeout(t);
              reject(e);
            },
          );
      });
      if (!ok) why = 'the check returned false';
    } catch (err) {
      why = `the check failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (this.stopped) return;
    this.checked = true;
    this.lastFailure = why;
    this.failures = why === undefined ? 0 : this.failures + 1;
    this.verdict(this.failures, why);
    this.schedule(this.intervalMs);
  }
}
