// WHERE LEADERSHIPS SHOULD BE: balance, drain and requested hand-overs, decided from the
// prefix alone. Every locker sees every queue and every control record under its prefix,
// so each computes the same picture (control-records.ts parses it); this file is the only
// place that turns it into "this leader hands over now" or "this standby steps out of the
// way". The mover (mover.ts) acts on its answers.
//
// - A host is one of ours when its record `<prefix>/hosts/<id>` names the lease of the
//   candidate's key. Keys of anything else (`etcdctl elect`, Go services, older lockers)
//   are foreign: a name with a foreign candidate is never moved by balancing.
// - Fair share of host h: Σ over the names h queues for of weight(h) / (Σ weights of the
//   name's eligible candidates). With every host on every name and equal weights that is
//   N / H. A host of weight 0 is a standby only: given nothing while another can lead.
// - Balancing moves a name from its leader h to a candidate g only when h leads more than
//   its fair share, g less than its own, and g's excess (load − share) is below h's by
//   more than 1: every move lowers Σ (load − share)², so moves end and never ping-pong;
//   hosts at their share never move anything, so concurrent deciders rarely overshoot.
//   With every host on every name and equal weights it stops at ⌊N/H⌋..⌈N/H⌉ per host.
// - Zones: a name's first standby should sit in another zone than its leader (a zone lost
//   at once then fails every name over at lease expiry); standby balancing keeps that.
// - A move is always graceful: the leader's fn is aborted and drained, then its key is
//   deleted; the receiver starts after. To reach a candidate that is not next in line, the
//   leader deletes the keys of our standbys ahead of it together with its own, in one
//   guarded transaction (mover.ts, store.ts HandOverPast); with a foreign candidate ahead
//   it writes `<prefix>/move/<name>` = { from, to } instead: the candidates queued between
//   them re-queue at the back, then the leader hands over.
import { ownerOf, weightOf, type ControlRecords, type MoveRequest } from './control-records.js';
import type { Candidate } from '../core/queue.js';
import type { HandOverPast } from '../etcd/store.js';

// The public face exports these types from here (src/index.ts).
export type { MoveRequest } from './control-records.js';
export type { HostStatus } from './host-status.js';

/**
 * Moves one host makes at once, by default (`balance.concurrency`): enough for its whole
 * surplus in one wave. Each move is still graceful (fn settled before its key goes); the
 * deletes and campaigns of a wave share transactions (core/batcher.ts), so a wave of k
 * moves costs about k / 100 round trips. At 1,000 a host giving 50,000 names to a second
 * host moved 1,000 per pass, ~1,500 a second (balanced 25–35 s after the second host's
 * campaigns were in, bench); at 5,000, 13.9 s in two runs, no session lost, the worst
 * event-loop stall 0.9–1.0 s (the pass that starts 5,000 hand-overs).
 */
export const DEFAULT_BALANCE_CONCURRENCY = 5000;

/**
 * How long a preferred host must have been up (its host record unchanged) before names move
 * back to it, by default (`balance.preferHoldDownMs`): a host that flaps — restarts every few
 * seconds — never gets there, so its names do not bounce.
 */
export const DEFAULT_PREFER_HOLD_DOWN_MS = 15_000;

/** A candidate that may be given a leadership: not draining, not of weight 0 (foreign candidates are neither). */
const eligible = (c: Candidate, rec: ControlRecords): boolean => !rec.draining.has(c.value) && weightOf(c.value, rec) > 0;

/**
 * Should the queued (not leading) candidate `key` of `name` step out of the way — delete
 * its key and queue again at the back? Yes when a move request (or a request for a new
 * first standby) targets a host behind it that is not draining, or when it is draining, first
 * in line, and an eligible candidate queues behind it. Only first in line: a standby further
 * back takes nothing over while the one ahead of it is there, and once it is first it steps
 * aside then. (Stepping back from every name at once cost a drained host of a 2,000-name
 * fleet ~1,750 deletes and as many campaigns, every one an event on every host, in the middle
 * of the drain's own moves.) And only once its leaderships are handed over (`drainAside`):
 * the stand-asides matter only if a leader dies, the hand-overs now — at the same time,
 * ~250 stand-asides doubled the writes of the 8-host bench fleet's drain (its etcd answered
 * a 100-delete transaction in ~600 ms).
 */
