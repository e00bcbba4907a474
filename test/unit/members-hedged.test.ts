// Members.hedged (src/etcd/members.ts): which member a call starts on, and how that changes
// when the preferred member answers nothing. Pure logic: the ops below stand in for etcd
// calls (they never touch the clients, which connect lazily and so never dial).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Members, type Member } from '../../src/etcd/members.js';

const HOSTS = ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:3'];
const never = new Promise<never>(() => {});

function withMembers(fn: (m: Members) => Promise<void>): Promise<void> {
  const members = new Members(HOSTS, {});
  return fn(members).finally(() => members.close());
}

test('a preferred member that lets a whole call time out is no longer preferred: the next call starts on one that answered', () =>
  withMembers(async (members) => {
    assert.equal(members.current.index, 0);
    // Member 0 frozen (no answer); 1 and 2 refuse at once, as members without a raft leader do.
    const tried: number[] = [];
    const op = (_c: unknown, m: Member): Promise<string> => {
      tried.push(m.index);
      return m.index === 0 ? never : Promise.reject(new Error(`no leader (member ${m.index})`));
    };
    await assert.rejects(members.hedged(op, 50, 300), /no leader/);
    assert.deepEqual(tried, [0, 1, 2]);
    assert.equal(members.current.index, 1, 'the first member that answered (with an error) becomes preferred');
    // A call that is never hedged (hedgeMs = timeoutMs, like the lease grant) now starts there.
    const next: number[] = [];
    const ok = await members.hedged((_c, m) => (next.push(m.index), Promise.resolve(m.index)), 300, 300);
    assert.equal(ok, 1);
    assert.deepEqual(next, [1]);
  }));

test('a never-hedged call that times out on the preferred member moves the next call to the next member', () =>
  withMembers(async (members) => {
    await assert.rejects(
      members.hedged(() => never, 200, 200),
      /no member answered within 200 ms/,
    );
    assert.equal(members.current.index, 1);
  }));

test("a preferred member that answers with an error keeps its place (it is not frozen; the error may be the request's own)", () =>
  withMembers(async (members) => {
    await assert.rejects(
      members.hedged(() => Promise.reject(new Error('requested lease not found')), 50, 300),
      /not found/,
    );
    assert.equal(members.current.index, 0);
  }));
