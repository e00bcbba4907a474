// Control-record writes of one turn of the event loop, sent together: a wave of moves writes
// a move or standby request per name and deletes it once done — one transaction per
// hundred, not a round trip each (issue #24: nothing per name on the balancing path).
import { TickBatcher } from '../core/batcher.js';
import type { WriteWindow } from '../core/write-window.js';
import type { ControlStore, ControlWrite } from '../etcd/store.js';

/**
 * The writes the mover and its bookkeeping make: puts and deletes of control records — a
 * ControlStore's, or batched by ControlWrites. @internal
 */
export interface ControlWriter {
  put(key: string, value: string, leaseId: string | undefined, timeoutMs: number): Promise<unknown>;
  remove(key: string, ifValue: string | undefined, timeoutMs: number): Promise<void>;
}

/**
 * Batches puts and guarded deletes of control records (store.writeControl). Writes of one
 * key land in the order they were made (a request's delete must not overtake its put, nor
 * a new put the old delete): a batch waits while one of its keys is in flight. A delete
 * without a guard is sent as it is. @internal
 */
export class ControlWrites implements ControlWriter {
  private readonly batcher: TickBatcher<ControlWrite & { timeoutMs: number }, true>;

  constructor(
    private readonly store: ControlStore,
    window?: WriteWindow,
  ) {
    this.batcher = new TickBatcher((batch) => this.send(batch), { keyOf: (w) => w.key, ...(window ? { window } : {}) });
  }

  put(key: string, value: string, leaseId: string | undefined, timeoutMs: number): Promise<void> {
    return this.batcher.add({ key, put: value, leaseId, timeoutMs }).then(() => undefined);
  }

  remove(key: string, ifValue: string | undefined, timeoutMs: number): Promise<void> {
    if (ifValue === undefined) return this.store.remove(key, undefined, timeoutMs);
    return this.batcher.add({ key, removeIf: ifValue, timeoutMs }).then(() => undefined);
  }

  private async send(batch: readonly (ControlWrite & { timeoutMs: number })[]): Promise<(true | Error)[]> {
    const timeoutMs = Math.max(...batch.map((w) => w.timeoutMs));
    const strip = ({ timeoutMs: _, ...w }: ControlWrite & { timeoutMs: number }): ControlWrite => w;
    try {
      await this.store.writeControl(batch.map(strip), timeoutMs);
      return batch.map(() => true);
    } catch (err) {
      // A put under a lease that just ended fails the whole transaction: the deletes
      // riding with it are still due (their records would wait for a sweep).
      const removes = batch.filter((w) => 'removeIf' in w);
      if (removes.length === 0 || removes.length === batch.length || !/lease not found/i.test(String((err as Error)?.message))) throw err;
      await this.store.writeControl(removes.map(strip), timeoutMs);
      const failed = err instanceof Error ? err : new Error(String(err));
      return batch.map((w) => ('removeIf' in w ? true : failed));
    }
  }
}