export function standsAside(
  queue: readonly Candidate[],
  key: string,
  self: string,
  rec: ControlRecords,
  move: MoveRequest | undefined,
  next?: MoveRequest,
  /** False while a draining host still hands its leaderships over: its stand-asides wait (mover.ts). */
  drainAside = true,
): boolean {
  const i = queue.findIndex((c) => c.key === key);
  if (i < 0) return false;
  for (const req of [move, next]) {
    if (req?.to !== undefined && queue[0]?.key === req.from && key !== req.from && self !== req.to) {
      const j = queue.findIndex((c) => c.value === req.to);
      // A draining target stands aside itself: stepping back for it would go round for
      // ever (seen in the bench: a request for a host that began draining after it was
      // written kept every standby of three names re-queueing, ~500 writes/s).
      if (j > i && eligible(queue[j]!, rec)) return true;
    }
  }
  if (i === 1 && drainAside && rec.draining.has(self)) {
    for (let j = i + 1; j < queue.length; j++) if (eligible(queue[j]!, rec)) return true;
  }
  return false;
}

/** Should the leader holding `key` hand over now? Yes when a move request for it is ready: its target is next in line. */
export function handsOver(queue: readonly Candidate[], key: string, move: MoveRequest | undefined): boolean {
  if (!move || move.from !== key || queue[0]?.key !== key) return false;
  const next = queue[1];
  if (!next) return false;
  return move.to === undefined || next.value === move.to;
}

/** A move this host wants to make: hand `name` to `to` (queued at `position`). */
export interface PlannedMove {
  readonly name: string;
  readonly from: string;
  readonly to: string;
  readonly position: number;
  /**
   * Past standbys, all of them ours: a leader (position > 1) deletes their keys with its own
   * (passesOver); a first standby promoting another (position ≥ 2) likewise, while the
   * leader's key holds (promotesPast).
   */
  readonly past?: HandOverPast;
}

/**
 * How a leader reaches the candidate at `position` > 1: by deleting the keys of the standbys
 * ahead of it together with its own, in one guarded transaction (store.ts, HandOverPast) —
 * when every one of them is a key of one of our lockers, which queue again when their key
 * goes. A foreign campaigner would not: Go's `Campaign` (`etcdctl elect`) returns elected
 * once the keys ahead of its own are gone, without looking at its own again. Then undefined:
 * the move goes by a request, and the standbys between step aside themselves (standsAside).
 */
export function passesOver(queue: readonly Candidate[], position: number, rec: ControlRecords): HandOverPast | undefined {
  return position < 2 ? undefined : between(queue, 1, position, rec);
}

/**
 * The same for a promotion (planPromotions): the first standby makes way for the candidate
 * at `position` ≥ 2 — its own key, and those of the standbys between, go in one guarded
 * transaction, while the leader's key holds (a leader gone meanwhile: nothing goes, the
 * first standby leads). Undefined when a foreign key is among them: then by a request.
 */
export function promotesPast(queue: readonly Candidate[], position: number, rec: ControlRecords): HandOverPast | undefined {
  const leader = queue[0];
  const past = position < 2 || leader === undefined ? undefined : between(queue, 2, position, rec);
  return past && { ...past, leader: held(leader) };
}

const held = (c: Candidate) => ({ key: c.key, createRevision: c.createRevision });

/** Keys from `from` up to the target at `position`, if every one of them, target included, is one of our lockers'. */
function between(queue: readonly Candidate[], from: number, position: number, rec: ControlRecords): HandOverPast | undefined {
  const target = queue[position];
  if (target === undefined || ownerOf(target, rec) !== target.value) return undefined;
  const ahead = queue.slice(from, position);
  if (ahead.some((c) => ownerOf(c, rec) === undefined)) return undefined;
  return { keys: ahead.map(held), target: held(target) };
}

