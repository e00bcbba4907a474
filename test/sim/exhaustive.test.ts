// Deterministic simulation (see simulation.test.ts for what is checked after every step):
// every order of the events due at the same instant in small scripted cases, and scripted
// scenarios of single rules.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { cases } from '../helpers/sim/cases.js';
import { explore } from '../helpers/sim/explore.js';
import { World } from '../helpers/sim/world.js';

/** Choice points explored exhaustively per run (unless a case says otherwise); later ones take the first order. */
const DEPTH = 10;

test('exhaustive small cases: every order of simultaneous events', async (t: TestContext) => {
  // LOCKED_SIM_CASE=<part of a label> explores only the matching cases (while working on one).
  const only = process.env['LOCKED_SIM_CASE'];
  for (const [label, make, window, depth = DEPTH] of cases.filter(([l]) => only === undefined || l.includes(only))) {
    const t0 = performance.now();
    const r = await explore(make, window, depth, 5_000);
    t.diagnostic(
      `${label}: ${r.runs} orders${r.complete ? ` (every order of the first ${depth} choice points in ${window[0]}–${window[1]} ms)` : ' (bounded at 5000 runs)'}, ` +
        `up to ${r.maxChoicePoints} choice points per run, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    assert.ok(r.complete, `${label}: exploration did not complete`);
    const why = r.failures.map((f) => `${f.violations.map((v) => v.what).join('\n')}\n${f.trace.join('\n')}`).join('\n\n');
    assert.equal(r.failures.length, 0, `${label}:\n${why}`);
    assert.ok(r.runs > 1, `${label}: more than one order explored`);
  }
});

test('a try-lock whose campaign answer is lost takes its key back out, so the name is not blocked', async () => {
  // h0's try-lock write lands in etcd but its answer is lost: the try-lock fails; its
  // key, under h0's live lease, would block h1 for good.
  const r = await new World({
    seed: 11,
    hosts: 2,
    names: 1,
    horizonMs: 4_000,
    ttl: 2,
    faults: 0,
    lossAfterApply: 0,
    script: (w) => {
      const [h0, h1] = w.hosts as [World['hosts'][number], World['hosts'][number]];
      w.register(h0, 'warm-up', 'work'); // h0 has its lease before the fault
      w.at(500, () => {
        h0.store.loseCampaignAnswers = 1;
        w.tryLock(h0, 'n0');
      });
      w.at(3_000, () => w.register(h1, 'n0', 'work'));
    },
  }).run();
  assert.deepEqual(r.violations, [], r.trace.join('\n'));
  assert.ok(
    r.trace.some((l) => /h0 try-lock n0 failed/.test(l)),
    `the try-lock failed:\n${r.trace.join('\n')}`,
  );
  assert.ok(
    r.trace.some((l) => /h1 starts n0/.test(l)),
    `h1 led n0:\n${r.trace.join('\n')}`,
  );
});

test('a standby first in line while its keepalive is overdue does not start until one is answered (no start-then-lose)', async () => {
  // ttl 2: keepalive every 667 ms, renewDeadline 1333 ms. h1 (lease granted at 100 ms,
  // last acknowledged keepalive sent at 767 ms) gets no keepalive answered from 1000 ms to
  // 2400 ms — they sit on a frozen member while its watch is elsewhere — so its session is
  // lost at 767 + 1333 = 2100 ms. h0 removes n0 at 1550 ms; its key goes when fn has
  // settled (1841 ms): h1 is first, 1074 ms after its last acknowledged keepalive (more
  // than 667 + 167). Started then, fn would be stopped 'lost' 259 ms later (what the code
  // did before); instead h1 waits, loses the session without having started, and leads n0
  // on a new one.
  const r = await new World({
    seed: 5,
    hosts: 2,
    names: 1,
    horizonMs: 3_000,
    ttl: 2,
    faults: 0,
    latency: [0, 0],
    lossAfterApply: 0,
    script: (w) => {
      const [h0, h1] = w.hosts as [World['hosts'][number], World['hosts'][number]];
      w.register(h0, 'n0', 'work');
      w.at(100, () => w.register(h1, 'n0', 'work'));
      w.at(1_000, () => (h1.store.keepalivesDown = true));
      w.at(1_550, () => w.remove(h0, 'n0'));
      w.at(2_400, () => (h1.store.keepalivesDown = false));
    },
  }).run();
  const trace = r.trace.join('\n');
  assert.deepEqual(r.violations, [], trace);
  assert.ok(
    r.trace.some((l) => /h0 stops n0 .*: removed/.test(l)),
    `h0 handed n0 over:\n${trace}`,
  );
  assert.ok(!r.trace.some((l) => /h1 stops n0 .*: lost/.test(l)), `h1 started on its overdue session and lost it:\n${trace}`);
  assert.ok(
    r.trace.some((l) => /h1 starts n0/.test(l)),
    `h1 led n0 on a new session:\n${trace}`,
  );
});
