// The requests a host has under way — moves of its leaderships, promotions of another first
// standby — each with its timeout and the request record it wrote, so that whichever way
// a request ends (done, failed, timed out) its record is deleted and the mover plans again.
import { deleteIfUnchanged } from './handover-request.js';
import type { Clock, Timer } from '../core/clock.js';
import type { ControlWriter } from './control-writes.js';

/** What the bookkeeping needs of the mover's host (MoverHost). @internal */
export interface PendingHost {
  /** Where the request records are deleted (batched: control-writes.ts). */
  readonly writes: ControlWriter;
  readonly prefix: string;
  readonly clock: Clock;
  readonly ttl: number;
  requestTimeoutMs(): number;
}

/**
 * Requests this host started and has not seen done yet — moves of its leaderships, or
 * promotions of another first standby — by name. Each ends when the view shows it done,
 * when it failed, or at its timeout; ending deletes the request record it wrote (if still
 * ours) and plans again. @internal
 */
export class Pending<T extends object> {
  private readonly items = new Map<string, T & { written: string | undefined; landed?: Promise<unknown>; readonly timer: Timer }>();

  constructor(
    private readonly host: PendingHost,
    /** The request record's key for a name (moveKey or nextKey). */
    private readonly keyOf: (prefix: string, name: string) => string,
    private readonly ended: () => void,
  ) {}

  get size(): number {
    return this.items.size;
  }

  get(name: string): (T & { written: string | undefined; landed?: Promise<unknown> }) | undefined {
    return this.items.get(name);
  }

  names(): IterableIterator<string> {
    return this.items.keys();
  }

  entries(): IterableIterator<[string, T & { written: string | undefined }]> {
    return this.items.entries();
  }

  begin(name: string, data: T): T & { written: string | undefined; landed?: Promise<unknown> } {
    const old = this.items.get(name);
    if (old) this.host.clock.clearTimeout(old.timer); // (the planners skip names in flight: not expected)
    const timer = this.host.clock.setTimeout(() => this.end(name), Math.max(5_000, 3 * this.host.ttl * 1000));
    const item = { ...data, written: undefined, timer };
    this.items.set(name, item);
    return item;
  }

  end(name: string): void {
    const item = this.items.get(name);
    if (!item) return;
    this.items.delete(name);
    this.host.clock.clearTimeout(item.timer);
    const { written, landed } = item;
    if (written !== undefined) {
      // After the write has landed (or failed): a delete that overtook it would leave the
      // request behind, acted on for as long as its leader leads.
      const key = this.keyOf(this.host.prefix, name);
      // If that delete goes unanswered, a pass after it sweeps the record (mover.ts).
      void (landed ?? Promise.resolve())
        .finally(() => deleteIfUnchanged(this.host.writes, key, written, this.host.requestTimeoutMs()))
        .then((done) => done || this.ended());
    }
    this.ended();
  }

  /** On close: timers off, records left to their lease. */
  clear(): void {
    for (const item of this.items.values()) this.host.clock.clearTimeout(item.timer);
    this.items.clear();
  }
}