/** A planned move to the candidate at `position` of `queue`, with its way past the standbys ahead. */
function moveTo(name: string, queue: readonly Candidate[], position: number, rec: ControlRecords): PlannedMove {
  const past = passesOver(queue, position, rec);
  return { name, from: queue[0]!.key, to: queue[position]!.value, position, ...(past ? { past } : {}) };
}

export interface PlanInput {
  /** Every name's queue. */
  readonly queues: Iterable<[string, readonly Candidate[]]>;
  readonly rec: ControlRecords;
  /** This host. */
  readonly self: string;
  readonly balance: boolean;
  /** Names this host is moving already, with their target (not planned again; counted as the target's). */
  readonly inFlight: ReadonlyMap<string, string | undefined>;
  /** At most this many moves. */
  readonly limit: number;
  /** Names this host may move (runs them as queue-mode singletons). Default: all. */
  readonly movable?: (name: string) => boolean;
  /** A name's preferred hosts, best first (SingletonOptions.prefer), as this host registered it. */
  readonly prefer?: (name: string) => readonly string[] | undefined;
  /** True once host `id` has been up for the hold-down: only then is it a preferred target. Default: always. */
  readonly settled?: (id: string) => boolean;
}

/**
 * Where a name with preferred hosts belongs: the first of them that queues for it, may be
 * given a leadership and — unless it leads the name already — has been up for the
 * hold-down. Undefined when none is there (the name is balanced like any other).
 */
export function preferredHost(
  queue: readonly Candidate[],
  prefer: readonly string[] | undefined,
  input: Pick<PlanInput, 'rec' | 'settled'>,
): string | undefined {
  if (prefer === undefined || prefer.length === 0) return undefined;
  const leader = queue[0]?.value;
  for (const id of prefer) {
    const c = queue.find((x) => x.value === id && ownerOf(x, input.rec) === id);
    if (c === undefined || !eligible(c, input.rec)) continue;
    if (id === leader || (input.settled?.(id) ?? true)) return id;
  }
  return undefined;
}

/**
 * The moves this host should start now, as a leader: every name it leads if it is
 * draining (to the nearest eligible candidate with room under its share, else the least
 * loaded); else, with balance on and while it
 * leads more than its fair share, names whose queue holds only our hosts and a candidate
 * below its own fair share and at least two leaderships below us.
 */
