// The store's hand-over past standbys (src/etcd/store.ts, HandOverPast) against a real etcd:
// the leader's key and the standbys' keys ahead of the target go in one revision when every
// guard holds, and the leader's key alone when one does not — etcd must take the nested
// transaction (a failure branch that deletes the same key as the success branch). The same
// for a promotion: a first standby making way, guarded by the leader's key too.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { storeOnEtcd } from '../helpers/store.js';
import type { HandOverPast, KeyRevision } from '../../src/etcd/store.js';

const etcd = storeOnEtcd();

/** Puts `n` keys under `name/` one after the other (queue order), each with its create revision. */
async function queue(name: string, n: number): Promise<{ key: string; createRevision: bigint }[]> {
  const out: { key: string; createRevision: bigint }[] = [];
  for (let i = 0; i < n; i++) {
    const key = `${name}/${i}`;
    const res = await etcd.client.put(key).value(`h${i}`).exec();
    out.push({ key, createRevision: BigInt(res.header.revision) });
  }
  return out;
}
const left = async (name: string): Promise<string[]> => (await etcd.client.getAll().prefix(`${name}/`).keys()).sort();
/** `key` resigns with the keys ahead of `target` (and, for a promotion, the leader's key held): one request, guarded by its own create revision. */
const resignPast = (key: KeyRevision, past: HandOverPast): Promise<void> =>
  etcd.store.resign([{ key: key.key, guard: { createRevision: key.createRevision }, past }], 5_000);

describe('hand-over past standbys (one transaction)', () => {
  test('every guard holds: the leader and the standbys ahead of the target go in one revision', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, s1, s2, target, back] = await queue(name, 5);
    const before = BigInt((await etcd.client.get('nothing').exec()).header.revision);
    await resignPast(lead!, { keys: [s1!, s2!], target: target! });
    assert.deepEqual(await left(name), [target!.key, back!.key], 'the target is first now');
    const after = BigInt((await etcd.client.get('nothing').exec()).header.revision);
    assert.equal(after, before + 1n, 'one revision for the three deletes');
  });

  test('a standby ahead changed (it queued again): the leader key alone goes — a plain hand-over', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, s1, target] = await queue(name, 3);
    await etcd.client.delete().key(s1!.key).exec();
    await etcd.client.put(s1!.key).value('h1 again').exec(); // same key, new create revision
    await resignPast(lead!, { keys: [s1!], target: target! });
    assert.deepEqual(await left(name), [s1!.key, target!.key].sort());
  });

  test('the target is gone: the leader key alone goes, the standbys ahead stay', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, s1, target] = await queue(name, 3);
    await etcd.client.delete().key(target!.key).exec();
    await resignPast(lead!, { keys: [s1!], target: target! });
    assert.deepEqual(await left(name), [s1!.key]);
  });

  test('the leader key is not ours any more: nothing is deleted', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, s1, target] = await queue(name, 3);
    await etcd.store.resign(
      [{ key: lead!.key, guard: { createRevision: lead!.createRevision + 100n }, past: { keys: [s1!], target: target! } }],
      5_000,
    );
    assert.deepEqual(await left(name), [lead!.key, s1!.key, target!.key].sort());
  });

  test('batched with plain deletes of other names: each request keeps its own guards', async () => {
    const a = `p${Math.random().toString(36).slice(2, 8)}`;
    const b = `p${Math.random().toString(36).slice(2, 8)}`;
    const [la, sa, ta] = await queue(a, 3);
    const [lb, sb] = await queue(b, 2);
    await etcd.store.resign(
      [
        { key: la!.key, guard: { createRevision: la!.createRevision }, past: { keys: [sa!], target: ta! } },
        { key: lb!.key, guard: { createRevision: lb!.createRevision } },
      ],
      5_000,
    );
    assert.deepEqual(await left(a), [ta!.key]);
    assert.deepEqual(await left(b), [sb!.key]);
  });

  // A promotion: the first standby makes way for a candidate further back while the leader
  // stays (placement.ts promotesPast) — guarded by the leader's key as well.
  test('a promotion: the first standby and the standbys ahead of the target go, the leader stays', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, first, s2, target, back] = await queue(name, 5);
    await resignPast(first!, { keys: [s2!], target: target!, leader: lead! });
    assert.deepEqual(await left(name), [lead!.key, target!.key, back!.key].sort(), 'the target is first standby now');
  });

  test('a promotion whose leader is gone: nothing goes — the first standby is next to lead', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, first, s2, target] = await queue(name, 4);
    await etcd.client.delete().key(lead!.key).exec();
    await resignPast(first!, { keys: [s2!], target: target!, leader: lead! });
    assert.deepEqual(await left(name), [first!.key, s2!.key, target!.key].sort());
  });

  test('a promotion whose target is gone: the first standby alone steps back, the leader stays', async () => {
    const name = `p${Math.random().toString(36).slice(2, 8)}`;
    const [lead, first, s2, target] = await queue(name, 4);
    await etcd.client.delete().key(target!.key).exec();
    await resignPast(first!, { keys: [s2!], target: target!, leader: lead! });
    assert.deepEqual(await left(name), [lead!.key, s2!.key].sort());
  });
});
