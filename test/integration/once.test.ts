// Run-once jobs (locker.once) among hosts that are separate processes, against real etcd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { locked, type Health, type OnceContext } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { spawnHost, type Host, type HostEvent, type JobSpec } from '../helpers/host.js';
import { waitFor } from '../helpers/wait.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await cluster?.close();
});

const uniquePrefix = (): string => `once${Math.random().toString(36).slice(2, 8)}/`;

async function spawn(prefix: string, ids: string[]): Promise<Host[]> {
  return Promise.all(ids.map((id) => spawnHost({ endpoints: cluster.endpoints, id, ttl: 2, prefix })));
}

const callOnce = (h: Host, name: string, job: JobSpec, maxAttempts = 3): Promise<unknown> =>
  h.request({ op: 'once', name, job, maxAttempts });

const outcomeOf = (h: Host, name: string): Promise<HostEvent> =>
  h.waitEvent((e) => e.type === 'outcome' && e.name === name, 30_000, `outcome of once '${name}'`);

/** Every attempt started, on any of `hosts`, in attempt order. */
function runs(hosts: Host[], name: string): HostEvent[] {
  return hosts.flatMap((h) => h.events.filter((e) => e.type === 'job-start' && e.name === name)).sort((x, y) => x.attempt! - y.attempt!);
}

/** Waits until `n` hosts campaign for `name` (their keys are under `<prefix><name>/`). */
async function candidates(prefix: string, name: string, n: number): Promise<void> {
  await waitFor(async () => (await cluster.keys(`${prefix}${name}/`)).length === n, {
    timeoutMs: 15_000,
    intervalMs: 200,
    message: `${n} candidates for ${name}`,
  });
}

async function record(prefix: string, name: string): Promise<Record<string, unknown> | undefined> {
  const v = await cluster.get(`${prefix}${name}`);
  return v === undefined ? undefined : (JSON.parse(v) as Record<string, unknown>);
}

/** A hang (e.g. a request never answered) fails the test instead of blocking the run. */
const TEST_TIMEOUT_MS = 60_000;

const stopAll = (hs: Host[]): Promise<unknown> => Promise.all(hs.map((h) => h.stop()));

