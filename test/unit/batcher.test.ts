// TickBatcher (src/core/batcher.ts): the requests of one turn go out together; writes of one
// key keep their order, and a batch waiting for its key lets unrelated batches past.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TickBatcher } from '../../src/core/batcher.js';
import { CampaignBatcher, JOINING_AT } from '../../src/core/campaign.js';
import type { CampaignRequest, CampaignResult, Store } from '../../src/etcd/store.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Write {
  key: string;
  v: number;
}

test('batcher: a batch whose key is in flight waits, later batches without its keys go past, writes of one key keep their order', async () => {
  const sent: string[] = [];
  const answers: (() => void)[] = [];
  const b = new TickBatcher<Write, true>(
    (batch) => {
      sent.push(batch.map((w) => `${w.key}${w.v}`).join('+'));
      return new Promise((resolve) => answers.push(() => resolve(batch.map(() => true as const))));
    },
    { keyOf: (w) => w.key },
  );
  const done: Promise<true>[] = [];
  done.push(b.add({ key: 'a', v: 1 }));
  await turn();
  assert.deepEqual(sent, ['a1'], 'the first batch goes at once');
  done.push(b.add({ key: 'a', v: 2 }), b.add({ key: 'c', v: 1 }));
  await turn();
  assert.deepEqual(sent, ['a1'], 'a1 is in flight: the batch with a2 waits (and c1 with it, in that batch)');
  done.push(b.add({ key: 'd', v: 1 }));
  await turn();
  assert.deepEqual(sent, ['a1', 'd1'], 'd1 shares no key with anything waiting: it goes past');
  done.push(b.add({ key: 'c', v: 2 }));
  await turn();
  assert.deepEqual(sent, ['a1', 'd1'], 'c2 waits behind the waiting c1');
  answers.shift()!(); // a1 answered
  await turn();
  assert.deepEqual(sent, ['a1', 'd1', 'a2+c1'], 'a2 and c1 go once a1 is answered; c2 still waits for c1');
  answers.shift()!(); // d1
  answers.shift()!(); // a2+c1
  await turn();
  assert.deepEqual(sent, ['a1', 'd1', 'a2+c1', 'c2']);
  answers.shift()!();
  assert.equal((await Promise.all(done)).length, 5, 'every write answered');
});

test('batcher: one turn of 250 requests is three batches of at most 100, each request answered with its own result', async () => {
  const sizes: number[] = [];
  const b = new TickBatcher<number, number>(async (batch) => {
    sizes.push(batch.length);
    return batch.map((n) => (n % 7 === 0 ? new Error(`no ${n}`) : n * 2));
  });
  const results = await Promise.allSettled(Array.from({ length: 250 }, (_, i) => b.add(i)));
  assert.deepEqual(sizes, [100, 100, 50]);
  results.forEach((r, i) => {
    if (i % 7 === 0) assert.equal(r.status === 'rejected' && (r.reason as Error).message, `no ${i}`);
    else assert.deepEqual(r, { status: 'fulfilled', value: i * 2 });
  });
});

test('campaign batcher: a host is joining while at least JOINING_AT entering campaigns are out, and no longer once all are answered and its view has their keys', async () => {
  const answers: (() => void)[] = [];
  const store = {
    campaign: (batch: readonly CampaignRequest[]) =>
      new Promise<CampaignResult[]>((resolve) =>
        answers.push(() => resolve(batch.map((_, i) => ({ revision: 900n, candidates: [], createRevision: BigInt(100 + i) })))),
      ),
  } as unknown as Store;
  const b = new CampaignBatcher(store, () => 1_000);
  const seen: boolean[] = [];
  const seenAt: (bigint | undefined)[] = [];
  b.onJoining = (on, at) => void (seen.push(on), seenAt.push(at));
  const req = (i: number): CampaignRequest => ({ namePrefix: `p/n${i}/`, key: `p/n${i}/1`, value: 'h', leaseId: '1' });
  const few = Array.from({ length: JOINING_AT - 1 }, (_, i) => b.campaign(req(i), true));
  const again = b.campaign(req(-1)); // a campaign on the same session again (after a hand-over): not entering
  await turn();
  assert.deepEqual(seen, [], 'one short of JOINING_AT entering campaigns: not joining');
  const more = b.campaign(req(JOINING_AT), true);
  assert.deepEqual(seen, [true]);
  let settled = false;
  const all = Promise.all([...few, again, more]).then(() => (settled = true));
  while (!settled) {
    await turn();
    while (answers.length > 0) answers.shift()!();
  }
  await all;
  await turn();
  assert.deepEqual(seen, [true, false], 'every entering campaign answered: no longer joining');
  // …once this host's view is at the highest create revision of those keys (the mover waits for it).
  assert.deepEqual(seenAt, [undefined, 199n]);
});

test('campaign batcher + start gate: a turn that makes the host joining asks the gate for each entering campaign it may hold, at the end of the turn; a smaller turn goes at once', async () => {
  const sent: string[] = [];
  const store = {
    campaign: (batch: readonly CampaignRequest[]) => {
      for (const r of batch) sent.push(r.namePrefix);
      return Promise.resolve(batch.map(() => ({ revision: 1n, candidates: [], createRevision: 1n })));
    },
  } as unknown as Store;
  const asked: string[] = [];
  const release: (() => void)[] = [];
  const b = new CampaignBatcher(store, () => 1_000);
  b.onJoining = () => undefined;
  b.startGate = {
    // Names with a candidate (here: n0…n9) are never held: they go at once.
    mayHold: (r) => !/^p\/n\d\/$/.test(r.namePrefix),
    hold: (r) => {
      asked.push(r.namePrefix);
      return new Promise<void>((resolve) => release.push(resolve));
    },
  };
  const req = (i: number): CampaignRequest => ({ namePrefix: `p/n${i}/`, key: `p/n${i}/1`, value: 'h', leaseId: '1' });
  const small = [b.campaign(req(1000), true), b.campaign(req(1001), true)];
  await Promise.all(small);
  assert.deepEqual(asked, [], 'two names: no fleet, nothing asked');
  sent.length = 0;
  const all = Array.from({ length: JOINING_AT + 10 }, (_, i) => b.campaign(req(i), true));
  for (let i = 0; i < 5; i++) await turn();
  assert.equal(asked.length, JOINING_AT, 'every name the gate may hold was asked about once the turn ended');
  assert.deepEqual(sent.sort(), Array.from({ length: 10 }, (_, i) => `p/n${i}/`).sort(), 'only the names with candidates went');
  for (const r of release.splice(0)) r();
  await Promise.all(all);
  assert.equal(sent.length, JOINING_AT + 10, 'released: every campaign went');
});
