// The requester's side of a graceful failover (handover-request.ts) through the Store and the injected
// clock only: on the simulation's in-memory etcd and virtual time, so a 10-s deadline takes
// no real time and its edge is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHandOverError } from '../../src/core/errors.js';
import { drainKey, hostKey, leaseHex, moveKey } from '../../src/etcd/keys.js';
import { requestHandOver } from '../../src/features/handover-request.js';
import { knownHosts } from '../../src/features/host-status.js';
import { EtcdModel } from '../helpers/sim/etcd-model.js';
import { Scheduler } from '../helpers/sim/scheduler.js';
import { SimStore } from '../helpers/sim/sim-store.js';

const P = 'p/';

/** A model with candidates `a` (leader) and `b` of name n0, the requester's store (1 ms each way) and its clock. */
function setup(): { sched: Scheduler; model: EtcdModel; store: SimStore; leaderKey: string } {
  const sched = new Scheduler({ choose: () => 0 });
  const model = new EtcdModel(() => sched.now);
  const store = new SimStore('requester', model, sched, () => 0.5, { latency: [1, 1], lossAfterApply: 0 });
  const keys: string[] = [];
  for (const id of ['a', 'b']) {
    const lease = model.grant(60);
    const key = `${P}n0/${leaseHex(lease)}`;
    model.campaign(`${P}n0/`, key, id, lease, false);
    model.put(hostKey(P, id), JSON.stringify({ lease: leaseHex(lease) }), lease);
    keys.push(key);
  }
  return { sched, model, store, leaderKey: keys[0]! };
}

/** Settles `p` on virtual time; resolves with its outcome and the virtual time it settled at. */
async function settle<T>(sched: Scheduler, p: Promise<T>, until: number): Promise<{ value?: T; error?: unknown; at: number }> {
  let out: { value?: T; error?: unknown; at: number } | undefined;
  p.then(
    (value) => (out = { value, at: sched.now }),
    (error: unknown) => (out = { error, at: sched.now }),
  );
  await sched.run(until);
  assert.ok(out, `settled within ${until} virtual ms`);
  return out;
}

test('a leader that does not act: HandOverError timeout at the deadline of the injected clock, and the request is deleted', async () => {
  const { sched, model, store } = setup();
  const r = await settle(
    sched,
    requestHandOver(store, sched.clock('requester'), P, 'n0', 'cli', { to: 'b', timeoutMs: 10_000, requestTimeoutMs: 2_000 }),
    30_000,
  );
  assert.ok(isHandOverError(r.error) && r.error.kind === 'timeout', `rejected with a timeout: ${String(r.error)}`);
  assert.ok(r.at >= 10_000 && r.at < 10_200, `gave up at the deadline (virtual ${r.at} ms)`);
  assert.equal(model.kvs.has(moveKey(P, 'n0')), false, 'the move request was deleted');
});

test('a leader that hands over: resolves with the target, after the old key is gone, and deletes the request', async () => {
  const { sched, model, store, leaderKey } = setup();
  // The leader: 300 ms after it sees the request, its fn has settled and it deletes its key.
  let requested = -1;
  model.onPut = (kv) => {
    if (kv.key !== moveKey(P, 'n0')) return;
    requested = sched.now;
    assert.match(kv.value, /"from":"p\/n0\/[0-9a-f]+","to":"b","by":"cli"/);
    sched.after(300, () => model.deleteKey(leaderKey, undefined, 'resign'));
  };
  const r = await settle(
    sched,
    requestHandOver(store, sched.clock('requester'), P, 'n0', 'cli', { to: 'b', timeoutMs: 10_000, requestTimeoutMs: 2_000 }),
    30_000,
  );
  assert.equal(r.value, 'b');
  assert.ok(requested >= 0 && r.at >= requested + 300 && r.at < requested + 400, `resolved after the delete (${requested} → ${r.at})`);
  assert.equal(model.kvs.has(moveKey(P, 'n0')), false, 'the move request was deleted');
});

test('a draining target is refused before any request is written; knownHosts lists live hosts and drain orders', async () => {
  const { sched, model, store } = setup();
  model.put(drainKey(P, 'b'), '{}', undefined);
  model.put(drainKey(P, 'gone'), '{}', undefined);
  let writes = 0;
  model.onPut = () => writes++;
  const r = await settle(
    sched,
    requestHandOver(store, sched.clock('requester'), P, 'n0', 'cli', { to: 'b', timeoutMs: 10_000, requestTimeoutMs: 2_000 }),
    30_000,
  );
  assert.ok(isHandOverError(r.error) && r.error.kind === 'other', `refused: ${String(r.error)}`);
  assert.equal(writes, 0, 'nothing written');
  const hosts = await settle(sched, knownHosts(store, P, 2_000), 60_000);
  assert.deepEqual(hosts.value?.live, ['a', 'b']);
  assert.deepEqual([...(hosts.value?.draining ?? [])].sort(), ['b', 'gone']);
});
