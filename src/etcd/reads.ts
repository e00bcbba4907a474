// The reads of election state on etcd3 (part of the etcd layer: etcd-store.ts calls them):
// the leader of one name, and every name's queue under a prefix in one consistent snapshot.
import type { Etcd3, IRangeRequest, IRangeResponse } from 'etcd3';
import { controlPrefix, nameOf, prefixEnd } from './keys.js';
import { byCreate, candidateOf, type Candidate } from '../core/queue.js';
import type { PrefixSnapshot } from './store.js';

/** The range of every candidate key of a name (`<prefix><name>/`). */
export function nameRange(namePrefix: string): { key: Buffer; range_end: Buffer } {
  return { key: Buffer.from(namePrefix), range_end: prefixEnd(namePrefix) };
}

/** etcd3's call deadline: a wall-clock Date, which only the etcd layer builds. */
export const deadline = (timeoutMs: number): { deadline: Date } => ({ deadline: new Date(Date.now() + timeoutMs) });

/** The leader of a name (lowest create revision), read by etcd sorted: one key comes back. */
export async function readLeader(client: Etcd3, namePrefix: string, timeoutMs: number): Promise<Candidate | undefined> {
  const res = await client.kv.range(
    { ...nameRange(namePrefix), sort_target: 'Create', sort_order: 'Ascend', limit: 1 },
    deadline(timeoutMs),
  );
  return res.kvs[0] ? candidateOf(res.kvs[0]) : undefined;
}

/** Keys per page: keeps each answer well under gRPC's 4 MiB message limit. */
const PAGE = 5_000;

/** One range read, as the caller sends it (etcd-store.ts: hedged over the members, a page at a time). */
export function readPage(client: Etcd3, page: IRangeRequest, timeoutMs: number): Promise<IRangeResponse> {
  return client.kv.range(page, deadline(timeoutMs));
}

/**
 * Every name's queue under `prefix`; pages after the first pin the first page's revision,
 * so it is one snapshot. Each page is a request of its own (`read`), timed and hedged like
 * any other: a 100,000-name prefix is 20 pages, and a deadline or hedge for the whole read
 * would treat a big prefix as a slow member — at 1/3 of the request timeout every member
 * read all of it at once, and past the timeout the read failed and began again.
 */
export async function readPrefix(read: (page: IRangeRequest) => Promise<IRangeResponse>, prefix: string): Promise<PrefixSnapshot> {
  const end = prefixEnd(prefix);
  const queues = new Map<string, Candidate[]>();
  const control = new Map<string, string>();
  const controlStart = controlPrefix(prefix);
  let from = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    const res = await read({ key: from, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) });
    revision ??= res.header.revision;
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      const name = nameOf(prefix, key);
      if (name === undefined) {
        if (key.startsWith(controlStart)) control.set(key, kv.value.toString());
        continue;
      }
      const list = queues.get(name);
      if (list) list.push(candidateOf(kv));
      else queues.set(name, [candidateOf(kv)]);
    }
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || !last) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  for (const list of queues.values()) list.sort(byCreate);
  return { revision: BigInt(revision), queues, control };
}
