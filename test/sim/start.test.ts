// A fleet's start in the deterministic simulation (test/helpers/sim/fleet.ts fleetStart): the
// start gate (src/features/start-gate.ts) has each name campaign first on the host meant to
// lead it, so hosts that start within moments of each other end up spread without a move.
// Around it: a host that boots after the others settled (balancing spreads, as before the
// gate), a host that never campaigns for the names it would own (they are led by the
// deadline), a host SIGKILLed while the names wait. The simulation's invariants hold in all.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fleetStart, type StartResult } from '../helpers/sim/fleet.js';
import { JOINING_AT } from '../../src/core/campaign.js';
import { MAX_HOLD_MS } from '../../src/features/start-gate.js';

const HOSTS = 3;
// A fleet's worth of names (the gate holds only a registration that makes a host joining).
const NAMES = JOINING_AT + 40;

const show = (r: StartResult): string =>
  `every name led ${r.allLedMs} ms and spread ${r.spreadMs} ms after the last host started; ${r.movesBefore} moves on the way; loads ${JSON.stringify(r.loads)}`;

test(`${HOSTS} hosts × ${NAMES} names starting 100 ms apart: spread with no move`, async (t: TestContext) => {
  for (const seed of [1, 2]) {
    const r = await fleetStart(HOSTS, NAMES, 100, seed);
    t.diagnostic(`seed ${seed}: ${show(r)}`);
    assert.deepEqual(r.violations, []);
    assert.ok(r.spreadMs !== undefined, 'spread');
    assert.equal(r.movesBefore, 0, 'every name first led where it stays');
  }
});

test('a host that boots after the others settled: balancing spreads; one that never campaigns for its names: they are led by the deadline; one killed during the hold: its names are led by the others', async (t: TestContext) => {
  const late = await fleetStart(HOSTS, NAMES, 1_000, 3);
  t.diagnostic(`1 s apart: ${show(late)}`);
  assert.deepEqual(late.violations, []);
  assert.ok(late.spreadMs !== undefined, 'spread');
  assert.ok(late.movesBefore > 0, 'the first host led more than its share: balancing moved names');

  // h2 registers JOINING_AT of the names: joining like the others, it owns names it never campaigns for.
  const half = await fleetStart(HOSTS, NAMES, 100, 4, 3, { partial: { host: 2, names: JOINING_AT } });
  t.diagnostic(`h2 registers ${JOINING_AT} of the ${NAMES} names: ${show(half)}`);
  assert.deepEqual(half.violations, []);
  // (Spread by balancing's own measure: its shares count who queues for each name.)
  assert.ok(half.allLedMs !== undefined && half.allLedMs <= MAX_HOLD_MS, `every name led ${half.allLedMs} ms after the last start`);

  const killed = await fleetStart(HOSTS, NAMES, 100, 5, 3, { kill: { host: 2, at: 400 } });
  t.diagnostic(`h2 killed at 400 ms: ${show(killed)}`);
  assert.deepEqual(killed.violations, []);
  assert.ok(killed.allLedMs !== undefined && killed.allLedMs <= MAX_HOLD_MS, `every name led ${killed.allLedMs} ms after the last start`);
  assert.ok(killed.spreadMs !== undefined, 'spread over the two left');
});
