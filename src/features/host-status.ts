// Who the hosts under a prefix are and where they stand: every host's leaderships, queue
// places and fair share (`status({ hosts: true })`, `locked status --hosts`), and the live
// host ids an operator's call checks a node id against.
import { EtcdUnavailableError } from '../core/errors.js';
import { parseControl, weightOf, type ControlRecords } from './control-records.js';
import type { Candidate } from '../core/queue.js';
import type { ControlStore } from '../etcd/store.js';

/** Per-host picture, as `status({ hosts: true })` and `locked status --hosts` show it. */
export interface HostStatus {
  /** Node id. */
  id: string;
  /** Lease (hex) of its current session; undefined for a drain order of a host that is not running. */
  lease: string | undefined;
  /** Names it leads. */
  leads: string[];
  /** Names it queues for without leading. */
  queued: string[];
  /** Names it is next in line for (the first standby): where its leadership would go if the leader died now. */
  next: number;
  draining: boolean;
  /** Its names' campaigns are still going out (a registration, a new session): balancing holds until they are in. */
  joining: boolean;
  /** Its weight (`weight` option; 1 unless set; 0 = standby only). */
  weight: number;
  /** Its zone (`zone` option), if set. */
  zone?: string;
  /** Its fair share of the names it queues for (see README: Balance). */
  share: number;
  /** Leaderships above (+) or below (−) the fair share, rounded to whole names. */
  offBy: number;
}

/** Every host's leaderships, queue places, drain state and fair share. */
export function hostsStatus(queues: Iterable<[string, readonly Candidate[]]>, rec: ControlRecords): HostStatus[] {
  const hosts = new Map<string, HostStatus>();
  const seen = new Set<string>();
  const get = (id: string): HostStatus => {
    let h = hosts.get(id);
    if (!h)
      hosts.set(
        id,
        (h = {
          id,
          lease: rec.leaseByHost.get(id),
          leads: [],
          queued: [],
          next: 0,
          draining: rec.draining.has(id),
          joining: rec.joining.has(id),
          weight: weightOf(id, rec),
          ...(rec.zones.has(id) ? { zone: rec.zones.get(id) } : {}),
          share: 0,
          offBy: 0,
        }),
      );
    return h;
  };
  for (const id of rec.leaseByHost.keys()) get(id);
  for (const id of rec.draining) get(id);
  for (const [name, queue] of queues) {
    const ids = [...new Set(queue.map((c) => c.value))];
    const able = ids.filter((id) => !rec.draining.has(id) && weightOf(id, rec) > 0);
    let total = 0;
    for (const id of able) total += weightOf(id, rec);
    seen.clear();
    queue.forEach((c, i) => {
      if (seen.has(c.value)) return;
      seen.add(c.value);
      const h = get(c.value);
      if (i === 0) h.leads.push(name);
      else h.queued.push(name);
      if (i === 1) h.next++;
    });
    for (const id of able) get(id).share += weightOf(id, rec) / total;
  }
  const out = [...hosts.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const h of out) {
    h.leads.sort();
    h.queued.sort();
    h.share = Math.round(h.share * 100) / 100;
    h.offBy = h.leads.length - Math.round(h.share);
  }
  return out;
}

/**
 * @internal
 * The node ids of the live hosts — those with a host record (kept under the host's
 * lease) or a key in some queue (an older locked writes no record) — sorted, and the
 * ids with a drain order, live or not: one snapshot of the prefix.
 */
export async function knownHosts(
  store: ControlStore,
  prefix: string,
  timeoutMs: number,
): Promise<{ live: string[]; draining: ReadonlySet<string> }> {
  let snap;
  try {
    snap = await store.readPrefix(prefix, timeoutMs);
  } catch (err) {
    throw new EtcdUnavailableError(`read of the hosts under prefix '${prefix}'`, err);
  }
  const rec = parseControl(prefix, snap.control ?? new Map());
  const live = new Set(rec.leaseByHost.keys());
  for (const queue of snap.queues.values()) for (const c of queue) live.add(c.value);
  return { live: [...live].sort(), draining: rec.draining };
}