export function planMoves(input: PlanInput): PlannedMove[] {
  const { rec, self, limit } = input;
  if (limit <= 0) return [];
  const draining = rec.draining.has(self);
  if (!draining && !input.balance) return [];
  // Counted in boxes, one hash lookup per host and name: at 100,000 names a pass reads every
  // queue, and it runs on the host's event loop (bench: ~70 ms a pass, most of it here).
  const loads = new Map<string, { n: number }>();
  const shares = new Map<string, { n: number }>();
  const add = (m: Map<string, { n: number }>, id: string, v: number): void => {
    const box = m.get(id);
    if (box) box.n += v;
    else m.set(id, { n: v });
  };
  /** Names we lead and may balance away, with their queues and preferred hosts (asked once per name). */
  const mineNames: string[] = [];
  const mineQueues: (readonly Candidate[])[] = [];
  const minePrefer: (readonly string[] | undefined)[] = [];
  /** Names we lead that belong on another, preferred host. */
  const toPreferred: [string, readonly Candidate[], string][] = [];
  /** The name's eligible candidates' node ids (a queue holds a handful: an array beats a Set). */
  const ids: string[] = [];
  const uniform = rec.weights.size === 0;
  const isMovable = input.movable;
  for (const [name, queue] of input.queues) {
    const head = queue[0];
    if (!head) continue;
    let owner = ownerOf(head, rec) ?? head.value;
    // A move in flight counts as landed — ours, and anyone's whose request we see — so
    // that no host fills a deficit that moves under way fill already.
    const pending = rec.moves.size > 0 ? rec.moves.get(name) : undefined;
    if (owner === self && input.inFlight.has(name)) owner = input.inFlight.get(name) ?? '';
    else if (pending?.to !== undefined && pending.from === head.key) owner = pending.to;
    add(loads, owner, 1);
    const prefer = input.prefer?.(name);
    const preferred = prefer === undefined ? undefined : preferredHost(queue, prefer, input);
    let movable: boolean | undefined;
    if (preferred !== undefined && !draining) {
      // A name with its preferred host there is that host's whole share, whoever leads it
      // now: the other hosts' fair shares are made of the remaining names.
      add(shares, preferred, 1);
      if (owner === self && preferred !== self && (input.movable?.(name) ?? true)) toPreferred.push([name, queue, preferred]);
      continue; // never balanced away from its preferred host
    }
    ids.length = 0;
    for (const c of queue) if (eligible(c, rec) && !ids.includes(c.value)) ids.push(c.value);
    // Our own names count even while our key is briefly out of the queue (a hand-over
    // re-queues, a standby steps aside): else our share would dip with every move in
    // flight and we would give away more than the surplus.
    if (!draining && !ids.includes(self) && isMovable !== undefined && (movable ??= isMovable(name))) ids.push(self);
    if (uniform) {
      for (const id of ids) add(shares, id, 1 / ids.length);
    } else {
      let total = 0;
      for (const id of ids) total += weightOf(id, rec);
      if (total > 0) for (const id of ids) add(shares, id, weightOf(id, rec) / total);
    }
    if (owner === self && (isMovable === undefined || (movable ??= isMovable(name)))) {
      mineNames.push(name);
      mineQueues.push(queue);
      minePrefer.push(prefer);
    }
  }
  const load = new Map([...loads].map(([id, box]) => [id, box.n]));
  const share = new Map([...shares].map(([id, box]) => [id, box.n]));
  const out: PlannedMove[] = [];
  // First the names that belong on their preferred host: moves back, regardless of the
  // balance (the preferred host's share holds them).
  for (const [name, queue, to] of toPreferred) {
    if (out.length >= limit) break;
    if (rec.moves.has(name) || rec.nexts.has(name)) continue;
    const position = queue.findIndex((c) => c.value === to);
    if (position < 1) continue;
    out.push(moveTo(name, queue, position, rec));
    load.set(self, (load.get(self) ?? 0) - 1);
    load.set(to, (load.get(to) ?? 0) + 1);
  }
  const shareOf = (id: string): number => share.get(id) ?? 0;
  const quota = draining ? new Map<string, number>() : quotas(load, share, self, rec);
  for (let k = 0; k < mineNames.length; k++) {
    const name = mineNames[k]!;
    const queue = mineQueues[k]!;
    const prefer = minePrefer[k];
    if (out.length >= limit) break;
    if (rec.moves.has(name) || rec.nexts.has(name)) continue; // someone asked already: that request rules
    const myLoad = load.get(self) ?? 0;
    // Balance gives names away only from above the fair share (a host below it keeps
    // what it has even if a neighbour is lower still: that neighbour is fed from above).
    if (!draining && myLoad <= shareOf(self) + 1e-9) break;
    // Names with a candidate that is not one of our lockers are never balanced.
    if (!draining && queue.some((c) => ownerOf(c, rec) === undefined)) continue;
    let best: { c: Candidate; load: number; position: number } | undefined;
    /** A drain's fallback when no candidate has room under its share: the least loaded. */
    let leastLoaded: typeof best;
    for (let p = 1; p < queue.length; p++) {
      const c = queue[p]!;
      if (c.value === self || !eligible(c, rec)) continue;
      if (draining) {
        // A drain takes the nearest candidate with room under its share (rounded up): the
        // first standby, mostly, since standbys are spread per leader (planPromotions) — one
        // delete per name, no standby re-queued. The least loaded one anywhere in the queue
        // re-queued p − 1 standbys per name (by request then: a drain of 250 names ran at
        // ~115 moves/s on the 8-host bench fleet).
        const l = load.get(c.value) ?? 0;
        if (l + 1 <= Math.ceil(shareOf(c.value) - 1e-9)) {
          best = { c, load: l, position: p };
          break;
        }
        if (!leastLoaded || l < leastLoaded.load) leastLoaded = { c, load: l, position: p };
        continue;
      }
      // A preferred host inside its hold-down gets the name neither as preferred nor by
      // balancing: a host that flaps must not bounce its names either way.
      if (prefer?.includes(c.value) && !(input.settled?.(c.value) ?? true)) continue;
      const l = load.get(c.value) ?? 0;
      // g's excess below ours by more than 1: the move lowers Σ (load − share)².
      const lower = l - shareOf(c.value) < myLoad - shareOf(self) - 1 - 1e-9;
      if (l >= shareOf(c.value) - 1e-9 || !lower || (quota.get(c.value) ?? 0) <= 0) continue;
      // Balance takes the nearest candidate that qualifies (each standby ahead of it is
      // re-queued: writes, and events on every host).
      best = { c, load: l, position: p };
      break;
    }
    best ??= leastLoaded;
    if (!best) continue;
    out.push(moveTo(name, queue, best.position, rec));
    load.set(self, myLoad - 1);
    load.set(best.c.value, best.load + 1);
    if (!draining) quota.set(best.c.value, (quota.get(best.c.value) ?? 0) - 1);
  }
  return out;
}

