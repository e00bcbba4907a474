// An in-memory etcd for the simulation: revisions, keys with create/mod revisions and
// leases, several events per revision (a revoke, an expiry or a `del --prefix` is one
// revision), lease expiry on virtual time, prefix watches with compaction.
import type { Candidate, KeyEvent } from '../../../src/core/queue.js';
import type { KeyRevision, ResignRequest } from '../../../src/etcd/store.js';

export interface Kv {
  key: string;
  value: string;
  create: bigint;
  mod: bigint;
  lease: string;
}

export interface ModelLease {
  id: string;
  ttlMs: number;
  expiresAt: number;
}

export type Watch = (events: KeyEvent[]) => void;

/** Why keys disappeared: the invariants judge each kind differently ('control': a host deleted a control or run-once record; 'forced': failover --force). */
export type DeleteCause = 'resign' | 'revoke' | 'expiry' | 'operator' | 'control' | 'forced';

export interface DeleteListener {
  (kvs: readonly Kv[], cause: DeleteCause, revision: bigint): void;
}

export class EtcdModel {
  revision = 1n;
  compacted = 0n;
  readonly kvs = new Map<string, Kv>();
  readonly leases = new Map<string, ModelLease>();
  private nextLease = 0x1000n;
  private readonly watches = new Set<{ prefix: string; fn: Watch }>();
  /** Every revision's events, for watches that resume (trimmed by compaction). */
  readonly log: { revision: bigint; events: KeyEvent[] }[] = [];
  onDelete: DeleteListener = () => {};
  onPut: (kv: Kv) => void = () => {};

  constructor(private readonly now: () => number) {}

  grant(ttlS: number): string {
    const id = (this.nextLease++).toString();
    this.leases.set(id, { id, ttlMs: ttlS * 1000, expiresAt: this.now() + ttlS * 1000 });
    return id;
  }

  /** Remaining TTL in seconds, or 0 when the lease is unknown (expired, revoked). */
  keepAlive(id: string): number {
    const l = this.leases.get(id);
    if (!l) return 0;
    l.expiresAt = this.now() + l.ttlMs;
    return Math.ceil(l.ttlMs / 1000);
  }

  revoke(id: string, cause: DeleteCause = 'revoke'): void {
    if (!this.leases.delete(id)) throw new Error('etcdserver: requested lease not found');
    const gone = [...this.kvs.values()].filter((kv) => kv.lease === id);
    this.deleteKeys(gone, cause);
  }

  /** Expires every lease past its time (etcd's lessor sweep). */
  expire(): void {
    for (const l of [...this.leases.values()]) {
      if (l.expiresAt <= this.now()) this.revoke(l.id, 'expiry');
    }
  }

  /** The campaign transaction: put-if-absent (or, try-only, if the name is empty) plus the range of the name. */
  campaign(
    namePrefix: string,
    key: string,
    value: string,
    lease: string,
    tryOnly: boolean,
  ): { revision: bigint; candidates: Candidate[]; created: boolean } {
    if (!this.leases.has(lease)) throw new Error('etcdserver: requested lease not found');
    const existing = this.range(namePrefix);
    const ok = tryOnly ? existing.length === 0 : !this.kvs.has(key);
    if (ok) {
      const rev = ++this.revision;
      const kv: Kv = { key, value, create: rev, mod: rev, lease };
      this.kvs.set(key, kv);
      this.onPut(kv);
      this.publish(rev, [{ type: 'put', key, value, createRevision: rev, modRevision: rev }]);
    }
    return { revision: this.revision, candidates: this.range(namePrefix).map(candidate), created: ok };
  }

  /**
   * Deletes each key whose guard holds (create revision, or lease): one transaction, one
   * revision. With `past` (a hand-over past standbys, store.ts): those keys too when each
   * still has its create revision and the target still queues — else the key alone; with
   * `past.leader` (a promotion) nothing at all once the leader's key is gone.
   */
  resign(requests: readonly ResignRequest[]): number {
    const gone: Kv[] = [];
    const held = (x: KeyRevision): Kv | undefined => {
      const kv = this.kvs.get(x.key);
      return kv?.create === x.createRevision ? kv : undefined;
    };
    for (const { key, guard, past } of requests) {
      const kv = this.kvs.get(key);
      if (!kv || gone.includes(kv)) continue;
      if ('createRevision' in guard ? kv.create !== guard.createRevision : kv.lease !== guard.leaseId) continue;
      // A promotion: nothing goes once the leader's key is gone (HandOverPast.leader).
      if (past?.leader && !held(past.leader)) continue;
      gone.push(kv);
      if (past && 'createRevision' in guard && held(past.target) && past.keys.every((x) => held(x))) {
        for (const x of past.keys) {
          const p = held(x)!;
          if (!gone.includes(p)) gone.push(p);
        }
      }
    }
    if (gone.length > 0) this.deleteKeys(gone, 'resign');
    return gone.length;
  }

