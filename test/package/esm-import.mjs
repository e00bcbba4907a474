// Runtime check, ESM: `import` of the installed package. Run from the consumer project.
import assert from 'node:assert/strict';
import locked, { locked as named, isLockerClosedError, LockerClosedError } from 'locked-etcd';
import * as ns from 'locked-etcd';

assert.equal(typeof locked, 'function', 'default export is not a function');
assert.equal(locked, named, 'default export is not the named export `locked`');
assert.equal(typeof isLockerClosedError, 'function', 'isLockerClosedError is not exported');
assert.equal(ns.default, locked);

// A locker that never talks to etcd: closed before use, it refuses work with a LockerClosedError.
const locker = locked('127.0.0.1:9');
await locker.close();
await assert.rejects(
  locker.tryLock('x', () => {}),
  (err) => isLockerClosedError(err) && err instanceof LockerClosedError,
);
console.log(`esm import ok (node ${process.version})`);