// One test at a time: each runs several hosts with 2 s leases, and the machine is small.
describe('once', () => {
  test(
    'the first runner is SIGKILLed mid-job: another host finishes, every caller gets done with attempts = 2',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const prefix = uniquePrefix();
      const hs = await spawn(prefix, ['a', 'b', 'c']);
      const [a, b, c] = hs as [Host, Host, Host];
      try {
        await callOnce(a, 'migrate', { kind: 'hang' });
        await a.waitEvent((e) => e.type === 'job-start' && e.name === 'migrate');
        await callOnce(b, 'migrate', { kind: 'ok-after', ms: 200 });
        await callOnce(c, 'migrate', { kind: 'ok-after', ms: 200 });
        await candidates(prefix, 'migrate', 3);
        a.kill('SIGKILL');
        await a.exited;
        const outcomes = await Promise.all([outcomeOf(b, 'migrate'), outcomeOf(c, 'migrate')]);
        const r = runs(hs, 'migrate');
        assert.deepEqual(r.map((e) => [e.id, e.attempt]).slice(0, 1), [['a', 1]]);
        assert.equal(r.length, 2, `two attempts in total, got ${JSON.stringify(r.map((e) => [e.id, e.attempt]))}`);
        const second = r[1]!;
        assert.ok(second.id === 'b' || second.id === 'c');
        assert.equal(second.attempt, 2);
        assert.ok(BigInt(second.token!) > BigInt(r[0]!.token!), 'the second attempt runs under a newer leadership');
        for (const o of outcomes) {
          assert.deepEqual(
            { status: o.status, attempts: o.attempts, by: o.by, message: o.message },
            { status: 'done', attempts: 2, by: second.id, message: undefined },
          );
        }
        assert.deepEqual(await record(prefix, 'migrate'), {
          status: 'done',
          attempts: 2,
          maxAttempts: 3,
          by: second.id,
          token: second.token,
        });
        // Every caller left the name once settled: only the record remains.
        assert.deepEqual(await cluster.keys(prefix), [`${prefix}migrate`]);
      } finally {
        await stopAll(hs);
      }
    },
  );

  test(
    'fn always throws: failed after exactly maxAttempts runs in total, taken in turn by the hosts',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const prefix = uniquePrefix();
      const hs = await spawn(prefix, ['a', 'b']);
      const [a, b] = hs as [Host, Host];
      try {
        // a's first attempt waits at its gate until b is queued behind it.
        await callOnce(a, 'deploy', { kind: 'always-throw', gated: true }, 3);
        await a.waitEvent((e) => e.type === 'job-start' && e.name === 'deploy');
        await callOnce(b, 'deploy', { kind: 'always-throw' }, 3);
        await candidates(prefix, 'deploy', 2);
        await a.request({ op: 'release', name: 'deploy' });
        const outcomes = await Promise.all([outcomeOf(a, 'deploy'), outcomeOf(b, 'deploy')]);
        const r = runs(hs, 'deploy');
        assert.deepEqual(
          r.map((e) => e.attempt),
          [1, 2, 3],
          `attempts ${JSON.stringify(r.map((e) => [e.id, e.attempt]))}`,
        );
        assert.equal(r[0]!.id, 'a');
        assert.equal(r[1]!.id, 'b', 'after a failed attempt, the next host in line makes the next one');
        for (const o of outcomes)
          assert.deepEqual({ status: o.status, attempts: o.attempts, by: o.by }, { status: 'failed', attempts: 3, by: r[2]!.id });
        // Nobody is queued any more, so no fourth attempt can start.
        assert.deepEqual(await cluster.keys(`${prefix}deploy/`), []);
        assert.equal(runs(hs, 'deploy').length, 3);
        assert.ok(
          a.events.some((e) => e.type === 'error' && /failed on purpose/.test(e.message ?? '')),
          'the failure is reported as an error',
        );
      } finally {
        await stopAll(hs);
      }
    },
  );

  test('a late caller gets the recorded outcome without running fn or campaigning', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const [a, late] = (await spawn(prefix, ['a', 'late'])) as [Host, Host];
    try {
      await callOnce(a, 'seed', { kind: 'ok-after', ms: 50 });
      const first = await outcomeOf(a, 'seed');
      assert.deepEqual({ status: first.status, attempts: first.attempts, by: first.by }, { status: 'done', attempts: 1, by: 'a' });
      await callOnce(late, 'seed', { kind: 'always-throw' });
      const o = await outcomeOf(late, 'seed');
      assert.deepEqual({ status: o.status, attempts: o.attempts, by: o.by }, { status: 'done', attempts: 1, by: 'a' });
      assert.ok(!late.events.some((e) => e.type === 'job-start'), 'the late caller did not run fn');
      // It never even started its locker: no lease, nothing written.
      const health = await late.request<Health>({ op: 'health' });
      assert.equal(health.leaseId, undefined);
      assert.deepEqual(await cluster.keys(prefix), [`${prefix}seed`]);
    } finally {
      await stopAll([a, late]);
    }
  });

  test(
    "the first runner is SIGSTOPped past its lease and resumed: its late completion is rejected, the outcome is the second runner's",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const prefix = uniquePrefix();
      const hs = await spawn(prefix, ['a', 'b']);
      const [a, b] = hs as [Host, Host];
      try {
        await callOnce(a, 'reindex', { kind: 'ok-after', ms: 0, gated: true });
        await a.waitEvent((e) => e.type === 'job-start' && e.name === 'reindex');
        await callOnce(b, 'reindex', { kind: 'ok-after', ms: 0, gated: true });
        await candidates(prefix, 'reindex', 2);
        a.kill('SIGSTOP');
        // a's lease (ttl 2 s) expires while it is stopped; b is elected and makes attempt 2.
        const bStart = await b.waitEvent((e) => e.type === 'job-start' && e.name === 'reindex', 15_000, 'attempt 2 on b');
        assert.equal(bStart.attempt, 2);
        a.kill('SIGCONT');
        // a's job ignores its signal and completes now, while b's attempt still runs: a's fenced write must fail.
        await a.request({ op: 'release', name: 'reindex' });
        const aEnd = await a.waitEvent((e) => e.type === 'job-end' && e.name === 'reindex', 15_000, "a's job completes after resume");
        assert.equal(aEnd.ok, true);
        await a
          .waitEvent(
            (e) => e.type === 'error' && /attempt 1 succeeded after its leadership .* not recorded/.test(e.message ?? ''),
            15_000,
            "a's outcome rejected",
          )
          .catch((err: Error) => assert.fail(`${err.message}\nevents of a: ${JSON.stringify(a.events.slice(-15))}`));
        const now = await record(prefix, 'reindex');
        assert.deepEqual(
          now,
          { status: 'running', attempts: 2, maxAttempts: 3, by: 'b', token: bStart.token },
          "the record is still b's attempt",
        );
        assert.ok(!a.events.some((e) => e.type === 'outcome'), 'a is still waiting for the outcome');
        await b.request({ op: 'release', name: 'reindex' });
        const outcomes = await Promise.all([outcomeOf(a, 'reindex'), outcomeOf(b, 'reindex')]);
        for (const o of outcomes)
          assert.deepEqual({ status: o.status, attempts: o.attempts, by: o.by }, { status: 'done', attempts: 2, by: 'b' });
        assert.equal(runs(hs, 'reindex').length, 2);
        assert.deepEqual(await record(prefix, 'reindex'), { status: 'done', attempts: 2, maxAttempts: 3, by: 'b', token: bStart.token });
      } finally {
        a.kill('SIGCONT');
        await stopAll(hs);
      }
    },
  );

  test('recordTtl: the decision expires with its own lease, and a later call runs fn again', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const [a] = (await spawn(prefix, ['a'])) as [Host];
    try {
      await a.request({ op: 'once', name: 'warm-cache', job: { kind: 'ok-after', ms: 10 }, recordTtl: 2 });
      await outcomeOf(a, 'warm-cache');
      const json = await cluster.etcdctl(['get', `${prefix}warm-cache`, '-w', 'json']);
      const kv = (JSON.parse(json.stdout) as { kvs: { lease?: number | string }[] }).kvs[0]!;
      assert.ok(kv.lease !== undefined && BigInt(kv.lease) !== 0n, 'the decided record carries a lease');
      await waitFor(async () => (await cluster.get(`${prefix}warm-cache`)) === undefined, { timeoutMs: 15_000, message: 'record expired' });
      await a.request({ op: 'once', name: 'warm-cache', job: { kind: 'ok-after', ms: 10 }, recordTtl: 2 });
      await waitFor(() => a.events.filter((e) => e.type === 'outcome').length === 2, { timeoutMs: 15_000, message: 'second outcome' });
      assert.deepEqual(
        runs([a], 'warm-cache').map((e) => e.attempt),
        [1, 1],
        'the job ran again, from attempt 1',
      );
    } finally {
      await a.stop();
    }
  });

  test('options are validated, and an aborted call leaves the name and aborts fn', { timeout: TEST_TIMEOUT_MS }, async () => {
    const prefix = uniquePrefix();
    const locker = locked(cluster.endpoints, { prefix, ttl: 2, handleSignals: false });
    try {
      const fn = (): void => {};
      for (const bad of [0, -1, 2.5, Number.NaN]) {
        await assert.rejects(locker.runOnce('x', fn, { maxAttempts: bad }), (e: Error) => {
          assert.ok(e instanceof RangeError, `RangeError for ${String(bad)}`);
          assert.match(e.message, /maxAttempts of runOnce\('x'\) must be a whole number ≥ 1, got/);
          assert.ok(e.message.endsWith(`got ${String(bad)}`), e.message);
          return true;
        });
      }
      // Not a number at all: a TypeError, as for every option.
      await assert.rejects(
        locker.runOnce('x', fn, { maxAttempts: '3' as unknown as number }),
        (e: Error) => e instanceof TypeError && /maxAttempts of runOnce\('x'\) must be a number, got string \('3'\)/.test(e.message),
      );
      await assert.rejects(
        locker.runOnce('x', fn, { recordTtl: 0.5 }),
        /recordTtl of runOnce\('x'\) must be a whole number of seconds ≥ 1, got 0\.5/,
      );
      await assert.rejects(locker.runOnce('a/b', fn), /must not contain '\/'/);

      const controller = new AbortController();
      let ctx: OnceContext | undefined;
      const pending = locker.runOnce(
        'long',
        (c) => {
          ctx = c;
          return new Promise((_resolve, reject) => c.signal.addEventListener('abort', () => reject(c.signal.reason as Error)));
        },
        { signal: controller.signal },
      );
      await waitFor(() => ctx, { timeoutMs: 10_000, message: 'fn started' });
      assert.equal(ctx!.attempt, 1);
      controller.abort(new Error('deploy cancelled'));
      await assert.rejects(pending, /deploy cancelled/);
      assert.equal(ctx!.signal.aborted, true, "fn's signal is aborted");
      // Gone at once normally; if the lease was lost meanwhile (a loaded machine), it goes with the lease.
      await waitFor(async () => (await cluster.keys(`${prefix}long/`)).length === 0, { timeoutMs: 10_000, message: 'nothing left queued' });
      assert.equal((await record(prefix, 'long'))?.['status'], 'running', 'the attempt stays counted');
    } finally {
      await locker.close();
    }
  });
});
