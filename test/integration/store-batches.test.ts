// The store's batched campaign write and its paged snapshot read (src/etcd/etcd-store.ts,
// reads.ts) against a real etcd: a batch of campaigns is one flat put-if-absent transaction,
// and when one of its keys is there already (a retried write that had landed) nothing of it
// is lost — every name gets its key, the one already there keeps its create revision. A prefix
// bigger than a page is read whole, at one revision, though keys are written between pages.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IRangeResponse } from 'etcd3';
import { readPrefix } from '../../src/etcd/reads.js';
import { storeOnEtcd } from '../helpers/store.js';
import type { CampaignRequest, PrefixSnapshot } from '../../src/etcd/store.js';

let leaseId: string;
const etcd = storeOnEtcd(async (e) => {
  leaseId = (await e.client.leaseClient.leaseGrant({ TTL: 60 })).ID;
});

const prefixOf = (): string => `b${Math.random().toString(36).slice(2, 8)}/`;
const hex = (): string => BigInt(leaseId).toString(16);
const request = (prefix: string, i: number): CampaignRequest => ({
  namePrefix: `${prefix}n${i}/`,
  key: `${prefix}n${i}/${hex()}`,
  value: 'h1',
  leaseId,
});

describe('batched campaigns (one transaction)', () => {
  test('every key new: all written at one revision, each with it as its create revision', async () => {
    const prefix = prefixOf();
    const reqs = Array.from({ length: 100 }, (_, i) => request(prefix, i));
    const res = await etcd.store.campaign(reqs, 5_000);
    const revisions = new Set(res.map((r) => (r instanceof Error ? r.message : r.createRevision)));
    assert.equal(revisions.size, 1, `one revision for the batch: ${[...revisions].join(', ')}`);
    const kvs = await etcd.client.getAll().prefix(prefix).exec();
    assert.equal(kvs.kvs.length, 100);
    for (const kv of kvs.kvs) {
      assert.equal(kv.lease, leaseId, `${kv.key.toString()} is on the session's lease`);
      assert.equal(BigInt(kv.create_revision), [...revisions][0]);
    }
  });

  test('one key there already (a retried write that landed): it keeps its create revision, the others are written', async () => {
    const prefix = prefixOf();
    const reqs = Array.from({ length: 100 }, (_, i) => request(prefix, i));
    const landed = await etcd.client.put(reqs[37]!.key).value('h1').lease(leaseId).exec();
    const res = await etcd.store.campaign(reqs, 5_000);
    const errors = res.filter((r) => r instanceof Error);
    assert.deepEqual(errors, [], 'no campaign of the batch failed');
    const created = res.map((r) => (r as Exclude<(typeof res)[number], Error>).createRevision);
    assert.equal(created[37], BigInt(landed.header.revision), 'the key already there keeps its create revision');
    const others = new Set(created.filter((_, i) => i !== 37));
    assert.equal(others.size, 1, 'the others were written together');
    assert.ok([...others][0]! > created[37]!, 'after the one that had landed');
    assert.equal((await etcd.client.getAll().prefix(prefix).keys()).length, 100, 'every name has its key');
  });
});

describe('the snapshot read of a prefix', () => {
  test('bigger than a page: every key, at the revision of the first page, though keys land between pages', async () => {
    const prefix = prefixOf();
    const N = 12_000; // pages of 5,000 (reads.ts): three pages
    for (let from = 0; from < N; from += 100) {
      await etcd.store.campaign(
        Array.from({ length: 100 }, (_, i) => request(prefix, from + i)),
        5_000,
      );
    }
    // A write lands after the first page was read: the snapshot must not see it.
    let pages = 0;
    const snap: PrefixSnapshot = await readPrefix(async (page) => {
      const res: IRangeResponse = await etcd.client.kv.range(page);
      if (pages++ === 0) await etcd.client.put(`${prefix}zz-late/${hex()}`).value('h2').exec();
      return res;
    }, prefix);
    assert.equal(pages, 3, 'three pages');
    assert.equal(snap.queues.size, N, 'every name of the prefix, none twice, not the late one');
    assert.ok(!snap.queues.has('zz-late'), 'the key written after the first page is not in the snapshot');
    const head = BigInt((await etcd.client.get('nothing').exec()).header.revision);
    assert.equal(snap.revision, head - 1n, 'the revision of the first page (before the late write)');
  });
});
