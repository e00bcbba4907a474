// Requests of one turn of the event loop, sent together: a fleet's worth of campaigns or
// key deletes costs a few round trips, not one per name.

interface Pending<Req, Res> {
  req: Req;
  resolve(r: Res): void;
  reject(e: unknown): void;
}

/**
 * Sub-transactions per batch. etcd's --max-txn-ops (default 128) bounds the outer txn,
 * and each sub-txn gets what the outer one left over (128 − 100 = 28 ≥ our 2 ops); at
 * 127 sub-txns etcd answers "too many operations in txn request".
 */
export const BATCH = 100;
/** Batches in flight at once. */
const PARALLEL = 8;

/**
 * Collects the requests made in one turn of the event loop and hands them to `send` in
 * batches of at most BATCH, at most PARALLEL batches in flight. `send` answers one result
 * (or Error) per request, in order; a rejection fails the whole batch.
 */
export class TickBatcher<Req, Res> {
  private pending: Pending<Req, Res>[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly ready: Pending<Req, Res>[][] = [];

  constructor(private readonly send: (batch: readonly Req[]) => Promise<readonly (Res | Error)[]>) {}

  add(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += BATCH) this.ready.push(all.slice(i, i + BATCH));
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < PARALLEL && this.ready.length > 0) {
      const batch = this.ready.shift()!;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async deliver(batch: Pending<Req, Res>[]): Promise<void> {
    try {
      const results = await this.send(batch.map((p) => p.req));
      batch.forEach((p, i) => {
        const r = results[i];
        if (r === undefined) p.reject(new Error('a batched request returned no result'));
        else if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      });
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
