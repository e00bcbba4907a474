// The PrefixView (src/core/view.ts), the one owner of the local view: revisions, snapshots,
// buffered events and numbered re-reads, against a scripted store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyEvent } from '../../src/core/queue.js';
import type { PrefixSnapshot, Store, WatchHandlers } from '../../src/etcd/store.js';
import { PrefixView } from '../../src/core/view.js';
import { FakeClock, settle } from '../helpers/clock.js';

const put = (key: string, create: bigint, mod = create): KeyEvent => ({
  type: 'put',
  key,
  value: key,
  createRevision: create,
  modRevision: mod,
});
const del = (key: string, mod: bigint): KeyEvent => ({ type: 'delete', key, value: '', createRevision: 0n, modRevision: mod });

/** A store whose watch and prefix reads the test drives by hand. */
class ScriptedStore {
  handlers: WatchHandlers | undefined;
  reads: { resolve(s: PrefixSnapshot): void; reject(e: Error): void }[] = [];
  store(): Store {
    const unused = (): never => {
      throw new Error('not used by the view');
    };
    return {
      grant: unused,
      keepAlive: unused,
      revoke: unused,
      campaign: unused,
      resign: unused,
      readPrefix: () => new Promise((resolve, reject) => this.reads.push({ resolve, reject })),
      watchPrefix: (_prefix, handlers) => {
        this.handlers = handlers;
        return { ready: Promise.resolve(), close: async () => {} };
      },
    };
  }
  /** Answers the oldest outstanding read with a snapshot of `keys` at `revision`. */
  answer(i: number, revision: bigint, keys: [string, bigint][]): void {
    const queues = new Map<string, { key: string; value: string; createRevision: bigint }[]>();
    for (const [key, createRevision] of keys) {
      const name = key.split('/')[1]!;
      const list = queues.get(name) ?? [];
      list.push({ key, value: key, createRevision });
      queues.set(name, list);
    }
    this.reads[i]!.resolve({ revision, queues });
  }
}

async function started(): Promise<{ s: ScriptedStore; view: PrefixView; changes: string[][] }> {
  const s = new ScriptedStore();
  const changes: string[][] = [];
  const view = new PrefixView(s.store(), 'p/', new FakeClock(), () => 1000, {
    changed: (names) => changes.push([...names].sort()),
    trouble: () => {},
    connected: () => {},
  });
  view.start();
  await settle();
  return { s, view, changes };
}

test('every event of one revision applies: del --prefix of a whole queue leaves it empty', async () => {
  const { s, view } = await started();
  s.answer(0, 10n, [
    ['p/x/a', 5n],
    ['p/x/b', 6n],
    ['p/x/c', 7n],
  ]);
  await settle();
  assert.equal(view.head('x')?.key, 'p/x/a');
  // One revision (11), three deletes in one watch response: the bug this view fixes
  // kept p/x/b and p/x/c, so a standby "led" on a key etcd no longer had.
  s.handlers!.events([del('p/x/a', 11n), del('p/x/b', 11n), del('p/x/c', 11n)]);
  assert.equal(view.head('x'), undefined);
  assert.deepEqual(view.queue('x'), []);
  assert.equal(view.judge('x', 'p/x/b', 6n, 10n), 'gone');
});

test('a revision with events of several names (del --prefix of the whole prefix) applies to each', async () => {
  const { s, view, changes } = await started();
  s.answer(0, 10n, [
    ['p/x/a', 5n],
    ['p/x/b', 6n],
    ['p/y/a', 8n],
    ['p/y/b', 9n],
  ]);
  await settle();
  changes.length = 0;
  s.handlers!.events([del('p/x/a', 11n), del('p/x/b', 11n), del('p/y/a', 11n), del('p/y/b', 11n)]);
  assert.deepEqual(changes, [['x', 'y']]);
  assert.equal(view.head('x'), undefined);
  assert.equal(view.head('y'), undefined);
});

test('events up to the snapshot revision are in it; later ones apply once', async () => {
  const { s, view } = await started();
  s.handlers!.events([put('p/x/a', 5n)]); // before the snapshot: buffered
  s.answer(0, 10n, [['p/x/a', 5n]]);
  await settle();
  s.handlers!.events([del('p/x/a', 9n)]); // impossible after a snapshot at 10, but must be ignored
  assert.equal(view.head('x')?.key, 'p/x/a');
  s.handlers!.events([put('p/x/b', 12n), del('p/x/a', 13n)]);
  assert.equal(view.head('x')?.key, 'p/x/b');
});

test('events that arrive while a re-read is pending are replayed over its snapshot, not wiped by it', async () => {
  const { s, view } = await started();
  s.answer(0, 10n, [
    ['p/x/a', 5n],
    ['p/x/b', 6n],
  ]);
  await settle();
  s.handlers!.reset(Promise.resolve()); // the watch was re-created: a new snapshot is read
  await settle();
  assert.equal(view.current, false, 'stale until the new snapshot is in');
  assert.equal(view.judge('x', 'p/x/b', 6n, 0n), 'unknown', 'nobody is judged on a stale view');
  // The new watch delivers the delete of the leader before the read answers; the read was
  // taken before that delete (revision 20).
  s.handlers!.events([del('p/x/a', 21n)]);
  s.answer(1, 20n, [
    ['p/x/a', 5n],
    ['p/x/b', 6n],
  ]);
  await settle();
  assert.equal(view.current, true);
  assert.equal(view.head('x')?.key, 'p/x/b', 'the buffered delete applies over the snapshot');
  assert.equal(view.judge('x', 'p/x/b', 6n, 0n), 'first');
});

test('of two overlapping re-reads only the newest installs its snapshot', async () => {
  const { s, view } = await started();
  s.answer(0, 10n, [['p/x/a', 5n]]);
  await settle();
  s.handlers!.reset(Promise.resolve()); // read #1
  await settle();
  s.handlers!.reset(Promise.resolve()); // read #2, newer
  await settle();
  s.answer(2, 30n, [['p/x/b', 25n]]); // the newer answers first
  await settle();
  s.answer(1, 15n, [['p/x/a', 5n]]); // then the older one, which must lose
  await settle();
  assert.equal(view.head('x')?.key, 'p/x/b');
  assert.equal(view.judge('x', 'p/x/a', 5n, 0n), 'gone');
});

test('a campaign is judged only once the view has reached its revision', async () => {
  const { s, view } = await started();
  s.answer(0, 10n, []);
  await settle();
  // Our campaign wrote p/x/me at 12; the watch has not delivered it yet.
  assert.equal(view.judge('x', 'p/x/me', 12n, 12n), 'unknown');
  s.handlers!.events([put('p/x/me', 12n)]);
  assert.equal(view.judge('x', 'p/x/me', 12n, 12n), 'first');
  // A key of the same name replaced by a newer key (another campaign on the same lease) is not ours.
  s.handlers!.events([del('p/x/me', 13n), put('p/x/me', 14n)]);
  assert.equal(view.judge('x', 'p/x/me', 12n, 12n), 'gone');
});
