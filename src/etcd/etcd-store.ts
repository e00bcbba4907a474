// The Store of the election core on a real etcd, through the etcd3 client.
import type { Etcd3, IKeyValue, ILeaseKeepAliveResponse, IRequestOp, ITxnRequest, ITxnResponse, IRangeResponse, Watcher } from 'etcd3';
import { prefixEnd } from './keys.js';
import type { WatchMoveReason } from '../core/diagnostics.js';
import type { Member, Members } from './members.js';
import type { Candidate } from '../core/queue.js';
import { byCreate, candidateOf } from '../core/queue.js';
import { deadline, nameRange, readLeader, readPage, readPrefix } from './reads.js';
import type {
  CampaignRequest,
  CampaignResult,
  ControlStore,
  ControlWrite,
  FencedPut,
  KeyRevision,
  KeyWatchHandle,
  PrefixSnapshot,
  PrefixWatchHandle,
  ResignRequest,
  StoredKey,
  WatchHandlers,
} from './store.js';
import { PrefixWatch } from './watch.js';

/**
 * Every call goes to the member that answered last and is hedged to the next member if
 * it has not answered within a fraction of its deadline (members.ts). All of them are
 * safe to send twice: put-if-absent of our own key, a guarded delete, a revoke, reads,
 * and the lease grant, whose surplus lease is revoked (grant()).
 */
export class EtcdStore implements ControlStore {
  /** `freshnessMs`: how often the prefix watch checks that its member keeps up (watch.ts); 0 never. */
  constructor(
    private readonly members: Members,
    private readonly freshnessMs = 0,
    /** Told when the prefix watch moves to another member (the locker publishes it on `locked:watch`). */
    private readonly watchMoved?: (from: Member, to: Member, reason: WatchMoveReason, after: bigint) => void,
    /** For watches of one key (run-once records): a client over every member (etcd3 moves the watch itself). */
    private readonly keyWatchClient?: Etcd3,
  ) {}

  /** When a call has not answered, the next member gets it too. */
  private static hedgeMs(timeoutMs: number): number {
    return Math.max(100, timeoutMs / 3);
  }

  /**
   * Hedged like every call: a grant that hangs on a frozen member must not keep a host
   * that lost its session from getting a new one from a healthy member. Only one lease
   * is used: a surplus grant — a second member answering too, or any answer after the
   * call gave up — is revoked at once rather than left to expire.
   */
  async grant(ttl: number, timeoutMs: number): Promise<string> {
    let taken = false;
    try {
      return await this.members.hedged(
        async (client) => {
          const res = await client.leaseClient.leaseGrant({ TTL: ttl, ID: 0 }, deadline(timeoutMs));
          if (res.error) throw new Error(`etcd refused the lease grant: ${res.error}`);
          if (taken) {
            client.leaseClient.leaseRevoke({ ID: res.ID }, deadline(timeoutMs)).catch(() => undefined); // expires by itself otherwise
            throw new Error(`surplus lease ${res.ID} revoked`);
          }
          taken = true;
          return res.ID;
        },
        EtcdStore.hedgeMs(timeoutMs),
        timeoutMs,
      );
    } finally {
      taken = true;
    }
  }

  /**
   * On the member's client without etcd3's circuit breaker (the probe client): a breaker
   * opened by other calls' deadlines under load (three in a row shut the member out for a
   * second) must not refuse the keepalive that keeps every name of this host led — with one
   * member, or all of them busy, that alone lost whole sessions. Hedging moves the
   * keepalive off a member that does not answer.
   */
  keepAlive(leaseId: string, timeoutMs: number, _attempt = 0, hedgeMs = EtcdStore.hedgeMs(timeoutMs)): Promise<number> {
    return this.members.hedged(
      async (_client, m) => {
        const ttl = Number((await keepaliveOnce(m.probe(), leaseId, timeoutMs)).TTL);
        m.stats.keptAlive(); // health(): which member keeps the lease alive
        return ttl;
      },
      hedgeMs,
      timeoutMs,
    );
  }

  revoke(leaseId: string, timeoutMs: number): Promise<void> {
    return this.members.hedged(
      async (client) => void (await client.leaseClient.leaseRevoke({ ID: leaseId }, deadline(timeoutMs))),
      EtcdStore.hedgeMs(timeoutMs),
      timeoutMs,
    );
  }

  campaign(requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
    return this.members.hedged((client) => campaignOn(client, requests, timeoutMs), EtcdStore.hedgeMs(timeoutMs), timeoutMs);
  }

