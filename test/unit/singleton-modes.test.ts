// The per-name machine (src/core/name-machine.ts) behind its handle (src/api/singleton.ts), on a
// fake locker: a hand-driven campaign answer, view verdict and clock. One machine, three
// mode policies (src/core/mode-policy.ts): what each does on a busy name, on loss, on fn's
// failure and when fn settles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import type { CampaignBatcher } from '../../src/core/campaign.js';
import { MetricsRecorder } from '../../src/features/metrics.js';
import { policyFor } from '../../src/core/mode-policy.js';
import { ReleaseGate } from '../../src/core/release.js';
import type { Session } from '../../src/core/session.js';
import { Singleton, type SingletonFunction, type SingletonHost, type StopReason, type TryLockResult } from '../../src/api/singleton.js';
import type { CampaignRequest, CampaignResult, Store } from '../../src/etcd/store.js';
import type { PrefixView } from '../../src/core/view.js';
import { FakeClock, settle } from '../helpers/clock.js';

type Verdict = 'unknown' | 'first' | 'queued' | 'gone';

function fakeSession(leaseId: string): Session & { end(): void } {
  let ended = false;
  return {
    leaseId,
    alive: () => !ended,
    startable: () => !ended,
    get ended() {
      return ended;
    },
    end: () => void (ended = true),
    checkDeadline: () => {},
    renewed: () => new Promise<void>(() => {}),
  } as unknown as Session & { end(): void };
}

/** A locker as a Singleton sees it: campaign writes wait for the test to answer them; the view says what `verdict` says. */
class FakeHost implements SingletonHost {
  readonly clock = new FakeClock();
  readonly stopTimeoutMs = 1000;
  readonly gate = new ReleaseGate();
  readonly recorder = new MetricsRecorder();
  readonly prefix = 'u/';
  readonly nodeId = 'me';
  readonly client = {} as Etcd3;
  readonly reported: Error[] = [];
  readonly unregistered: Singleton[] = [];
  readonly resigned: string[] = [];
  readonly campaigns: { req: CampaignRequest; answer(r: CampaignResult | Error): void }[] = [];
  verdict: Verdict = 'first';
  current = fakeSession('1');
  revision = 10n;
  readonly batcher = {
    campaign: (req: CampaignRequest) =>
      new Promise<CampaignResult>((resolve, reject) =>
        this.campaigns.push({ req, answer: (r) => (r instanceof Error ? reject(r) : resolve(r)) }),
      ),
    resign: async (req: { key: string }) => void this.resigned.push(req.key),
  } as unknown as CampaignBatcher;
  readonly store = {} as unknown as Store;
  readonly view = {
    judge: () => this.verdict,
    position: () => (this.verdict === 'first' ? 0 : 1),
    queue: () => [],
  } as unknown as PrefixView;
  session(): Session | undefined {
    return this.current;
  }
  whenSession(): void {}
  requestTimeoutMs(): number {
    return 1000;
  }
  report(err: Error): void {
    this.reported.push(err);
  }
  unregister(s: Singleton): void {
    this.unregistered.push(s);
  }
  standsAside(): boolean {
    return false;
  }
  handsOver(): boolean {
    return false;
  }

  /** Answers the oldest unanswered campaign: our key written (at the next revision), or — a try-lock — the name taken by `holder`. */
  async answerCampaign(taken?: { holder: string }): Promise<void> {
    await settle();
    const c = this.campaigns.shift();
    assert.ok(c, 'a campaign write was sent');
    const revision = ++this.revision;
    if (taken) c.answer({ revision, candidates: [{ key: 'u/x/other', value: taken.holder }] as never, createRevision: undefined });
    else c.answer({ revision, candidates: [], createRevision: revision });
    await settle();
  }
}

function register(host: FakeHost, mode: 'queue' | 'try' | 'lock', fn: SingletonFunction) {
  const s = new Singleton('x', fn, host, mode);
  const stops: StopReason[] = [];
  let starts = 0;
  s.on('start', () => void starts++);
  s.on('stop', (reason) => void stops.push(reason));
  const outcome: Promise<TryLockResult> | undefined = mode === 'try' ? s.outcome() : undefined;
  s.start();
  return { s, stops, starts: () => starts, outcome };
}

test('the policies differ only where the modes do', () => {
  const q = policyFor('queue');
  const t = policyFor('try');
  const l = policyFor('lock');
  assert.deepEqual([q.onBusy, t.onBusy, l.onBusy], ['queue', 'refuse', 'queue']);
  assert.deepEqual([q.onLoss, t.onLoss, l.onLoss], ['campaign', 'retire', 'retire']);
  assert.deepEqual([q.onError, t.onError, l.onError], ['backoff', 'retire', 'retire']);
  assert.deepEqual([q.onSettle, t.onSettle, l.onSettle], ['keep', 'keep', 'release']);
  assert.deepEqual([q.handsOver, t.handsOver, l.handsOver], [true, false, false]);
  assert.deepEqual([q.standsAside, t.standsAside, l.standsAside], [true, false, true]);
});

test('queue: campaigns with put-if-absent behind others, leads when first, keeps the name after fn returns', async () => {
  const host = new FakeHost();
  const { s, stops, starts } = register(host, 'queue', () => {});
  assert.equal(s.phase, 'campaigning');
  assert.equal(host.campaigns[0]!.req.tryOnly, false, 'a singleton queues: no try-only write');
  await host.answerCampaign();
  assert.equal(s.phase, 'leading');
  assert.equal(s.isLeader, true);
  assert.equal(starts(), 1);
  await settle();
  assert.equal(s.phase, 'leading', 'fn returned: the name stays here until the next election');
  assert.deepEqual(stops, []);
});

