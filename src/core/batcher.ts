// Requests of one turn of the event loop, sent together: a fleet's worth of campaigns or
// key deletes costs a few round trips, not one per name.
import type { WriteWindow } from './write-window.js';

interface Pending<Req, Res> {
  req: Req;
  resolve(r: Res): void;
  reject(e: unknown): void;
}

/**
 * Requests per batch. A batch of campaigns is one txn with a compare and a put per request,
 * within etcd's --max-txn-ops (default 128) for each; a batch of deletes (and a campaign batch
 * sent again in the nested form) is one sub-txn per request. --max-txn-ops bounds the outer txn,
 * and each sub-txn gets what the outer one left over (128 − 100 = 28 ≥ our 2 ops); at
 * 127 sub-txns etcd answers "too many operations in txn request".
 */
export const BATCH = 100;
/** Batches in flight at once (each batcher; the host's write window may allow fewer). */
const PARALLEL = 8;

export interface TickBatcherOptions<Req> {
  /** Sends the requests of a turn by this rank, lowest first (a stable sort), instead of the order they came in. */
  rank?: (req: Req) => number;
  /** Shared by a host's batchers: how many batches etcd gets at once (write-window.ts). */
  window?: WriteWindow;
  /** This batcher's batches go at once, whatever the window holds (they still count in it). */
  urgent?: boolean;
  /**
   * A request's key: a batch never holds one key twice (etcd refuses such a txn) — a repeat
   * starts the next batch, which waits until no key of it is in flight (batches without a
   * common key go past it).
   */
  keyOf?: (req: Req) => string;
}

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

  private readonly keysInFlight = new Set<string>();
  /** Batches wait while this is set (holdUntil). */
  private held: Promise<unknown> | undefined;
  private readonly keyOf: ((req: Req) => string) | undefined;
  private readonly window: WriteWindow | undefined;
  private readonly rank: ((req: Req) => number) | undefined;
  private readonly urgent: boolean;

  constructor(
    private readonly send: (batch: readonly Req[]) => Promise<readonly (Res | Error)[]>,
    options: TickBatcherOptions<Req> = {},
  ) {
    this.keyOf = options.keyOf;
    this.window = options.window;
    this.rank = options.rank;
    this.urgent = options.urgent ?? false;
  }

  add(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Nothing is sent until `p` settles: a joining host's campaigns wait until its host record
   * says it is joining (campaign.ts), so that nobody balances on the part that landed first.
   */
  holdUntil(p: Promise<unknown>): void {
    const held = p.then(
      () => undefined,
      () => undefined,
    );
    this.held = held;
    void held.then(() => {
      if (this.held !== held) return;
      this.held = undefined;
      this.pump();
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    if (this.rank) {
      const rank = this.rank;
      const ranked = all.map((p, i) => ({ p, r: rank(p.req), i }));
      ranked.sort((a, b) => a.r - b.r || a.i - b.i);
      for (let i = 0; i < ranked.length; i++) all[i] = ranked[i]!.p;
    }
    const keyOf = this.keyOf;
    if (keyOf === undefined) {
      for (let i = 0; i < all.length; i += BATCH) this.ready.push(all.slice(i, i + BATCH));
    } else {
      let batch: Pending<Req, Res>[] = [];
      let keys = new Set<string>();
      for (const p of all) {
        const k = keyOf(p.req);
        if (batch.length === BATCH || keys.has(k)) {
          this.ready.push(batch);
          batch = [];
          keys = new Set();
        }
        batch.push(p);
        keys.add(k);
      }
      if (batch.length > 0) this.ready.push(batch);
    }
    this.pump();
  }

  /**
   * Sends ready batches while the bounds allow, oldest first. A batch with a key in flight
   * waits — writes of one key land in the order they were made — and so does every later
   * batch that shares a key with one waiting; the others go past it (a control record in
   * flight must not hold up every other name's writes behind it for a round trip).
   */
  private pump(): void {
    if (this.held) return;
    const keyOf = this.keyOf;
    /** Keys of the batches passed over in this scan: a later write of one waits too. */
    let held: Set<string> | undefined;
    for (let i = 0; i < this.ready.length && this.inFlight < PARALLEL;) {
      const batch = this.ready[i]!;
      const keys = keyOf === undefined ? [] : batch.map((p) => keyOf(p.req));
      if (keys.some((k) => this.keysInFlight.has(k) || held?.has(k))) {
        held ??= new Set();
        for (const k of keys) held.add(k);
        i++;
        continue;
      }
      const slot = this.window?.take(this.wake, batch.length, this.urgent);
      if (this.window && !slot) return; // the window is full: pumped again when a slot frees
      this.ready.splice(i, 1);
      for (const k of keys) this.keysInFlight.add(k);
      this.inFlight++;
      void this.deliver(batch).then((ok) => {
        slot?.done(ok);
        for (const k of keys) this.keysInFlight.delete(k);
        this.inFlight--;
        this.pump();
      });
    }
  }

  private readonly wake = (): void => this.pump();

  /** Hands the batch to `send`; true when it was answered (a rejection fails the whole batch). */
  private async deliver(batch: Pending<Req, Res>[]): Promise<boolean> {
    try {
      const results = await this.send(batch.map((p) => p.req));
      batch.forEach((p, i) => {
        const r = results[i];
        if (r === undefined) p.reject(new Error('a batched request returned no result'));
        else if (r instanceof Error) p.reject(r);
        else p.resolve(r);
      });
      return true;
    } catch (err) {
      for (const p of batch) p.reject(err);
      return false;
    }
  }
}