/**
 * How many names this host gives to each host below its share, in this pass. Every host with
 * a surplus sees the same loads and shares, so each computes the same flows and fills its
 * own part — concurrent senders fill a deficit once, not each of them whole. Each host's
 * target is its share rounded: down, and up for the largest remainders (ties: the host that
 * leads more now, then node id) until the targets add up to the shares' sum; the surpluses
 * over the targets are poured into the deficits under them in node-id order, so every flow
 * is a whole number and one wave lands every host on its target. (Parts in proportion to the surplus, rounded down,
 * left a name or a few to move a pass later, one at a time: the trailing second of the
 * bench's join and start.) When that leaves this host nothing although it is above its
 * share — views that differ for a moment — the host with the largest surplus gives one to
 * every host below its share.
 */
function quotas(
  load: ReadonlyMap<string, number>,
  share: ReadonlyMap<string, number>,
  self: string,
  rec: ControlRecords,
): Map<string, number> {
  // Our hosts without a share (weight 0, draining) give all they lead; leaders that are not
  // our hosts (foreign candidates) take no part: nobody acts for them.
  const ids = [...new Set([...share.keys(), ...[...load.keys()].filter((id) => rec.leaseByHost.has(id))])].sort();
  const target = new Map<string, number>();
  const remainders: [string, number][] = [];
  let sum = 0;
  let assigned = 0;
  for (const id of ids) {
    const sh = share.get(id) ?? 0;
    const lo = Math.floor(sh + 1e-9);
    target.set(id, lo);
    sum += sh;
    assigned += lo;
    remainders.push([id, Math.round((sh - lo) * 1e6)]);
  }
  // Equal remainders: up for the host that leads more now (one move fewer), then by node id.
  const led = (id: string): number => load.get(id) ?? 0;
  remainders.sort((x, y) => y[1] - x[1] || led(y[0]) - led(x[0]) || (x[0] < y[0] ? -1 : 1));
  for (let i = 0, extra = Math.round(sum) - assigned; i < remainders.length && extra > 0; i++, extra--) {
    const id = remainders[i]![0];
    target.set(id, target.get(id)! + 1);
  }
  const give: [string, number][] = [];
  const take: [string, number][] = [];
  let top: string | undefined;
  let topSurplus = 0;
  for (const id of ids) {
    const l = load.get(id) ?? 0;
    const t = target.get(id)!;
    const excess = l - (share.get(id) ?? 0);
    if (excess > topSurplus + 1e-9) [top, topSurplus] = [id, excess];
    if (l > t) give.push([id, l - t]);
    else if (l < t) take.push([id, t - l]);
  }
  const quota = new Map<string, number>();
  for (const id of ids) if ((share.get(id) ?? 0) - (load.get(id) ?? 0) > 1e-9) quota.set(id, 0);
  let i = 0;
  for (const [from, amount] of give) {
    let left = amount;
    while (left > 0 && i < take.length) {
      const d = take[i]!;
      const n = Math.min(left, d[1]);
      if (from === self) quota.set(d[0], (quota.get(d[0]) ?? 0) + n);
      left -= n;
      d[1] -= n;
      if (d[1] === 0) i++;
    }
  }
  let any = 0;
  for (const q of quota.values()) any += q;
  if (any === 0 && top === self) for (const id of quota.keys()) quota.set(id, 1);
  return quota;
}

