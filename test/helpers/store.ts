// The etcd store (src/etcd/etcd-store.ts) on a one-member etcd of its own, with a plain etcd3
// client beside it to set keys up and look at them: for tests of the store's transactions.
import { after, before } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../src/etcd/etcd-store.js';
import { Members } from '../../src/etcd/members.js';
import { startEtcd, type EtcdCluster } from './etcd.js';

export interface StoreOnEtcd {
  readonly cluster: EtcdCluster;
  readonly client: Etcd3;
  readonly store: EtcdStore;
}

/**
 * Starts etcd and the store before the file's tests and closes them after (node:test hooks);
 * read the fields inside tests. `setUp` runs in the same hook once they are there: a second
 * top-level before() of the file ran before this one had finished (Node 26, CI).
 */
export function storeOnEtcd(setUp?: (etcd: StoreOnEtcd) => Promise<void>): StoreOnEtcd {
  let cluster: EtcdCluster | undefined;
  let client: Etcd3 | undefined;
  let members: Members | undefined;
  let store: EtcdStore | undefined;
  before(async () => {
    cluster = await startEtcd({ members: 1 });
    client = new Etcd3({ hosts: cluster.endpoints });
    members = new Members(cluster.endpoints, {});
    store = new EtcdStore(members);
    await setUp?.(handle);
  });
  after(async () => {
    members?.close();
    client?.close();
    await cluster?.close();
  });
  const started = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('storeOnEtcd(): read its fields inside a test, after its before() hook');
    return v;
  };
  const handle: StoreOnEtcd = {
    get cluster() {
      return started(cluster);
    },
    get client() {
      return started(client);
    },
    get store() {
      return started(store);
    },
  };
  return handle;
}
