// The candidate queue view (src/queue.ts): snapshot + watch events, pure logic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, type KeyEvent } from '../src/queue.js';

const put = (key: string, create: bigint, mod = create, value = key): KeyEvent => ({ type: 'put', key, value, createRevision: create, modRevision: mod });
const del = (key: string, mod: bigint): KeyEvent => ({ type: 'delete', key, value: '', createRevision: 0n, modRevision: mod });

test('the leader is the key with the lowest create revision, whatever the arrival order', () => {
  const q = new Queue();
  q.reset([{ key: 'n/c', value: 'c', createRevision: 30n }, { key: 'n/a', value: 'a', createRevision: 10n }], 30n);
  q.apply(put('n/b', 20n, 31n)); // impossible in etcd (a new key has a new revision) but order must not matter
  assert.equal(q.head()?.key, 'n/a');
  assert.deepEqual(q.ordered().map((c) => c.key), ['n/a', 'n/b', 'n/c']);
  q.apply(del('n/a', 32n));
  assert.equal(q.head()?.key, 'n/b');
});

test('events at or below the snapshot revision are already in it and are ignored', () => {
  const q = new Queue();
  q.reset([{ key: 'n/a', value: 'a', createRevision: 10n }], 50n);
  assert.equal(q.apply(del('n/a', 40n)), false, 'a delete before the snapshot is stale');
  assert.equal(q.head()?.key, 'n/a');
  assert.equal(q.apply(del('n/a', 51n)), true);
  assert.equal(q.head(), undefined);
});

test('events that arrive before the first snapshot are replayed over it', () => {
  const q = new Queue();
  assert.equal(q.initialized, false);
  q.apply(put('n/b', 60n));
  q.apply(del('n/a', 61n));
  q.reset([{ key: 'n/a', value: 'a', createRevision: 10n }], 59n);
  assert.deepEqual(q.ordered().map((c) => c.key), ['n/b']);
});

test('a snapshot older than what the watch already delivered does not roll the view back', () => {
  const q = new Queue();
  q.reset([{ key: 'n/a', value: 'a', createRevision: 10n }], 50n);
  q.apply(del('n/a', 70n));
  q.reset([{ key: 'n/a', value: 'a', createRevision: 10n }], 60n);
  assert.equal(q.head(), undefined);
});

test('invalidate forgets the view until the next snapshot', () => {
  const q = new Queue();
  q.reset([{ key: 'n/a', value: 'a', createRevision: 10n }], 50n);
  q.invalidate();
  assert.equal(q.initialized, false);
  assert.equal(q.size, 0);
  q.reset([{ key: 'n/b', value: 'b', createRevision: 80n }], 90n);
  assert.equal(q.head()?.key, 'n/b');
});

test('revisions beyond 2^53 stay exact', () => {
  const q = new Queue();
  const big = 2n ** 60n;
  q.reset([{ key: 'n/a', value: 'a', createRevision: big + 1n }, { key: 'n/b', value: 'b', createRevision: big }], big + 2n);
  assert.equal(q.head()?.key, 'n/b');
});