/**
 * Standbys balance too, so that a crash spreads: the first standby of a name (queue[1])
 * takes it when the leader dies, so for each leader its names' first standbys should be
 * spread over the other hosts. A host that is first standby of a name asks for a
 * candidate behind it that is first standby of at least two fewer of that leader's names
 * to take its place: it writes `<prefix>/next/<name>` = { from: leader key, to }, and
 * every standby between them — itself first — re-queues at the back. Each promotion
 * lowers Σ (per leader and standby)², so they end. Names with a foreign candidate are
 * left alone.
 */
export function planPromotions(input: Omit<PlanInput, 'balance'> & { readonly stepping: ReadonlySet<string> }): PlannedMove[] {
  const { rec, self, limit } = input;
  if (limit <= 0 || rec.draining.has(self)) return [];
  // Counted per leader: where each leader's names would go if it died now.
  // Leader → first standby → names: nested, so that counting a name builds no string.
  const byLeader = new Map<string, Map<string, number>>();
  const count = (leader: string, next: string): number => byLeader.get(leader)?.get(next) ?? 0;
  const setCount = (leader: string, next: string, n: number): void => {
    let m = byLeader.get(leader);
    if (!m) byLeader.set(leader, (m = new Map()));
    m.set(next, n);
  };
  const mine: [string, readonly Candidate[], string][] = [];
  for (const [name, queue] of input.queues) {
    const head = queue[0];
    const next = queue[1];
    if (!head || !next) continue;
    const leader = ownerOf(head, rec);
    let owner = ownerOf(next, rec);
    if (leader === undefined || owner === undefined) continue;
    // A promotion under way (anyone's request we see, or our own) counts as done.
    const pending = rec.nexts.get(name);
    if (pending?.to !== undefined && pending.from === head.key) owner = pending.to;
    else if (owner === self && input.stepping.has(name)) continue;
    setCount(leader, owner, count(leader, owner) + 1);
    // Not while its leader drains: a drain hands the name to its first standby as planned
    // (planMoves), and a promotion meanwhile would hand it to someone else (seen in the
    // bench: receivers above their share, handing drained names on again).
    if (
      owner === self &&
      queue.length > 2 &&
      !rec.draining.has(leader) &&
      (input.movable?.(name) ?? true) &&
      !rec.moves.has(name) &&
      !rec.nexts.has(name)
    )
      mine.push([name, queue, leader]);
  }
  const out: PlannedMove[] = [];
  const zoneOf = (id: string): string | undefined => rec.zones.get(id);
  const selfEligible = weightOf(self, rec) > 0;
  for (const [name, queue, leader] of mine) {
    if (out.length >= limit) break;
    if (queue.some((c) => ownerOf(c, rec) === undefined)) continue;
    const myLoad = count(leader, self);
    // In order: a standby of weight 0 makes way for any eligible one; one in its leader's
    // zone for one in another zone; else the spread per leader decides. Each step lowers
    // (ineligible first standbys, same-zone first standbys, Σ per-leader load²) in that
    // order, so promotions end.
    const lz = zoneOf(leader);
    const sameZone = (id: string): boolean => lz !== undefined && zoneOf(id) === lz;
    const fixZone = selfEligible && sameZone(self);
    let best: { c: Candidate; load: number; position: number } | undefined;
    for (let p = 2; p < queue.length; p++) {
      const c = queue[p]!;
      if (c.value === self || c.value === leader || !eligible(c, rec)) continue;
      const l = count(leader, c.value);
      if (selfEligible) {
        if (fixZone ? sameZone(c.value) : sameZone(c.value) || l > myLoad - 2) continue;
      }
      if (!best || l < best.load) best = { c, load: l, position: p };
    }
    if (!best) continue;
    const past = promotesPast(queue, best.position, rec);
    out.push({ name, from: queue[0]!.key, to: best.c.value, position: best.position, ...(past ? { past } : {}) });
    setCount(leader, self, myLoad - 1);
    setCount(leader, best.c.value, best.load + 1);
  }
  return out;
}