  resign(requests: readonly ResignRequest[], timeoutMs: number): Promise<void> {
    const held = (x: KeyRevision) =>
      ({ key: Buffer.from(x.key), target: 'Create', result: 'Equal', create_revision: x.createRevision.toString() }) as const;
    const one = (r: ResignRequest): ITxnRequest => {
      const k = Buffer.from(r.key);
      const compare =
        'createRevision' in r.guard
          ? held({ key: r.key, createRevision: r.guard.createRevision })
          : { key: k, target: 'Lease' as const, result: 'Equal' as const, lease: r.guard.leaseId };
      const plain: ITxnRequest = { compare: [compare], success: [{ request_delete_range: { key: k } }] };
      if (!r.past || !('createRevision' in r.guard)) return plain;
      // All or nothing: ours and the standbys ahead of the target, or (else branch) ours
      // alone — for a promotion only while the leader's key holds (HandOverPast.leader).
      const leader = r.past.leader ? [held(r.past.leader)] : [];
      const alone: ITxnRequest = { compare: [compare, ...leader], success: plain.success };
      return {
        compare: [compare, ...leader, held(r.past.target), ...r.past.keys.map(held)],
        success: [{ request_delete_range: { key: k } }, ...r.past.keys.map((x) => ({ request_delete_range: { key: Buffer.from(x.key) } }))],
        failure: [{ request_txn: alone }],
      };
    };
    // Several keys: one sub-txn each inside one txn (each keeps its own guard), one revision.
    // etcd refuses a txn naming a key twice: a repeated key is deleted once.
    const unique = [...new Map(requests.map((r) => [r.key, r])).values()];
    const txn: ITxnRequest = unique.length === 1 ? one(unique[0]!) : { success: unique.map((r) => ({ request_txn: one(r) })) };
    return this.members.hedged(
      async (client) => void (await client.kv.txn(txn, deadline(timeoutMs))),
      EtcdStore.hedgeMs(timeoutMs),
      timeoutMs,
    );
  }

  readPrefix(prefix: string, timeoutMs: number): Promise<PrefixSnapshot> {
    // A page at a time, each hedged: a member that has not applied the pinned revision yet
    // refuses the page ("future revision") and the next member serves it.
    const hedgeMs = EtcdStore.hedgeMs(timeoutMs);
    return readPrefix((page) => this.members.hedged((client) => readPage(client, page, timeoutMs), hedgeMs, timeoutMs), prefix);
  }

  watchPrefix(prefix: string, handlers: WatchHandlers): PrefixWatchHandle {
    return new PrefixWatch(this.members, prefix, handlers, 2_000, this.freshnessMs, this.watchMoved);
  }

  // ——— ControlStore: control records, reads of one name, run-once records ———

  private hedged<T>(call: (client: Etcd3) => Promise<T>, timeoutMs: number): Promise<T> {
    return this.members.hedged(call, EtcdStore.hedgeMs(timeoutMs), timeoutMs);
  }

  put(key: string, value: string, leaseId: string | undefined, timeoutMs: number): Promise<bigint> {
    return this.hedged(async (client) => {
      const res = await client.kv.put(
        { key: Buffer.from(key), value: Buffer.from(value), ...(leaseId !== undefined ? { lease: leaseId } : {}) },
        deadline(timeoutMs),
      );
      return BigInt(res.header.revision);
    }, timeoutMs);
  }

  remove(key: string, ifValue: string | undefined, timeoutMs: number): Promise<void> {
    const k = Buffer.from(key);
    if (ifValue === undefined)
      return this.hedged(async (client) => void (await client.kv.deleteRange({ key: k }, deadline(timeoutMs))), timeoutMs);
    return this.hedged(
      async (client) =>
        void (await client.kv.txn(
          {
            compare: [{ key: k, target: 'Value', result: 'Equal', value: Buffer.from(ifValue) }],
            success: [{ request_delete_range: { key: k } }],
          },
          deadline(timeoutMs),
        )),
      timeoutMs,
    );
  }

  writeControl(writes: readonly ControlWrite[], timeoutMs: number): Promise<void> {
    const op = (w: ControlWrite): IRequestOp => {
      const key = Buffer.from(w.key);
      if ('put' in w) return { request_put: { key, value: Buffer.from(w.put), ...(w.leaseId !== undefined ? { lease: w.leaseId } : {}) } };
      // A guarded delete is a sub-txn of its own: its guard must not decide the others.
      return {
        request_txn: {
          compare: [{ key, target: 'Value', result: 'Equal', value: Buffer.from(w.removeIf) }],
          success: [{ request_delete_range: { key } }],
        },
      };
    };
    return this.hedged(async (client) => void (await client.kv.txn({ success: writes.map(op) }, deadline(timeoutMs))), timeoutMs);
  }

