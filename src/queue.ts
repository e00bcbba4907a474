// The queue of candidates of one name, as this host sees it: a consistent snapshot
// (a range read at revision R) followed by the watch events after R. Because it knows
// the whole queue, a candidate learns it leads from the very delete event of its
// predecessor — no extra round trip — and the view costs no etcd request at rest.

export interface Candidate {
  key: string;
  /** Value of the key: the node id (our hosts) or the proposal (`etcdctl elect`, Go). */
  value: string;
  createRevision: bigint;
}

export interface KeyEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  createRevision: bigint;
  modRevision: bigint;
}

/** The candidate with the lowest create revision: the leader. */
export function headOf(candidates: Iterable<Candidate>): Candidate | undefined {
  let head: Candidate | undefined;
  for (const c of candidates) if (!head || c.createRevision < head.createRevision) head = c;
  return head;
}

export class Queue {
  private readonly entries = new Map<string, Candidate>();
  /** Highest revision reflected in `entries`; undefined until the first snapshot. */
  private revision: bigint | undefined;
  /** Events seen before the first snapshot, replayed over it. */
  private early: KeyEvent[] = [];

  get initialized(): boolean {
    return this.revision !== undefined;
  }

  /**
   * Installs a range read taken at `revision`. An older snapshot than what the watch
   * already delivered is ignored: the watch is gap-free after the first snapshot, so
   * the view it built is newer and complete.
   */
  reset(kvs: Candidate[], revision: bigint): void {
    if (this.revision !== undefined && revision <= this.revision) return;
    this.entries.clear();
    for (const kv of kvs) this.entries.set(kv.key, kv);
    this.revision = revision;
    const early = this.early;
    this.early = [];
    for (const ev of early) this.apply(ev);
  }

  /** Forgets everything (after the watch lost events, e.g. to compaction): a new snapshot is needed. */
  invalidate(): void {
    this.entries.clear();
    this.revision = undefined;
    this.early = [];
  }

  /** Applies one watch event; returns whether the view changed. */
  apply(ev: KeyEvent): boolean {
    if (this.revision === undefined) {
      this.early.push(ev);
      return false;
    }
    if (ev.modRevision <= this.revision) return false;
    this.revision = ev.modRevision;
    if (ev.type === 'delete') return this.entries.delete(ev.key);
    const prev = this.entries.get(ev.key);
    this.entries.set(ev.key, { key: ev.key, value: ev.value, createRevision: ev.createRevision });
    return prev === undefined || prev.value !== ev.value || prev.createRevision !== ev.createRevision;
  }

  get(key: string): Candidate | undefined {
    return this.entries.get(key);
  }

  /** The leader: the key with the lowest create revision. */
  head(): Candidate | undefined {
    return headOf(this.entries.values());
  }

  /** All candidates, leader first. */
  ordered(): Candidate[] {
    return [...this.entries.values()].sort((a, b) => (a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0));
  }

  get size(): number {
    return this.entries.size;
  }
}
