// Type check, CommonJS consumer (module nodenext/node16): the "require" types (.d.cts).
import lib = require('locked-etcd');
import lockedDefault from 'locked-etcd';

const locker: lib.Locker = lib.locked('127.0.0.1:2379', { ttl: 10 });
const viaDefault: lib.Locker = lib.default('127.0.0.1:2379');
const viaInterop: lib.Locker = lockedDefault('127.0.0.1:2379');
const closed: boolean = lib.isLockerClosedError(new Error('x'));
const isClosed = (e: unknown): e is lib.LockerClosedError => e instanceof lib.LockerClosedError;
locker('job', (_remove, l: lib.Leadership) => l.check());
void [viaDefault, viaInterop, closed, isClosed];
// @ts-expect-error the default export takes hosts, not a number
lib.locked(42);
