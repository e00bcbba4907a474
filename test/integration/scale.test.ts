// Scale without timings (those live in `npm run bench`): 2,000 names in one locker share
// one lease, all lead, sit in etcd's key layout, move to a standby locker as a whole
// when the first one closes, and leave nothing behind in etcd on close.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import locked, { type Locker } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

const N = 2_000;
const prefix = 'scale/';
const names = Array.from({ length: N }, (_, i) => `job-${i}`);
const hold = (): void => {};

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  await cluster?.close();
});

/** Names `l` leads now (`singletons()` builds a fresh object: call it once per count). */
function leadingCount(l: Locker): number {
  const s = l.singletons();
  return names.filter((n) => s[n]?.isLeader).length;
}

test(`${N.toLocaleString('en-US')} names in one locker: one lease, every name led; a standby takes all over; close leaves nothing`, async () => {
  const client = new Etcd3({ hosts: cluster.clientUrls });
  // The default ttl (10 s): nothing here waits for an expiry, and on a loaded machine a
  // flood of 2,000 campaigns can slow etcd's keepalive answers to hundreds of ms.
  // Balancing off: this is about one locker holding every name and a standby taking all over.
  const a = locked(cluster.endpoints, { id: 'a', prefix, handleSignals: false, balance: false });
  const b = locked(cluster.endpoints, { id: 'b', prefix, handleSignals: false, balance: false });
  const errors: string[] = [];
  for (const l of [a, b]) l.on('error', (err) => errors.push(`${l.id()}: ${err.message}`));
  const trouble = (): string => (errors.length ? `; ${errors.length} errors, last: ${errors[errors.length - 1]}` : '');
  /** Waits until `count()` reaches N; a timeout reports the last count and the last locker error. */
  const reach = (count: () => number, what: string): Promise<true> =>
    waitFor(
      () => {
        const c = count();
        if (c < N) throw new Error(`${c} of ${N} so far${trouble()}`);
        return true as const;
      },
      { timeoutMs: 60_000, intervalMs: 100, message: what },
    );
  try {
    for (const n of names) a(n, hold);
    await reach(() => leadingCount(a), `a leads all ${N} names`);

    const leaseA = a.health().leaseId!;
    const leases = await cluster.leases();
    assert.deepEqual(
      leases.map((hex) => BigInt(`0x${hex}`).toString()),
      [leaseA],
      "exactly one lease in etcd: the locker's",
    );
    // Besides the locker's own record under `<prefix>/hosts/` (placement.ts).
    const kvs = (await client.getAll().prefix(prefix).exec()).kvs.filter((kv) => !kv.key.toString().startsWith(`${prefix}/`));
    assert.equal(kvs.length, N, 'one key per name');
    const hexA = BigInt(leaseA).toString(16);
    const keys = new Set(kvs.map((kv) => kv.key.toString()));
    for (const n of names) assert.ok(keys.has(`${prefix}${n}/${hexA}`), `key of '${n}' in etcd's layout <prefix><name>/<lease hex>`);
    for (const kv of kvs) {
      assert.equal(kv.lease, leaseA, `${kv.key.toString()} is on the locker's lease`);
      assert.equal(kv.value.toString(), 'a');
    }
    for (const n of names.filter((_, i) => i % 200 === 0)) assert.equal(await a.leader(n), 'a', `leader(${n})`);
    const singletonsA = a.singletons();
    const tokensA = new Map(names.map((n) => [n, BigInt(singletonsA[n]!.leadership!.token)]));

    for (const n of names) b(n, hold);
    await reach(() => {
      const s = b.singletons();
      return names.filter((n) => s[n]?.position === 1).length;
    }, `b queued right behind a on all ${N} names`);
    assert.equal(leadingCount(b), 0, 'the standby leads nothing while a holds every name');
    assert.equal(leadingCount(a), N, `a still leads every name${trouble()}`);
    assert.equal((await cluster.leases()).length, 2, 'one lease per locker, not per name');

    await a.close();
    await reach(() => leadingCount(b), `b leads all ${N} names after a closed`);
    const singletonsB = b.singletons();
    for (const n of names) {
      const token = BigInt(singletonsB[n]!.leadership!.token);
      assert.ok(token > tokensA.get(n)!, `token of '${n}' grows with the new leadership (${tokensA.get(n)} → ${token})`);
    }
    const leaseB = b.health().leaseId!;
    assert.deepEqual(
      (await cluster.leases()).map((hex) => BigInt(`0x${hex}`).toString()),
      [leaseB],
      "a's close revoked its lease",
    );
    const left = (await client.getAll().prefix(prefix).exec()).kvs.filter((kv) => !kv.key.toString().startsWith(`${prefix}/`));
    assert.equal(left.length, N);
    assert.ok(
      left.every((kv) => kv.lease === leaseB),
      "a's close removed every key of a",
    );

    await b.close();
    assert.equal(await client.getAll().prefix(prefix).count(), 0, 'close removes every key');
    assert.deepEqual(await cluster.leases(), [], 'close revokes the lease');
  } finally {
    await Promise.allSettled([a.close(), b.close()]);
    client.close();
  }
});