  get(key: string, timeoutMs: number): Promise<StoredKey | undefined> {
    return this.hedged(async (client) => {
      const kv = (await client.kv.range({ key: Buffer.from(key) }, deadline(timeoutMs))).kvs[0];
      return kv
        ? { value: kv.value.toString(), createRevision: BigInt(kv.create_revision), modRevision: BigInt(kv.mod_revision) }
        : undefined;
    }, timeoutMs);
  }

  readQueue(namePrefix: string, timeoutMs: number, leaderOnly = false): Promise<Candidate[]> {
    return this.hedged(async (client) => {
      if (leaderOnly) {
        const head = await readLeader(client, namePrefix, timeoutMs);
        return head ? [head] : [];
      }
      const res = await client.kv.range(nameRange(namePrefix), deadline(timeoutMs));
      return res.kvs.map(candidateOf).sort(byCreate);
    }, timeoutMs);
  }

  depose(key: string, createRevision: bigint, namePrefix: string, timeoutMs: number): Promise<Candidate[]> {
    const k = Buffer.from(key);
    const range = nameRange(namePrefix);
    return this.hedged(async (client) => {
      const res = await client.kv.txn(
        {
          compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: createRevision.toString() }],
          success: [{ request_delete_range: { key: k } }, { request_range: range }],
          failure: [{ request_range: range }],
        },
        deadline(timeoutMs),
      );
      const read = res.responses[res.succeeded ? 1 : 0]?.response_range;
      return (read?.kvs ?? []).map(candidateOf).sort(byCreate);
    }, timeoutMs);
  }

  putFenced(w: FencedPut, timeoutMs: number): Promise<bigint | 'deposed' | 'conflict'> {
    const key = Buffer.from(w.key);
    const fence = Buffer.from(w.fence.key);
    return this.hedged(async (client) => {
      const res = await client.kv.txn(
        {
          compare: [
            { key: fence, target: 'Create', result: 'Equal', create_revision: w.fence.createRevision.toString() },
            { key, target: 'Mod', result: 'Equal', mod_revision: w.modRevision.toString() },
          ],
          success: [{ request_put: { key, value: Buffer.from(w.value), ...(w.leaseId !== undefined ? { lease: w.leaseId } : {}) } }],
          failure: [{ request_range: { key: fence } }],
        },
        deadline(timeoutMs),
      );
      if (res.succeeded) return BigInt(res.header.revision);
      const mine = res.responses[0]?.response_range?.kvs[0];
      return mine && BigInt(mine.create_revision) === w.fence.createRevision ? 'conflict' : 'deposed';
    }, timeoutMs);
  }

  watchKey(key: string, onPut: (value: string) => void): KeyWatchHandle {
    // Not hedged: a broken watch only costs speed.
    const client = this.keyWatchClient ?? this.members.current.client;
    let watcher: Watcher | undefined;
    let closed = false;
    const ready = client
      .watch()
      .key(key)
      .create()
      .then((w) => {
        if (closed) return void w.cancel().catch(() => {});
        watcher = w;
        w.on('put', (kv: IKeyValue) => onPut(kv.value.toString()));
        w.on('error', () => {});
      });
    return {
      ready,
      close: async () => {
        closed = true;
        await watcher?.cancel().catch(() => {});
      },
    };
  }
}

async function campaignOn(client: Etcd3, requests: readonly CampaignRequest[], timeoutMs: number): Promise<(CampaignResult | Error)[]> {
  if (requests.length === 1) {
    const r = requests[0]!;
    const res = await client.kv.txn(campaignTxn(r), deadline(timeoutMs));
    return [attempt(() => readResult(r, res, BigInt(res.header.revision)))];
  }
  if (requests.every((r) => !r.tryOnly)) {
    const flat = await client.kv.txn(flatCampaignTxn(requests), deadline(timeoutMs));
    if (flat.succeeded) {
      const revision = BigInt(flat.header.revision);
      return requests.map(() => ({ revision, candidates: [], createRevision: revision }));
    }
    // A key was there already (a retried write that had landed, etcd3 retries unary calls):
    // nothing was written; each name decides for itself in the nested form below.
  }
  const res = await client.kv.txn({ success: requests.map((r) => ({ request_txn: campaignTxn(r) })) }, deadline(timeoutMs));
  const revision = BigInt(res.header.revision);
  return requests.map((r, i) =>
    attempt(() => {
      const sub = res.responses[i]?.response_txn;
      if (!sub) throw new Error(`nested campaign txn returned no response for ${r.key}`);
      return readResult(r, sub, revision);
    }),
  );
}

