// Health-gated candidacy (Consul ties sessions to health checks; nothing does it for etcd
// elections): a singleton registered with `healthy` is a candidate only while its check
// passes. This file owns the check — when it runs, what counts as a failure, how many in a
// row — and tells the singleton's state machine (singleton.ts) what changed; what a
// change does to the name (leave the queue, hand over) is decided there.
import type { Clock, Timer } from './clock.js';

/** Options of `locker(name, fn, options)`. */
export interface SingletonOptions {
  /**
   * Health check: while it fails, this host does not campaign for the name (it leaves the
   * queue); a leader whose check fails twice in a row hands over gracefully to a queued
   * standby, and keeps leading (reporting it) while nobody else queues. A check that throws,
   * rejects or takes longer than `checkInterval` fails.
   */
  healthy?: () => boolean | Promise<boolean>;
  /** Milliseconds between checks (default 5000, at least 100). */
  checkInterval?: number;
}

const KEYS = new Set(['healthy', 'checkInterval']);

/** Validates `options` of `locker(name, fn, options)`; errors name the key and the value. */
export function resolveSingletonOptions(
  name: string,
  options: unknown,
): { healthy?: () => boolean | Promise<boolean>; checkIntervalMs: number } {
  if (options === undefined) return { checkIntervalMs: 5000 };
  if (options === null || typeof options !== 'object')
    throw new TypeError(`options of '${name}' must be an object, got ${options === null ? 'null' : typeof options}`);
  for (const k of Object.keys(options)) {
    if (!KEYS.has(k)) throw new TypeError(`unknown option '${k}' for '${name}' (known: ${[...KEYS].join(', ')})`);
  }
  const o = options as SingletonOptions;
  if (o.healthy !== undefined && typeof o.healthy !== 'function')
    throw new TypeError(`options.healthy of '${name}' must be a function, got ${typeof o.healthy}`);
  const interval = o.checkInterval ?? 5000;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 100) {
    throw new TypeError(`options.checkInterval of '${name}' must be a number of milliseconds ≥ 100, got ${String(interval)}`);
  }
  return { ...(o.healthy ? { healthy: o.healthy } : {}), checkIntervalMs: interval };
}

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
