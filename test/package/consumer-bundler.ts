// Type check, bundler resolution (module esnext): the "import" types.
import locked, { isLockerClosedError, type Locker, type Leadership } from 'locked-etcd';

const locker: Locker = locked(['127.0.0.1:2379'], { ttl: 10 });
locker('job', (_remove, l: Leadership) => l.check());
const closed: boolean = isLockerClosedError(new Error('x'));
void closed;
// @ts-expect-error the default export takes hosts, not a number
locked(42);
