// The queue of candidates of one name, as this host sees it: a consistent snapshot
// (a range read at revision R) followed by the watch events after R. Because it knows
// the whole queue, a candidate learns it leads from the very delete event of its
// predecessor — no extra round trip — and the view costs no etcd request at rest.

import type { IEvent, IKeyValue } from '../etcd/etcd3.js';

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

/**
 * The candidates of one name, leader first. A small array sorted by create revision,
 * not a Map: a name has a handful of candidates, and a locker holds thousands of names,
 * so per-name memory counts (a Map's hash table alone is ~200 bytes). Arrays are
 * replaced, never grown in place, so each holds exactly its candidates.
 *
 * It knows nothing of revisions: the PrefixView decides which events apply.
 */
export class Queue {
  private entries: readonly Candidate[];

  constructor(candidates: readonly Candidate[] = NONE) {
    this.entries = candidates.length === 0 ? NONE : sorted(candidates);
  }

  /** Applies one event; returns whether the queue changed. */
  apply(ev: KeyEvent): boolean {
    const i = this.indexOf(ev.key);
    if (ev.type === 'delete') {
      if (i < 0) return false;
      this.entries = without(this.entries, i);
      return true;
    }
    const prev = i < 0 ? undefined : this.entries[i]!;
    if (prev && prev.value === ev.value && prev.createRevision === ev.createRevision) return false;
    const next: Candidate = { key: ev.key, value: ev.value, createRevision: ev.createRevision };
    this.entries = insert(i < 0 ? this.entries : without(this.entries, i), next);
    return true;
  }

  get(key: string): Candidate | undefined {
    const i = this.indexOf(key);
    return i < 0 ? undefined : this.entries[i];
  }

  /** The leader: the key with the lowest create revision. */
  head(): Candidate | undefined {
    return this.entries[0];
  }

  /** All candidates, leader first. */
  ordered(): readonly Candidate[] {
    return this.entries;
  }

  /** Position of `key` (0 = leader), or -1. */
  indexOf(key: string): number {
    const e = this.entries;
    for (let i = 0; i < e.length; i++) if (e[i]!.key === key) return i;
    return -1;
  }

  get size(): number {
    return this.entries.length;
  }
}

const NONE: readonly Candidate[] = Object.freeze([]);

/** Queue order: lowest create revision first. */
export const byCreate = (a: Candidate, b: Candidate): number =>
  a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : 0;

/** An etcd key-value as a candidate (revisions stay exact as bigint). */
export function candidateOf(kv: IKeyValue): Candidate {
  return { key: kv.key.toString(), value: kv.value.toString(), createRevision: BigInt(kv.create_revision) };
}

/** An etcd watch event (a delete carries only key and mod revision). */
export function keyEventOf(e: IEvent): KeyEvent {
  return {
    type: e.type === 'Delete' ? 'delete' : 'put',
    key: e.kv.key.toString(),
    value: e.kv.value ? e.kv.value.toString() : '',
    createRevision: BigInt(e.kv.create_revision || '0'),
    modRevision: BigInt(e.kv.mod_revision || '0'),
  };
}

/** Candidates ordered by create revision (stable: equal revisions keep their order, as `headOf` does). */
function sorted(kvs: readonly Candidate[]): readonly Candidate[] {
  const out = kvs.slice();
  for (let i = 1; i < out.length; i++) {
    if (byCreate(out[i - 1]!, out[i]!) > 0) return out.sort(byCreate);
  }
  return out;
}

/** A new array with `c` after every candidate whose create revision is not greater. */
function insert(entries: readonly Candidate[], c: Candidate): readonly Candidate[] {
  let at = entries.length;
  while (at > 0 && entries[at - 1]!.createRevision > c.createRevision) at--;
  const out = new Array<Candidate>(entries.length + 1);
  for (let j = 0; j < at; j++) out[j] = entries[j]!;
  out[at] = c;
  for (let j = at; j < entries.length; j++) out[j + 1] = entries[j]!;
  return out;
}

/** A new array without the candidate at `at`. */
function without(entries: readonly Candidate[], at: number): readonly Candidate[] {
  if (entries.length === 1) return NONE;
  const out = new Array<Candidate>(entries.length - 1);
  for (let j = 0, k = 0; j < entries.length; j++) if (j !== at) out[k++] = entries[j]!;
  return out;
}
