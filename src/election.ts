import type { Etcd3 } from 'etcd3';
import type { CampaignBatcher } from './campaign.js';
import { electionKey, namePrefix } from './keys.js';
import { Queue, headOf, type Candidate, type KeyEvent } from './queue.js';
import type { Session } from './session.js';

export interface ElectionContext {
  readonly client: Etcd3;
  readonly batcher: CampaignBatcher;
  readonly prefix: string;
  readonly nodeId: string;
  /** Deadline for one etcd request, in ms. */
  requestTimeoutMs(): number;
}

export interface ElectionListener {
  /** Our key is the oldest of the name and the session may act: we lead. */
  elected(key: string, token: bigint, session: Session): void;
  /** Our key is gone (deleted by an operator, `failover`, or expiry). */
  keyLost(wasLeading: boolean): void;
  /** The campaign write failed; the caller decides when to try again. */
  campaignFailed(err: unknown): void;
  /** A try-lock found the name taken; `holder` is the current leader's candidate entry. */
  taken(holder: Candidate | undefined): void;
}

type State = 'idle' | 'campaigning' | 'queued' | 'leading';

/**
 * One name's side of etcd's election protocol for one session: write our key, follow
 * the queue, and say when our key becomes the oldest. It never touches leases and
 * never runs user code: the Session decides liveness, the Singleton what to run.
 */
export class Election {
  readonly queue = new Queue();
  private state: State = 'idle';
  private session: Session | undefined;
  private myKey: string | undefined;
  private myRev: bigint | undefined;
  private seq = 0;
  private inflight: Promise<void> | undefined;

  constructor(
    readonly name: string,
    private readonly ctx: ElectionContext,
    private readonly listener: ElectionListener,
  ) {}

  get key(): string | undefined {
    return this.myKey;
  }

  get token(): bigint | undefined {
    return this.myRev;
  }

  get campaigning(): boolean {
    return this.state !== 'idle';
  }

  /** Queue position of our key (0 = leading), or undefined when not queued. */
  position(): number | undefined {
    if (!this.myKey || (this.state !== 'queued' && this.state !== 'leading')) return undefined;
    const i = this.queue.ordered().findIndex((c) => c.key === this.myKey);
    return i < 0 ? undefined : i;
  }

  /** Joins the back of the queue with `session`'s key; with `tryOnly`, only if the queue is empty. */
  campaign(session: Session, tryOnly = false): void {
    const seq = ++this.seq;
    this.state = 'campaigning';
    this.session = session;
    this.myKey = electionKey(this.ctx.prefix, this.name, session.leaseId);
    this.myRev = undefined;
    const key = this.myKey;
    this.inflight = this.ctx.batcher
      .campaign({ namePrefix: namePrefix(this.ctx.prefix, this.name), key, value: this.ctx.nodeId, leaseId: session.leaseId, tryOnly })
      .then(
        (res) => {
          if (seq !== this.seq) return;
          if (res.createRevision === undefined) {
            this.state = 'idle';
            this.myKey = undefined;
            this.listener.taken(headOf(res.candidates));
            return;
          }
          this.myRev = res.createRevision;
          this.state = 'queued';
          this.queue.reset(res.candidates, res.revision);
          this.evaluate();
        },
        (err: unknown) => {
          if (seq !== this.seq) return;
          this.state = 'idle';
          this.listener.campaignFailed(err);
        },
      );
  }

  /** Forgets the campaign without touching etcd (the session is gone, and its keys with it). */
  abandon(): void {
    this.seq++;
    this.state = 'idle';
    this.session = undefined;
  }

  /** Watch events for this name. */
  apply(events: KeyEvent[]): void {
    let changed = false;
    for (const ev of events) changed = this.queue.apply(ev) || changed;
    if (changed) this.evaluate();
  }

  /** The watch was recreated: install a fresh snapshot of this name's queue. */
  resync(candidates: Candidate[], revision: bigint): void {
    this.queue.invalidate();
    this.queue.reset(candidates, revision);
    this.evaluate();
  }

  /**
   * Deletes our key, guarded by its create revision so a newer campaign's key is never
   * touched. Waits for a campaign write still in flight, whose key would otherwise stay.
   */
  async resign(): Promise<void> {
    const inflight = this.inflight;
    this.seq++;
    this.state = 'idle';
    if (inflight) await inflight;
    const key = this.myKey;
    const rev = this.myRev;
    const session = this.session;
    this.session = undefined;
    if (!key || !session || session.signal.aborted) return;
    // Without a known create revision (the campaign's answer was lost), the lease in the
    // key name is the guard: only this session can have written that key.
    const guard =
      rev !== undefined
        ? { key: Buffer.from(key), target: 'Create' as const, result: 'Equal' as const, create_revision: rev.toString() }
        : { key: Buffer.from(key), target: 'Lease' as const, result: 'Equal' as const, lease: session.leaseId };
    await this.ctx.client.kv.txn(
      { compare: [guard], success: [{ request_delete_range: { key: Buffer.from(key) } }] },
      { deadline: new Date(Date.now() + this.ctx.requestTimeoutMs()) },
    );
  }

  private evaluate(): void {
    if ((this.state !== 'queued' && this.state !== 'leading') || !this.queue.initialized) return;
    const key = this.myKey!;
    const mine = this.queue.get(key);
    if (!mine || mine.createRevision !== this.myRev) {
      const wasLeading = this.state === 'leading';
      this.state = 'idle';
      this.listener.keyLost(wasLeading);
      return;
    }
    const head = this.queue.head();
    if (this.state === 'queued' && head?.key === key) {
      const session = this.session!;
      if (!session.alive()) {
        // Past the step-down deadline (e.g. the process was paused): never start on a
        // lease etcd may already have expired. The session declares itself lost.
        queueMicrotask(() => session.checkDeadline());
        return;
      }
      this.state = 'leading';
      this.listener.elected(key, this.myRev!, session);
    }
  }
}
