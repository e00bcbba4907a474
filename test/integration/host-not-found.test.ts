// drain, undrain and failover { to } with a node id that no live host has: a typo would
// otherwise write an order that moves nothing and resolves at once ("drained: 0 moved").
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import locked, { HostNotFoundError, isHandOverError, isHostNotFoundError, type Locker, type SingletonFunction } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
const lockers: Locker[] = [];
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await Promise.allSettled(lockers.map((l) => l.close()));
  await cluster?.close();
});

function make(id: string, prefix: string): Locker {
  const l = locked(cluster.endpoints, { id, ttl: 5, prefix, handleSignals: false, balance: false });
  lockers.push(l);
  return l;
}

const notFound = (id: string, live: string[]) => (e: unknown) =>
  isHostNotFoundError(e) &&
  e instanceof HostNotFoundError &&
  e.nodeId === id &&
  e.liveIds.join() === live.join() &&
  e.message.includes(`'${id}'`);

test('an id no live host has: drain, undrain and failover { to } reject naming it and the live ids; force writes the order anyway', async () => {
  const prefix = `nf${Math.random().toString(36).slice(2, 8)}/`;
  const [a, b, c] = ['a', 'b', 'c'].map((id) => make(id, prefix)) as [Locker, Locker, Locker];
  // Leads until its leadership ends (close), then settles.
  const hold: SingletonFunction = (_remove, l) =>
    new Promise<void>((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true }));
  a('x', hold);
  b('x', hold);
  c('y', hold); // live, but not a candidate for x
  const operator = make('operator', prefix);
  await waitFor(async () => (await operator.status()).map((s) => s.candidates.length).join() === '2,1', {
    timeoutMs: 20_000,
    message: 'a, b queue for x; c for y',
  });

  await assert.rejects(operator.drain({ nodeId: 'zz' }), notFound('zz', ['a', 'b', 'c']));
  await assert.rejects(operator.undrain({ nodeId: 'zz' }), notFound('zz', ['a', 'b', 'c']));
  await assert.rejects(operator.failover('x', { to: 'zz' }), notFound('zz', ['a', 'b', 'c']));
  // A live host that does not queue for the name is another mistake, told apart.
  await assert.rejects(operator.failover('x', { to: 'c' }), (e: unknown) => isHandOverError(e) && e.kind === 'not-queued');
  assert.equal(
    (await operator.status({ hosts: true })).some((h) => h.id === 'zz'),
    false,
    'no drain order was written for zz',
  );

  // force: an order for a host about to start; once it exists, undrain knows the id.
  await operator.drain({ nodeId: 'zz', force: true });
  assert.equal((await operator.status({ hosts: true })).find((h) => h.id === 'zz')?.draining, true);
  await operator.undrain({ nodeId: 'zz' });
  assert.equal(
    (await operator.status({ hosts: true })).some((h) => h.id === 'zz'),
    false,
    'the order is gone',
  );
  await operator.undrain({ nodeId: 'zz', force: true });

  // A live host is drained as before.
  await operator.drain({ nodeId: 'c' });
  assert.equal((await operator.status({ hosts: true })).find((h) => h.id === 'c')?.draining, true);
  await operator.undrain({ nodeId: 'c' });
});