test('queue: a deposed leader queues again; a failing fn steps down, deletes its key and campaigns after a backoff', async () => {
  const host = new FakeHost();
  let fail = false;
  const { s, stops } = register(host, 'queue', () => {
    if (fail) throw new Error('boom');
  });
  await host.answerCampaign();
  assert.equal(s.phase, 'leading');
  host.verdict = 'gone';
  s.judge();
  await settle();
  assert.deepEqual(stops, ['deposed']);
  assert.equal(s.phase, 'campaigning', 'deposed: queues again at once');
  assert.deepEqual(host.resigned, [], 'a deleted key is not deleted again');
  host.verdict = 'first';
  fail = true;
  await host.answerCampaign();
  assert.deepEqual(stops, ['deposed', 'error']);
  assert.equal(s.phase, 'backoff');
  assert.equal(host.resigned.length, 1, 'the failed leader deleted its key: a standby gets its turn');
  assert.match(host.reported[0]!.message, /boom/);
  await host.clock.advance(30_000);
  assert.equal(s.phase, 'campaigning', 'campaigns again after the backoff');
  assert.deepEqual(host.unregistered, []);
});

test('try: a busy name answers with the holder, writes nothing and retires', async () => {
  const host = new FakeHost();
  const { s, outcome } = register(host, 'try', () => {});
  assert.equal(host.campaigns[0]!.req.tryOnly, true);
  await host.answerCampaign({ holder: 'other-host' });
  assert.deepEqual(await outcome, { acquired: false, holder: 'other-host' });
  assert.equal(s.phase, 'retired');
  assert.deepEqual(host.unregistered, [s]);
});

test('try: acquired answers with the handle; deposed, it ends for good', async () => {
  const host = new FakeHost();
  const { s, stops, outcome } = register(host, 'try', () => {});
  await host.answerCampaign();
  assert.deepEqual(await outcome, { acquired: true, singleton: s });
  host.verdict = 'gone';
  s.judge();
  await settle();
  assert.deepEqual(stops, ['deposed']);
  assert.equal(s.phase, 'retired', 'a deposed try-lock does not queue again');
  assert.equal(host.campaigns.length, 0);
});

test('try: a failing fn steps down, deletes its key and does not campaign again', async () => {
  const host = new FakeHost();
  const { s, stops } = register(host, 'try', () => Promise.reject(new Error('boom')));
  await host.answerCampaign();
  await s.released();
  assert.deepEqual(stops, ['error']);
  assert.match(host.reported[0]!.message, /boom/, 'reported, as for a singleton');
  assert.equal(host.resigned.length, 1);
  assert.equal(host.campaigns.length, 0);
});

test('try: a key lost before it led ends the attempt with an error', async () => {
  const host = new FakeHost();
  host.verdict = 'queued';
  const { s, outcome } = register(host, 'try', () => {});
  await host.answerCampaign();
  assert.equal(s.phase, 'queued');
  host.verdict = 'gone';
  s.judge();
  await assert.rejects(outcome!, /was deleted before it led/);
  assert.equal(s.phase, 'retired');
});

test('lock: queues behind others, runs fn once and releases the name as soon as fn settles', async () => {
  const host = new FakeHost();
  host.verdict = 'queued';
  let runs = 0;
  const { s, stops } = register(host, 'lock', () => void runs++);
  assert.equal(host.campaigns[0]!.req.tryOnly, false, 'a lock waits in the queue');
  await host.answerCampaign();
  assert.equal(s.phase, 'queued');
  host.verdict = 'first';
  s.judge();
  await settle();
  assert.equal(runs, 1);
  assert.deepEqual(stops, ['removed'], 'released at once');
  assert.equal(host.resigned.length, 1);
  await s.released();
  assert.equal(s.phase, 'retired');
  assert.equal(host.campaigns.length, 0, 'never campaigns again');
});

test("lock: fn's failure is the caller's answer: not reported, and the lock is over", async () => {
  const host = new FakeHost();
  const { s, stops } = register(host, 'lock', () => Promise.reject(new Error('critical section failed')));
  await host.answerCampaign();
  await s.released();
  assert.deepEqual(stops, ['error']);
  assert.deepEqual(host.reported, [], 'a lock does not report its fn failing');
  assert.equal(host.campaigns.length, 0);
});

test('retiring: true from remove() until the write in flight has answered and the key is deleted', async () => {
  const host = new FakeHost();
  const { s } = register(host, 'queue', () => {});
  assert.equal(s.retiring, false);
  const left = s.remove();
  assert.equal(s.retiring, true, 'removed while the campaign write is in flight');
  assert.equal(s.phase, 'campaigning');
  await host.answerCampaign();
  await left;
  assert.equal(s.retiring, false);
  assert.equal(s.phase, 'retired');
  assert.equal(host.resigned.length, 1, 'the key the write had made was deleted');
});

test('queue: a move request for our key already in the view when we start leading is acted on at once (no later view change announces it)', async () => {
  const host = new (class extends FakeHost {
    override handsOver(): boolean {
      return true; // the request names our key: written while we still waited to start
    }
  })();
  const { s, stops, starts } = register(
    host,
    'queue',
    (_remove, leadership) => new Promise((r) => leadership.signal.addEventListener('abort', r)),
  );
  await host.answerCampaign();
  await settle();
  assert.equal(starts(), 1, 'fn started');
  assert.deepEqual(stops, ['handover'], 'and was handed over without waiting for another view change');
  assert.notEqual(s.phase, 'leading');
});
