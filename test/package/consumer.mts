// Type check, ESM consumer (module nodenext/node16): the "import" types.
import locked, { locked as named, isLockerClosedError, LockerClosedError, NotLeaderError } from 'locked-etcd';
import type { Locker, Leadership, LockerOptions, Singleton, StopReason, TryLockResult, Health } from 'locked-etcd';

const options: LockerOptions = { ttl: 10 };
const locker: Locker = locked('127.0.0.1:2379', options);
const same: typeof named = locked;
const s: Singleton = locker('job', async (remove: () => Promise<void>, l: Leadership) => {
  l.check();
  const token: string = l.token;
  l.signal.addEventListener('abort', () => void token);
  await remove();
});
s.on('stop', (reason: StopReason) => void reason);
const r: Promise<TryLockResult> = locker.tryLock('other', () => undefined);
const h: Health = locker.health();
const closed: boolean = isLockerClosedError(new Error('x'));
const isNotLeader = (e: unknown): e is NotLeaderError => e instanceof NotLeaderError;
const base: Error = {} as LockerClosedError;
void [same, r, h, closed, isNotLeader, base];
// @ts-expect-error the default export takes hosts, not a number
locked(42);
