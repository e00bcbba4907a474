// What this host has seen of one etcd member through its own calls: round trips, errors,
// calls still waiting, and whether etcd3's circuit breaker for the member is open. A gray
// failure (a member cut off from its peers, frozen, slow) shows here first — as calls that
// wait, fail or move elsewhere — long before anything is lost. Recorded as calls settle,
// read by `locker.health()` without any round trip to etcd.
import { performance } from 'node:perf_hooks';

/**
 * State of etcd3's circuit breaker for one member (cockatiel's CircuitState): `open` and
 * `isolated` refuse calls without sending them; `half-open` lets one trial call through.
 */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** cockatiel's CircuitState values, in enum order. */
const STATES: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];

/**
 * The breaker state of an etcd3 host policy, when it is a cockatiel circuit breaker (it
 * has a numeric `state`); undefined for any other policy (a user's `faultHandling.host`).
 */
export function breakerState(policy: unknown): BreakerState | undefined {
  const state = typeof policy === 'object' && policy !== null ? (policy as { state?: unknown }).state : undefined;
  return typeof state === 'number' ? STATES[state] : undefined;
}

/** One member's figures as `health()` reports them; times are milliseconds. */
export interface MemberCalls {
  /** Calls sent to this member (the election core's, the watch's freshness checks, member polls). */
  calls: number;
  /** Calls that failed (an error or no answer within their deadline). */
  failures: number;
  /** Failures since the last success: a member that stopped answering counts up here. */
  failuresInARow: number;
  /** Calls sent and not yet settled. */
  pending: number;
  /** How long the oldest pending call has been waiting; undefined when none is. */
  oldestPendingMs: number | undefined;
  /** Round trip of the last call that succeeded. */
  lastRttMs: number | undefined;
  /** Milliseconds since the last call that succeeded. */
  lastOkAgoMs: number | undefined;
  /** Message of the last failed call. */
  lastError: string | undefined;
  /** Milliseconds since the last failed call. */
  lastErrorAgoMs: number | undefined;
}

/** Records the calls to one member. */
export class MemberStats {
  private calls = 0;
  private failures = 0;
  private failuresInARow = 0;
  /** Start times of calls not settled yet. */
  private readonly pending = new Set<{ at: number }>();
  private lastOkAt: number | undefined;
  private lastRttMs: number | undefined;
  private lastError: string | undefined;
  private lastErrorAt: number | undefined;
  /** When a keepalive of this host was last acknowledged by this member. */
  keepaliveAt: number | undefined;

  /** Records `call` (already started) as one call to this member; returns it unchanged. */
  track<T>(call: Promise<T>): Promise<T> {
    const started = { at: performance.now() };
    this.calls++;
    this.pending.add(started);
    call.then(
      () => {
        this.pending.delete(started);
        const now = performance.now();
        this.lastOkAt = now;
        this.lastRttMs = Math.round(now - started.at);
        this.failuresInARow = 0;
      },
      (err: unknown) => {
        this.pending.delete(started);
        this.failures++;
        this.failuresInARow++;
        this.lastErrorAt = performance.now();
        this.lastError = messageOf(err);
      },
    );
    return call;
  }

  /** Marks an acknowledged keepalive on this member. */
  keptAlive(): void {
    this.keepaliveAt = performance.now();
  }

  snapshot(): MemberCalls {
    const now = performance.now();
    let oldest: number | undefined;
    for (const p of this.pending) if (oldest === undefined || p.at < oldest) oldest = p.at;
    const ago = (t: number | undefined): number | undefined => (t === undefined ? undefined : Math.round(now - t));
    return {
      calls: this.calls,
      failures: this.failures,
      failuresInARow: this.failuresInARow,
      pending: this.pending.size,
      oldestPendingMs: ago(oldest),
      lastRttMs: this.lastRttMs,
      lastOkAgoMs: ago(this.lastOkAt),
      lastError: this.lastError,
      lastErrorAgoMs: ago(this.lastErrorAt),
    };
  }
}

/** An error's message without grpc-js's empty "Resolution note:" tail; one line. */
export function messageOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}