  /** `etcdctl del --prefix`: one revision, one event per key. */
  deletePrefix(prefix: string): number {
    const gone = [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix));
    this.deleteKeys(gone, 'operator');
    return gone.length;
  }

  /** A plain put (control and run-once records), under `lease` when given. */
  put(key: string, value: string, lease: string | undefined): Kv {
    if (lease !== undefined && !this.leases.has(lease)) throw new Error('etcdserver: requested lease not found');
    const rev = ++this.revision;
    const old = this.kvs.get(key);
    const kv: Kv = { key, value, create: old?.create ?? rev, mod: rev, lease: lease ?? '0' };
    this.kvs.set(key, kv);
    this.onPut(kv);
    this.publish(rev, [{ type: 'put', key, value, createRevision: kv.create, modRevision: rev }]);
    return kv;
  }

  /**
   * Control-record puts and guarded deletes in one transaction: one revision, every event
   * in one watch response. A put under a lease that is gone fails the whole write.
   */
  writeControl(writes: readonly ({ key: string; put: string; leaseId?: string | undefined } | { key: string; removeIf: string })[]): void {
    for (const w of writes)
      if ('put' in w && w.leaseId !== undefined && !this.leases.has(w.leaseId)) throw new Error('etcdserver: requested lease not found');
    if (new Set(writes.map((w) => w.key)).size !== writes.length) throw new Error('etcdserver: duplicate key given in txn request');
    const gone = writes.flatMap((w) => {
      const kv = 'removeIf' in w ? this.kvs.get(w.key) : undefined;
      return kv && kv.value === (w as { removeIf: string }).removeIf ? [kv] : [];
    });
    const puts = writes.filter((w): w is { key: string; put: string; leaseId?: string | undefined } => 'put' in w);
    if (gone.length === 0 && puts.length === 0) return;
    const rev = ++this.revision;
    const events: KeyEvent[] = [];
    for (const w of puts) {
      const old = this.kvs.get(w.key);
      const kv: Kv = { key: w.key, value: w.put, create: old?.create ?? rev, mod: rev, lease: w.leaseId ?? '0' };
      this.kvs.set(w.key, kv);
      this.onPut(kv);
      events.push({ type: 'put', key: kv.key, value: kv.value, createRevision: kv.create, modRevision: rev });
    }
    for (const kv of gone) this.kvs.delete(kv.key);
    if (gone.length > 0) this.onDelete(gone, 'control', rev);
    for (const kv of gone) events.push({ type: 'delete', key: kv.key, value: '', createRevision: 0n, modRevision: rev });
    this.publish(rev, events);
  }

  /** Deletes one key, if it exists and (when given) holds `ifValue`. */
  deleteKey(key: string, ifValue: string | undefined, cause: DeleteCause): boolean {
    const kv = this.kvs.get(key);
    if (!kv || (ifValue !== undefined && kv.value !== ifValue)) return false;
    this.deleteKeys([kv], cause);
    return true;
  }

  /** Deletes an election key if it still has `create` (failover --force); the name's queue after. */
  depose(key: string, create: bigint, namePrefix: string): Candidate[] {
    const kv = this.kvs.get(key);
    if (kv && kv.create === create) this.deleteKeys([kv], 'forced');
    return this.range(namePrefix).map(candidate);
  }

  /** The run-once write: put if the fence key has its create revision and `key` its mod revision (0n: absent). */
  putFenced(
    fence: { key: string; createRevision: bigint },
    key: string,
    value: string,
    mod: bigint,
    lease: string | undefined,
  ): bigint | 'deposed' | 'conflict' {
    const f = this.kvs.get(fence.key);
    if (!f || f.create !== fence.createRevision) return 'deposed';
    if ((this.kvs.get(key)?.mod ?? 0n) !== mod) return 'conflict';
    return this.put(key, value, lease).mod;
  }

  range(prefix: string): Kv[] {
    return [...this.kvs.values()].filter((kv) => kv.key.startsWith(prefix)).sort((a, b) => (a.create < b.create ? -1 : 1));
  }

  /** The first key (lowest create revision) of a name. */
  head(namePrefix: string): Kv | undefined {
    return this.range(namePrefix)[0];
  }

  /** Watches `prefix` from `fromRevision` (inclusive); throws if that was compacted. */
  watch(prefix: string, fromRevision: bigint, fn: Watch): () => void {
    if (fromRevision <= this.compacted) throw new Error('mvcc: required revision has been compacted');
    for (const entry of this.log) {
      if (entry.revision < fromRevision) continue;
      const evs = entry.events.filter((e) => e.key.startsWith(prefix));
      if (evs.length) fn(evs);
    }
    const w = { prefix, fn };
    this.watches.add(w);
    return () => this.watches.delete(w);
  }

  compact(): void {
    this.compacted = this.revision;
    this.log.length = 0;
  }

  private deleteKeys(gone: readonly Kv[], cause: DeleteCause): void {
    if (gone.length === 0) return;
    const rev = ++this.revision;
    for (const kv of gone) this.kvs.delete(kv.key);
    this.onDelete(gone, cause, rev);
    this.publish(
      rev,
      gone.map((kv) => ({ type: 'delete' as const, key: kv.key, value: '', createRevision: 0n, modRevision: rev })),
    );
  }

  private publish(revision: bigint, events: KeyEvent[]): void {
    this.log.push({ revision, events });
    for (const w of [...this.watches]) {
      const evs = events.filter((e) => e.key.startsWith(w.prefix));
      if (evs.length) w.fn(evs);
    }
  }
}

const candidate = (kv: Kv): Candidate => ({ key: kv.key, value: kv.value, createRevision: kv.create });
