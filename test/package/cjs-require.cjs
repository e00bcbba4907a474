// Runtime check, CommonJS: require() of the installed package (Node's require(esm)).
'use strict';
const assert = require('node:assert/strict');
const m = require('locked-etcd');

assert.equal(typeof m.default, 'function', 'require(): no default export');
assert.equal(m.default, m.locked, 'require(): default is not the named export `locked`');
assert.equal(typeof m.isLockerClosedError, 'function', 'require(): isLockerClosedError missing');
assert.equal(typeof m.LockerClosedError, 'function', 'require(): LockerClosedError missing');
// Set by require(esm) when the module has a default export: what __importDefault looks for.
assert.equal(m.__esModule, true, 'require(): namespace lacks __esModule');
// Same module instance as import(): one copy of the classes, instanceof works across both.
import('locked-etcd')
  .then(async (esm) => {
    assert.equal(esm.LockerClosedError, m.LockerClosedError, 'require() and import() loaded two copies');
    const locker = m.locked('127.0.0.1:9');
    await locker.close();
    await assert.rejects(
      locker.tryLock('x', () => {}),
      (err) => m.isLockerClosedError(err),
    );
    console.log(`cjs require ok (node ${process.version})`);
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
