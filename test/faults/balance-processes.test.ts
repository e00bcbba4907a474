// Balancing across host processes: a spread, a join, a SIGKILL and a drain, each judged by
// the history checker (no overlap) and by the moves it took.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import locked, { type Locker } from '../../src/index.js';
import { Etcd3 } from 'etcd3';
import { controlPrefix } from '../../src/etcd/keys.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { describeEvent, spawnHost, type Host } from '../helpers/host.js';
import { checkHistories, historyOf, ms } from '../helpers/history.js';
import { waitFor } from '../helpers/wait.js';
import { uniquePrefix, names, spread, within } from '../helpers/balance.js';

let cluster: EtcdCluster;
const lockers: Locker[] = [];
const hosts: Host[] = [];
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await Promise.allSettled(hosts.map((h) => h.kill()));
  await Promise.allSettled(lockers.map((l) => l.close()));
  await cluster?.close();
});

function make(id: string, prefix: string, options: { balance?: boolean } = {}): Locker {
  const l = locked(cluster.endpoints, { id, ttl: 5, prefix, handleSignals: false, ...options });
  lockers.push(l);
  return l;
}
describe('balance across host processes', () => {
  test('5 hosts × 200 names spread evenly; a 6th joins, one is SIGKILLed, one drains: each converges with few moves and no overlap', async (t) => {
    const prefix = uniquePrefix();
    const N = 200;
    const list = names(N);
    const group: Host[] = [];
    const ctl = make('ctl', prefix);
    const starts = (): number => group.reduce((n, h) => n + h.events.filter((e) => e.type === 'fn').length, 0);
    const loads = async (): Promise<Map<string, number>> => spread(ctl);
    /** Fewest moves from `before` to ⌊N/H⌋..⌈N/H⌉ over `ids`. */
    const fewest = (before: Map<string, number>, ids: string[]): number => {
      const lo = Math.floor(N / ids.length);
      const hi = Math.ceil(N / ids.length);
      const surplus =
        ids.reduce((s, id) => s + Math.max(0, (before.get(id) ?? 0) - hi), 0) +
        [...before].filter(([id]) => !ids.includes(id)).reduce((s, [, n]) => s + n, 0);
      const deficit = ids.reduce((s, id) => s + Math.max(0, lo - (before.get(id) ?? 0)), 0);
      return Math.max(surplus, deficit);
    };
    const converge = async (what: string, ids: string[], before: Map<string, number>, from: bigint, s0: number): Promise<void> => {
      // The state, with a generous deadline; how long it took is the figure below (the
      // bench's business: npm run bench, balance).
      await waitFor(async () => within(await loads(), ids, N), {
        timeoutMs: 60_000,
        intervalMs: 100,
        message: `${what}: ⌊N/H⌋..⌈N/H⌉ over ${ids.join(',')}`,
      });
      const took = ms(process.hrtime.bigint() - from);
      const moves = starts() - s0;
      const best = fewest(before, ids);
      const reasons: Record<string, number> = {};
      const flows: Record<string, number> = {};
      for (const h of group) {
        for (const e of h.events) {
          if (e.type === 'stop' && BigInt(e.t) > from) reasons[e.reason!] = (reasons[e.reason!] ?? 0) + 1;
          if (e.type === 'fn' && BigInt(e.t) > from) flows[h.id] = (flows[h.id] ?? 0) + 1;
        }
      }
      const watchMoves: Record<string, number> = {};
      const stalls: number[] = [];
      for (const h of group) {
        for (const e of h.events) {
          if (BigInt(e.t) <= from) continue;
          if (e.type === 'watch') watchMoves[e.reason!] = (watchMoves[e.reason!] ?? 0) + 1;
          if (e.type === 'stall') stalls.push(e.ms!);
        }
      }
      t.diagnostic(
        `${what}: spread in ${took.toFixed(0)} ms, ${moves} leadership moves (fewest possible ${best}); loads ${JSON.stringify(Object.fromEntries(await loads()))}; stops ${JSON.stringify(reasons)}; starts ${JSON.stringify(flows)}; watch moves ${JSON.stringify(watchMoves)}; event-loop stalls ≥ 200 ms ${stalls.length ? stalls.join(', ') : 'none'}`,
      );
      // Few moves — judged only when no host was starved of CPU meanwhile (no event-loop
      // stall reported): starved hosts decide on views that lag, lose leases, and make extra
      // moves (CI's full suite: 75 moves for 33 with stalls of 0.2–0.6 s, all graceful).
      if (stalls.length > 0)
        t.diagnostic(`${what}: move count not judged: host event loops stalled ${stalls.length} time(s) during the step`);
      else assert.ok(moves <= Math.ceil(1.2 * best) + 1, `${what}: ${moves} moves > 1.2 × ${best}`);
    };
    for (let i = 0; i < 5; i++) {
      group.push(
        await spawnHost({ endpoints: cluster.endpoints, id: `h${i}`, ttl: 3, prefix, names: list, fn: { kind: 'work', stopMs: 5 } }),
      );
      hosts.push(group.at(-1)!);
    }
    /**
     * Until no leadership move is left to happen: every name led by exactly one live host (no
     * hand-over between its stop and the next start), every host of `ids` within ⌊N/H⌋..⌈N/H⌉
     * (the planner has nothing to move) and no move request in etcd (none planned or under
     * way). The moves of one step must not be counted in the next; a state, not a quiet time.
     */
    const settled = async (what: string, ids: string[]): Promise<void> => {
      const c = new Etcd3({ hosts: cluster.endpoints });
      let detail = '';
      try {
        await waitFor(
          async () => {
            const leaders = new Map<string, number>();
            for (const h of group.filter((x) => x.alive)) {
              const leading = new Set<string>();
              for (const e of h.events) {
                if (e.name === undefined) continue;
                if (e.type === 'start') leading.add(e.name);
                else if (e.type === 'stop') leading.delete(e.name);
              }
              for (const n of leading) leaders.set(n, (leaders.get(n) ?? 0) + 1);
            }
            const odd = list.filter((n) => leaders.get(n) !== 1);
            const moves = (await c.getAll().prefix(controlPrefix(prefix)).keys()).filter((k) => /\/move\//.test(k.slice(prefix.length)));
            const counts = await loads();
            detail = `names without one leader: ${odd.slice(0, 10).join(',') || 'none'}; move requests: ${moves.length}; loads ${JSON.stringify(Object.fromEntries(counts))}`;
            return odd.length === 0 && moves.length === 0 && within(counts, ids, N);
          },
          { timeoutMs: 60_000, intervalMs: 200, message: what },
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${detail}`);
      } finally {
        c.close();
      }
    };
    /**
     * Until, for every leader, the other hosts are first standby of its names evenly (to
     * within one: the rule of planPromotions). On timeout: the uneven leaders, and the
     * move and standby requests left in etcd (a void one left behind once blocked this).
     */
    const standbysEven = async (what: string, ids: string[]): Promise<void> => {
      let detail = '';
      try {
        await waitFor(
          async () => {
            const per = new Map<string, Map<string, number>>();
            for (const s of await ctl.status()) {
              const [leader, next] = s.candidates;
              if (leader === undefined || next === undefined) continue;
              const m = per.get(leader) ?? new Map(ids.filter((id) => id !== leader).map((id) => [id, 0]));
              m.set(next, (m.get(next) ?? 0) + 1);
              per.set(leader, m);
            }
            const uneven = [...per].filter(([, m]) => Math.max(...m.values()) - Math.min(...m.values()) > 1);
            detail = uneven.map(([l, m]) => `${l}: ${JSON.stringify(Object.fromEntries(m))}`).join('; ');
            return uneven.length === 0;
          },
          { timeoutMs: 30_000, intervalMs: 200, message: what },
        );
      } catch (err) {
        const c = new Etcd3({ hosts: cluster.endpoints });
        try {
          const requests = await c.getAll().prefix(controlPrefix(prefix)).strings();
          const left = Object.entries(requests).filter(([k]) => /\/(move|next)\//.test(k.slice(prefix.length)));
          throw new Error(`${(err as Error).message}\nuneven: ${detail}\nrequests in etcd: ${JSON.stringify(left)}`);
        } finally {
          c.close();
        }
      }
    };
    const ids5 = group.map((h) => h.id);
    await settled('the spread over 5 hosts settled', ids5);

    // A sixth host joins: the five give it its share.
    let before = await loads();
    let from = process.hrtime.bigint();
    let s0 = starts();
    group.push(await spawnHost({ endpoints: cluster.endpoints, id: 'h5', ttl: 3, prefix, names: list, fn: { kind: 'work', stopMs: 5 } }));
    hosts.push(group.at(-1)!);
    await converge('join', [...ids5, 'h5'], before, from, s0);

    // A host crashes: its names fail over after the TTL — spread, since standbys balance
    // too (each host is next in line for about as many names) — then the survivors even out.
    // Wait until the join's moves are done and the standbys are even per leader (the rule
    // balances them per leader, which the crash below then shows).
    await settled(
      'the spread over 6 hosts settled',
      group.map((h) => h.id),
    );
    await standbysEven(
      'first standbys even per leader',
      group.map((h) => h.id),
    );
    t.diagnostic(`first standbys: ${JSON.stringify((await ctl.status({ hosts: true })).map((h) => [h.id, h.next]))}`);
    before = await loads();
    const victim = group[1]!;
    from = process.hrtime.bigint();
    s0 = starts();
    victim.kill('SIGKILL');
    await victim.exited;
    const live = group.filter((h) => h !== victim).map((h) => h.id);
    await converge('crash', live, before, from, s0);

    // A host drains: every name it leads moves gracefully; it leads nothing afterwards.
    await settled('the spread after the crash settled', live);
    before = await loads();
    const drained = group[2]!;
    from = process.hrtime.bigint();
    s0 = starts();
    await ctl.drain({ nodeId: drained.id });
    const rest = live.filter((id) => id !== drained.id);
    await converge('drain', rest, before, from, s0);
    assert.equal((await loads()).get(drained.id) ?? 0, 0, 'the drained host leads nothing');

    const end = process.hrtime.bigint();
    const report = checkHistories(
      group.map((h) => historyOf(h)),
      { endOfRun: end },
    );
    if (report.wakeOverlaps.length) {
      t.diagnostic(
        `tolerated: ${report.wakeOverlaps.length} overlap(s) right after a host's event loop stalled (starved of CPU), longest ${Math.max(...report.wakeOverlaps.map((o) => o.ms)).toFixed(1)} ms`,
      );
    }
    // On an overlap: both hosts' events of that name (and their watch moves, errors) around it.
    for (const o of report.overlaps.slice(0, 3)) {
      for (const label of [o.a.label, o.b.label]) {
        const h = group.find((x) => x.id === label)!;
        for (const e of h.events) {
          const te = BigInt(e.t);
          if (te < o.from - 3_000_000_000n || te > o.to + 500_000_000n) continue;
          if (e.name !== undefined && e.name !== o.name) continue;
          if (e.type === 'ready') continue;
          t.diagnostic(`${o.name}: ${ms(te - o.from).toFixed(1)} ms ${label} ${describeEvent(e)}`);
        }
      }
    }
    assert.deepEqual(
      report.overlaps.map((o) => `${o.name}: ${o.a.label}/${o.b.label} ${o.ms.toFixed(1)} ms`),
      [],
      'overlapping fn executions',
    );
    assert.deepEqual(report.anomalies, []);
    // Graceful moves leave a name without a leader for one hand-over (milliseconds; the bench
    // measures it): how long is a figure here, not a verdict. The state: every name that lost
    // its leader — moved, drained or failed over — has one again at the end of the run.
    const moved = report.gaps.filter((g) => g.prevHost !== victim.id);
    const longest = moved.reduce<(typeof moved)[number] | undefined>((w, g) => (!w || g.ms > w.ms ? g : w), undefined);
    if (longest) t.diagnostic(`longest leaderless gap after a graceful move: ${longest.name} ${longest.ms.toFixed(1)} ms`);
    // On the longest gap: what every host said around it (errors, watch moves, that name's events).
    for (const g of longest && longest.ms > 1_000 ? [longest] : []) {
      for (const h of group) {
        for (const e of h.events) {
          const te = BigInt(e.t);
          if (te < g.from - 1_500_000_000n || te > (g.to ?? end) + 300_000_000n) continue;
          if (e.name !== undefined && e.name !== g.name) continue;
          if (e.type === 'ready') continue;
          t.diagnostic(`gap of ${g.name}: ${ms(te - g.from).toFixed(1)} ms ${h.id} ${describeEvent(e)}`);
        }
      }
    }
    assert.deepEqual(
      report.gaps.filter((g) => g.to === undefined).map((g) => `${g.name} after ${g.prev}`),
      [],
      'a name left without a leader at the end of the run',
    );
    await ctl.undrain({ nodeId: drained.id });
  });
});
