// The drain of a host: its drain order (`<prefix>/drain/<id>`, no lease: it holds until
// undrain) and the wait until the host leads nothing an eligible candidate could take. The
// leaderships themselves leave by the mover's planned moves (placement.ts: planMoves).
import { untilAborted } from '../core/abort.js';
import { wallTime, type Clock } from '../core/clock.js';
import { EtcdUnavailableError } from '../core/errors.js';
import { drainKey } from '../etcd/keys.js';
import type { ControlStore } from '../etcd/store.js';
import type { PrefixView } from '../core/view.js';

/** What drains need of the mover's host (MoverHost). @internal */
export interface DrainHost {
  readonly view: PrefixView;
  readonly store: ControlStore;
  readonly prefix: string;
  readonly clock: Clock;
  requestTimeoutMs(): number;
}

/** How a caller follows a drain (the public DrainOptions is one). @internal */
export interface DrainWatch {
  /** Called for each leadership that moved away: name and the node id leading it now. */
  onMove?: (name: string, to: string | undefined) => void;
  signal?: AbortSignal;
}

/** Drain orders, and the drains waited for; the mover wakes them when its view or control records change. @internal */
export class Drains {
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly host: DrainHost,
    /** True while the control records hold a drain order for the node id. */
    private readonly isDraining: (nodeId: string) => boolean,
  ) {}

  /** Writes a drain order for `nodeId` (no lease: it holds until undrain). */
  async order(nodeId: string, on: boolean): Promise<void> {
    const key = drainKey(this.host.prefix, nodeId);
    const timeoutMs = this.host.requestTimeoutMs();
    try {
      if (on)
        await this.host.store.put(key, JSON.stringify({ at: new Date(wallTime(this.host.clock)).toISOString() }), undefined, timeoutMs);
      else await this.host.store.remove(key, undefined, timeoutMs);
    } catch (err) {
      throw new EtcdUnavailableError(`${on ? 'write' : 'delete'} of the drain order of '${nodeId}'`, err);
    }
  }

  /**
   * Resolves once `nodeId` is draining in the view and leads no name that an eligible
   * candidate queues for. `onMove` hears of each leadership that left it.
   */
  async drained(nodeId: string, options: DrainWatch, begin: () => Promise<void> = async () => {}): Promise<void> {
    const view = this.host.view;
    view.start();
    await view.ready();
    // What the host leads before the drain order is written (`begin`): a hand-over that
    // reaches this view before the order does still counts as moved.
    const led = new Set<string>();
    for (const name of view.names()) if (view.queue(name)[0]?.value === nodeId) led.add(name);
    await begin();
    const check = (): boolean => {
      if (!view.current || !this.isDraining(nodeId)) return false;
      let done = true;
      const now = new Set<string>();
      for (const name of view.names()) {
        const q = view.queue(name);
        if (q[0]?.value !== nodeId) continue;
        now.add(name);
        if (q.some((c) => c.value !== nodeId && !this.isDraining(c.value))) done = false;
      }
      for (const name of led) if (!now.has(name)) options.onMove?.(name, view.head(name)?.value);
      led.clear();
      for (const n of now) led.add(n);
      return done;
    };
    await untilAborted(
      () =>
        new Promise<void>((resolve) => {
          const w = (): void => {
            if (this.closed || check()) {
              this.waiters.delete(w);
              resolve();
            }
          };
          this.waiters.add(w);
          w();
        }),
      options.signal,
      `drain of '${nodeId}'`,
    );
  }

  /** The view or the control records changed: every waiting drain checks again. */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** On close: every waiting drain resolves. */
  close(): void {
    this.closed = true;
    this.wake();
  }
}
