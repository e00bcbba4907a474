// The write window (src/core/write-window.ts): how many write batches a host has in flight,
// grown by fast answers and halved by slow or failed ones; a full window wakes its waiters
// when a slot frees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WriteWindow } from '../../src/core/write-window.js';
import type { Clock } from '../../src/core/clock.js';

function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  return {
    now: () => now,
    setTimeout: () => 0 as unknown as ReturnType<Clock['setTimeout']>,
    clearTimeout: () => {},
    advance: (ms) => void (now += ms),
  };
}

test('write window: starts at 2, grows by one per fast answer up to 16, halves on a slow or failed one, never below 1', () => {
  const clock = fakeClock();
  const w = new WriteWindow(clock);
  let woken = 0;
  const wake = (): void => void woken++;
  assert.equal(w.limit, 2);
  const a = w.take(wake)!;
  const b = w.take(wake)!;
  assert.equal(w.take(wake), undefined, 'full at 2');
  clock.advance(50);
  a.done(true);
  assert.equal(woken, 1, 'a freed slot wakes the waiter');
  assert.equal(w.limit, 3, 'a fast answer grows the window');
  b.done(true);
  for (let i = 0; i < 30; i++) w.take(wake)!.done(true);
  assert.equal(w.limit, 16, 'up to 16');
  const slow = w.take(wake)!;
  clock.advance(1_500);
  slow.done(true);
  assert.equal(w.limit, 8, 'a slow answer halves it');
  w.take(wake)!.done(false);
  assert.equal(w.limit, 4, 'a failure halves it');
  for (let i = 0; i < 5; i++) w.take(wake)!.done(false);
  assert.equal(w.limit, 1, 'never below 1');
  const one = w.take(wake)!;
  one.done(true);
  one.done(true);
  assert.equal(w.limit, 2, 'done twice counts once');
});

test('write window: counts requests, not batches — small batches share what one full batch takes; an empty window takes any batch', () => {
  const clock = fakeClock();
  const w = new WriteWindow(clock);
  const wake = (): void => {};
  const full = w.take(wake, 100)!;
  const small = Array.from({ length: 10 }, () => w.take(wake, 10));
  assert.ok(
    small.every((s) => s !== undefined),
    'ten batches of 10 fit beside one of 100 in a window of 2',
  );
  assert.equal(w.take(wake, 10), undefined, 'then it is full');
  full.done(true);
  for (const s of small) s!.done(true);
  assert.equal(w.limit, 4, 'a full batch grows it by one, ten tenths by one');
  const big = new WriteWindow(clock);
  assert.ok(big.take(wake, 500), 'an empty window takes a batch larger than itself (no request waits for ever)');
  assert.equal(big.take(wake, 1), undefined);
});

test('write window: an urgent batch goes even when the window is full, and counts — the others wait for it too', () => {
  const clock = fakeClock();
  const w = new WriteWindow(clock);
  const wake = (): void => {};
  const a = w.take(wake)!;
  const b = w.take(wake)!;
  assert.equal(w.take(wake), undefined, 'full at 2');
  const urgent = w.take(wake, 100, true);
  assert.ok(urgent, 'a hand-over delete does not wait');
  assert.equal(w.take(wake, 1), undefined, 'over full now: not even one request more');
  a.done(true); // the window grows to 3, with 2 still in flight (b and the urgent one)
  assert.ok(w.take(wake, 100), 'room for one');
  assert.equal(w.take(wake, 1), undefined, 'the urgent batch counted');
  b.done(true);
  urgent.done(true);
});
