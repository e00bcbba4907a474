/**
 * Rendezvous (highest-random-weight) hashing of a host and a name: every host computes the
 * same rank for every (host, name) pair without talking to the others. Two uses: the order a
 * host sends a turn's campaigns in (campaign.ts) and the host that campaigns first for a
 * name nobody queues for at a fleet's start (features/start-gate.ts) — the same hash, so a
 * host's first batches are the names it is meant to lead.
 *
 * FNV-1a (32 bits) of `<node id> NUL <name key prefix>`, then murmur3's finaliser: FNV-1a
 * alone leaves the low bits of near-identical strings (`n1/`, `n2/`) correlated, and these
 * ranks are compared as uniform numbers.
 */
export function rendezvousRank(nodeId: string, namePrefix: string): number {
  let h = 0x811c9dc5;
  const s = `${nodeId}\u0000${namePrefix}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The host of `hosts` (id and weight > 0) that `namePrefix` goes to: the lowest weighted
 * score −ln(u) / weight, u the rank mapped into (0, 1) — a host of weight 2 wins twice as
 * many names as one of weight 1, and a host joining or leaving changes the owner of only
 * the names it wins or held. Undefined when no host has a weight above 0.
 */
export function rendezvousOwner(namePrefix: string, hosts: Iterable<{ readonly id: string; readonly weight: number }>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const { id, weight } of hosts) {
    if (!(weight > 0)) continue;
    const u = (rendezvousRank(id, namePrefix) + 1) / 4294967297;
    const score = -Math.log(u) / weight;
    if (score < bestScore || (score === bestScore && best !== undefined && id < best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}

/**
 * Owners for a set of names, each host given its quota — Σ over hosts of ⌊n · w / W⌋ or one
 * more, by largest remainder (ties: the lower id) — instead of rendezvous alone, whose counts
 * scatter by ±√n (237…264 of 2,000 names over 8 hosts) and leave a balancing wave to follow.
 * Each name goes to its rendezvous owner; then, name by name in key order, a name whose
 * owner is over its quota goes to its best-ranked host under quota. `fixed` names (a
 * preferred host) keep theirs and count in its load. Every host computing this from the same
 * names and hosts gets the same answer; from slightly different ones, mostly the same (the
 * rendezvous part moves only the names of a host that differs).
 */
export function rendezvousAssign(
  namePrefixes: readonly string[],
  hosts: readonly { readonly id: string; readonly weight: number }[],
  fixed: (namePrefix: string) => string | undefined = () => undefined,
): Map<string, string> {
  const out = new Map<string, string>();
  const eligible = hosts.filter((h) => h.weight > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (eligible.length === 0) return out;
  const names = [...namePrefixes].sort();
  const total = eligible.reduce((s, h) => s + h.weight, 0);
  const quota = new Map<string, number>();
  const exact = eligible.map((h) => ({ id: h.id, q: (names.length * h.weight) / total }));
  let left = names.length;
  for (const e of exact) {
    quota.set(e.id, Math.floor(e.q));
    left -= Math.floor(e.q);
  }
  const byRemainder = [...exact].sort((a, b) => b.q - Math.floor(b.q) - (a.q - Math.floor(a.q)) || (a.id < b.id ? -1 : 1));
  for (let i = 0; i < left; i++) quota.set(byRemainder[i]!.id, quota.get(byRemainder[i]!.id)! + 1);
  const load = new Map<string, number>(eligible.map((h) => [h.id, 0]));
  const isFixed = new Set<string>();
  for (const n of names) {
    const f = fixed(n);
    const owner = f !== undefined && load.has(f) ? f : rendezvousOwner(n, eligible)!;
    if (f !== undefined && load.has(f)) isFixed.add(n);
    out.set(n, owner);
    load.set(owner, load.get(owner)! + 1);
  }
  for (const n of names) {
    const owner = out.get(n)!;
    if (isFixed.has(n) || load.get(owner)! <= quota.get(owner)!) continue;
    const under = eligible.filter((h) => load.get(h.id)! < quota.get(h.id)!);
    const to = rendezvousOwner(n, under);
    if (to === undefined) continue;
    out.set(n, to);
    load.set(owner, load.get(owner)! - 1);
    load.set(to, load.get(to)! + 1);
  }
  return out;
}
