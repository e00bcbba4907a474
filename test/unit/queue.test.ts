// One name's queue (src/core/queue.ts): pure ordering logic. Revisions, snapshots and
// watch events are the PrefixView's (view.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, type KeyEvent } from '../../src/core/queue.js';

const put = (key: string, create: bigint, mod = create, value = key): KeyEvent => ({
  type: 'put',
  key,
  value,
  createRevision: create,
  modRevision: mod,
});
const del = (key: string, mod: bigint): KeyEvent => ({ type: 'delete', key, value: '', createRevision: 0n, modRevision: mod });

test('the leader is the key with the lowest create revision, whatever the arrival order', () => {
  const q = new Queue([
    { key: 'n/c', value: 'c', createRevision: 30n },
    { key: 'n/a', value: 'a', createRevision: 10n },
  ]);
  q.apply(put('n/b', 20n, 31n)); // impossible in etcd (a new key has a new revision) but order must not matter
  assert.equal(q.head()?.key, 'n/a');
  assert.deepEqual(
    q.ordered().map((c) => c.key),
    ['n/a', 'n/b', 'n/c'],
  );
  q.apply(del('n/a', 32n));
  assert.equal(q.head()?.key, 'n/b');
  assert.equal(q.indexOf('n/c'), 1);
});

test('a put of an existing key with the same create revision changes nothing', () => {
  const q = new Queue([{ key: 'n/a', value: 'a', createRevision: 10n }]);
  assert.equal(q.apply(put('n/a', 10n, 20n, 'n/a')), true, 'value changed');
  assert.equal(q.apply(put('n/a', 10n, 21n, 'n/a')), false);
  assert.equal(q.apply(del('n/x', 22n)), false, 'deleting an unknown key is no change');
});

test('revisions beyond 2^53 stay exact', () => {
  const big = 2n ** 60n;
  const q = new Queue([
    { key: 'n/a', value: 'a', createRevision: big + 1n },
    { key: 'n/b', value: 'b', createRevision: big },
  ]);
  assert.equal(q.head()?.key, 'n/b');
});