/**
 * The campaign write of etcd's election protocol: put-if-absent makes a retried txn harmless
 * (etcd3 retries unary calls that may have succeeded). Created, the key's create revision is
 * the transaction's revision; already there (a retried write that had landed), the failure
 * branch reads it. The queue comes from the prefix watch (the view), not from here: a range of
 * the name in every campaign cost etcd two to three times as much as the put (8 clients ×
 * 2,000 names on 3 members: 1.3–2.0 s with it, 0.6–0.7 s without). A try-lock still reads
 * the name's keys in the same transaction — who holds it is its answer.
 */
export function campaignTxn(r: CampaignRequest): ITxnRequest {
  const key = Buffer.from(r.key);
  const put = campaignPut(r, key);
  if (!r.tryOnly) {
    return {
      compare: [absent(key)],
      success: [put],
      failure: [{ request_range: { key } }],
    };
  }
  // A compare over a range holds only if it holds for every key in it, and an empty
  // range compares as a missing key: `Create == 0` over the name = nobody campaigns.
  const range: IRequestOp = { request_range: { key: Buffer.from(r.namePrefix), range_end: prefixEnd(r.namePrefix) } };
  return {
    compare: [
      { key: Buffer.from(r.namePrefix), range_end: prefixEnd(r.namePrefix), target: 'Create', result: 'Equal', create_revision: 0 },
    ],
    success: [put, range],
    failure: [range],
  };
}

/**
 * A batch of campaigns as one put-if-absent: every key absent → every put, at one revision.
 * Half the messages of the nested form (a sub-txn, its compare and both branches per name)
 * and no sub-response per name to decode: at 100,000 names the host's own CPU is what bounds
 * how fast its campaigns go out. Each of compare and success holds at most BATCH (batcher.ts)
 * operations, within etcd's --max-txn-ops (128) for each.
 */
function flatCampaignTxn(requests: readonly CampaignRequest[]): ITxnRequest {
  const compare: NonNullable<ITxnRequest['compare']> = [];
  const success: IRequestOp[] = [];
  for (const r of requests) {
    const key = Buffer.from(r.key);
    compare.push(absent(key));
    success.push(campaignPut(r, key));
  }
  return { compare, success };
}

/** The campaign's key does not exist (create revision 0). */
const absent = (key: Buffer): NonNullable<ITxnRequest['compare']>[number] => ({
  key,
  target: 'Create',
  result: 'Equal',
  create_revision: 0,
});

/** The campaign's write: its key under the session's lease, the node id as value. */
const campaignPut = (r: CampaignRequest, key: Buffer): IRequestOp => ({
  request_put: { key, value: Buffer.from(r.value), lease: r.leaseId },
});

function readResult(r: CampaignRequest, res: Pick<ITxnResponse, 'succeeded' | 'responses'>, revision: bigint): CampaignResult {
  if (!r.tryOnly) {
    if (res.succeeded) return { revision, candidates: [], createRevision: revision };
    const kv = res.responses[0]?.response_range?.kvs[0];
    if (!kv) throw new Error(`campaign for ${r.key} found its key neither absent nor present`);
    return { revision, candidates: [], createRevision: BigInt(kv.create_revision) };
  }
  const range: IRangeResponse | undefined = res.responses[res.succeeded ? 1 : 0]?.response_range;
  const candidates: Candidate[] = (range?.kvs ?? []).map((kv) => {
    const key = kv.key.toString();
    const value = kv.value.toString();
    // Share the strings the campaign already holds instead of a second copy per name.
    return key === r.key && value === r.value
      ? { key: r.key, value: r.value, createRevision: BigInt(kv.create_revision) }
      : { key, value, createRevision: BigInt(kv.create_revision) };
  });
  return { revision, candidates, createRevision: candidates.find((c) => c.key === r.key)?.createRevision };
}

function attempt<T>(fn: () => T): T | Error {
  try {
    return fn();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * One keepalive on a stream of its own: the answer belongs to exactly this request, so
 * its send time is known, and a stream stuck on a dead connection is abandoned with it.
 * The stream is half-closed before it is cancelled, which etcd3 does not count against
 * the member (hedging, not its breaker, moves us off a sick member).
 */
async function keepaliveOnce(client: Etcd3, leaseId: string, timeoutMs: number): Promise<ILeaseKeepAliveResponse> {
  const stream = await client.leaseClient.leaseKeepAlive();
  return new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`keepalive not answered within ${timeoutMs} ms`)), timeoutMs);
    let done = false;
    const finish = (err: unknown, res?: ILeaseKeepAliveResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.end();
      if (res) {
        resolve(res);
      } else {
        stream.cancel();
        reject(err);
      }
    };
    stream.on('data', (res: ILeaseKeepAliveResponse) => finish(undefined, res));
    stream.on('error', (err: unknown) => finish(err)); // also swallows the late CANCELLED of our own cancel()
    stream.write({ ID: leaseId });
  });
}
