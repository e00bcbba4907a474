// The requester's side of a graceful failover (`failover()`, `locked failover`): a move
// request naming the leader's key, then the wait until that key is gone. The leader's side
// is the mover's (placement.ts: handsOver, standsAside).
import { sleep, type Clock } from '../core/clock.js';
import { EtcdUnavailableError, HandOverError } from '../core/errors.js';
import { drainKey, moveKey, namePrefix, validateName } from '../etcd/keys.js';
import type { MoveRequest } from './control-records.js';
import type { Candidate } from '../core/queue.js';
import type { ControlStore } from '../etcd/store.js';
import type { ControlWriter } from './control-writes.js';

/**
 * Deletes `key` only while it still holds `value` (a newer request is someone else's).
 * False if etcd did not answer: the record stays, void once its leadership is gone, and a
 * host's mover sweeps it on a later pass (mover.ts, sweepOrphans). @internal
 */
export async function deleteIfUnchanged(store: ControlWriter, key: string, value: string, timeoutMs: number): Promise<boolean> {
  try {
    await store.remove(key, value, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/**
 * @internal
 * The requester's side of a graceful failover: writes `<prefix>/move/<name>` naming the
 * current leader's key (and the target), then waits until that key is gone. The leader
 * drains fn before it deletes its key, so the next leader starts after it stopped.
 */
export async function requestHandOver(
  store: ControlStore,
  clock: Clock,
  prefix: string,
  name: string,
  by: string,
  options: { to?: string; timeoutMs: number; requestTimeoutMs: number },
): Promise<string | undefined> {
  validateName(name);
  const { to, timeoutMs, requestTimeoutMs } = options;
  const readQueue = (): Promise<Candidate[]> => store.readQueue(namePrefix(prefix, name), requestTimeoutMs);
  let queue: Candidate[];
  try {
    queue = await readQueue();
  } catch (err) {
    throw new EtcdUnavailableError(`read of the queue of '${name}'`, err);
  }
  const head = queue[0];
  if (!head) return undefined;
  if (to !== undefined) {
    if (head.value === to) return to;
    if (!queue.some((c) => c.value === to)) {
      throw new HandOverError(
        name,
        'not-queued',
        `cannot hand '${name}' to '${to}': it does not queue for the name (candidates: ${queue.map((c) => c.value).join(', ')})`,
        head.value,
      );
    }
    // A draining host stands aside whenever another may lead: the move could never land.
    let draining: boolean;
    try {
      draining = (await store.get(drainKey(prefix, to), requestTimeoutMs)) !== undefined;
    } catch (err) {
      throw new EtcdUnavailableError(`read of the drain order of '${to}'`, err);
    }
    if (draining) throw new HandOverError(name, 'other', `cannot hand '${name}' to '${to}': it is draining (undrain it first)`, head.value);
  } else if (queue.length < 2) {
    return head.value; // nobody else queues: the name stays where it is
  }
  const value = JSON.stringify({ from: head.key, ...(to !== undefined ? { to } : {}), by } satisfies MoveRequest);
  const key = moveKey(prefix, name);
  try {
    await store.put(key, value, undefined, requestTimeoutMs);
  } catch (err) {
    // Its answer may be what was lost: the request has no lease, so take it back out.
    await deleteIfUnchanged(store, key, value, requestTimeoutMs);
    throw new EtcdUnavailableError(`write of the move request of '${name}'`, err);
  }
  const until = clock.now() + timeoutMs;
  try {
    for (;;) {
      let now: Candidate | undefined;
      try {
        now = (await readQueue())[0];
      } catch {
        now = head; // unanswered read: try again until the deadline
      }
      if (now?.key !== head.key) {
        if (to !== undefined && now?.value !== to) {
          throw new HandOverError(
            name,
            'other',
            `'${name}' went to '${now?.value ?? 'nobody'}' instead of '${to}' (the target left the queue meanwhile?)`,
            now?.value,
          );
        }
        return now?.value;
      }
      if (clock.now() >= until) {
        throw new HandOverError(
          name,
          'timeout',
          `the leader '${head.value}' of '${name}' did not hand over within ${timeoutMs} ms (cut off from etcd, or an older locked that does not read move requests?); ` +
            `force it with failover --force, which deletes its key without waiting for its work to stop`,
          head.value,
        );
      }
      await sleep(clock, 50);
    }
  } finally {
    await deleteIfUnchanged(store, key, value, requestTimeoutMs);
  }
}
