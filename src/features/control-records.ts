// The records under `<prefix>/` besides the queues — host records, drain orders, move and
// standby requests — as one picture: every locker sees the same records, so each parses
// the same picture, and placement.ts decides from it alone. Malformed records are ignored
// (an operator's typo must not stop elections); requests whose leader key is gone are void.
import { controlPrefix } from '../etcd/keys.js';
import type { Candidate } from '../core/queue.js';

export interface MoveRequest {
  /** Election key of the leadership to hand over; the request is void once it is gone. */
  readonly from: string;
  /** Node id that must lead next; without it, whoever is next in line. */
  readonly to?: string;
  /** Who asked (node id or `cli`), for status and logs. */
  readonly by?: string;
}

export interface ControlRecords {
  /** Lease hex → node id, from the hosts' records. */
  readonly hostByLease: ReadonlyMap<string, string>;
  /** Node id → lease hex. */
  readonly leaseByHost: ReadonlyMap<string, string>;
  /** Node ids with a drain order. */
  readonly draining: ReadonlySet<string>;
  /** Node id → weight, for hosts whose record names one other than 1. */
  readonly weights: ReadonlyMap<string, number>;
  /** Node id → zone, for hosts whose record names one. */
  readonly zones: ReadonlyMap<string, string>;
  /** Node ids whose record says they are joining: their names' campaigns are still going out. */
  readonly joining: ReadonlySet<string>;
  /** Name → move request. */
  readonly moves: ReadonlyMap<string, MoveRequest>;
  /** Name → request to make `to` the first standby (the leader stays). */
  readonly nexts: ReadonlyMap<string, MoveRequest>;
}

export const EMPTY_CONTROL: ControlRecords = {
  hostByLease: new Map(),
  leaseByHost: new Map(),
  draining: new Set(),
  weights: new Map(),
  zones: new Map(),
  joining: new Set(),
  moves: new Map(),
  nexts: new Map(),
};

/** A host's weight: 1 unless its record says otherwise. */
export const weightOf = (id: string, rec: ControlRecords): number => rec.weights.get(id) ?? 1;

/** Parses the control records under `<prefix>/`; malformed ones are ignored (an operator's typo must not stop elections). */
export function parseControl(prefix: string, control: ReadonlyMap<string, string>): ControlRecords {
  const base = controlPrefix(prefix);
  const hostByLease = new Map<string, string>();
  const leaseByHost = new Map<string, string>();
  const draining = new Set<string>();
  const weights = new Map<string, number>();
  const zones = new Map<string, string>();
  const joining = new Set<string>();
  const moves = new Map<string, MoveRequest>();
  const nexts = new Map<string, MoveRequest>();
  for (const [key, value] of control) {
    const rest = key.slice(base.length);
    const slash = rest.indexOf('/');
    if (slash < 0) continue;
    const kind = rest.slice(0, slash);
    const id = rest.slice(slash + 1);
    if (id.length === 0) continue;
    const json = parse(value);
    if (kind === 'hosts') {
      const lease = json?.['lease'];
      if (typeof lease === 'string' && lease.length > 0) {
        hostByLease.set(lease, id);
        leaseByHost.set(id, lease);
      }
      const weight = json?.['weight'];
      if (typeof weight === 'number' && Number.isFinite(weight) && weight >= 0 && weight !== 1) weights.set(id, weight);
      const zone = json?.['zone'];
      if (typeof zone === 'string' && zone.length > 0) zones.set(id, zone);
      if (json?.['joining'] === true) joining.add(id);
    } else if (kind === 'drain') {
      draining.add(id);
    } else if (kind === 'move' || kind === 'next') {
      const from = json?.['from'];
      const to = json?.['to'];
      const by = json?.['by'];
      if (typeof from !== 'string') continue;
      const req = { from, ...(typeof to === 'string' ? { to } : {}), ...(typeof by === 'string' ? { by } : {}) };
      if (kind === 'move') moves.set(id, req);
      else if (req.to !== undefined) nexts.set(id, req);
    }
  }
  return { hostByLease, leaseByHost, draining, weights, zones, joining, moves, nexts };
}

/**
 * The records without void requests. A move or standby request names the leader key it
 * was written for (`from`); once that key is gone the request is void. Its writer deletes
 * it when its move ends, but that delete can fail (a timeout under load), and a void record
 * left in place would make the planners skip its name, and a void move would keep every
 * host's standby balancing waiting for "moves under way", until its writer's lease ends.
 */
export function liveRequests(rec: ControlRecords, headKey: (name: string) => string | undefined): ControlRecords {
  const live = (m: ReadonlyMap<string, MoveRequest>): ReadonlyMap<string, MoveRequest> => {
    for (const [name, req] of m) if (headKey(name) !== req.from) return new Map([...m].filter(([n, r]) => headKey(n) === r.from));
    return m;
  };
  const moves = live(rec.moves);
  const nexts = live(rec.nexts);
  return moves === rec.moves && nexts === rec.nexts ? rec : { ...rec, moves, nexts };
}

function parse(value: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(value);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The node id of a candidate if it is one of our lockers (its key's lease is in a host record). */
export function ownerOf(c: Candidate, rec: ControlRecords): string | undefined {
  // Called for every candidate of every name on each pass: no string is allocated here.
  const lease = rec.leaseByHost.get(c.value);
  if (lease === undefined) return undefined;
  const k = c.key;
  const at = k.length - lease.length;
  return at > 0 && k.charCodeAt(at - 1) === 47 /* '/' */ && k.endsWith(lease) ? c.value : undefined;
}
