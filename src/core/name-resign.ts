// Deleting our key of one name, retried until etcd answers or our session ends: a key
// left behind under a lease we keep alive would block the name for everyone, and a key
// under an ended lease goes with the lease.
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Clock } from './clock.js';
import { resign, type ElectionContext } from './election.js';
import { EtcdUnavailableError } from './errors.js';
import type { Session } from './session.js';
import type { HandOverPast } from '../etcd/store.js';

/**
 * Deletes `key`, guarded by `token` (its create revision) or, when the campaign's answer
 * was lost, by the lease in its name; retries with backoff, reporting each failure, until
 * it works or `session` ends. `past`: a hand-over past standbys (store.ts, HandOverPast).
 */
export async function resignUntilDone(
  ctx: ElectionContext & { readonly clock: Clock },
  name: string,
  session: Session,
  key: string,
  token: bigint | undefined,
  report: (err: Error) => void,
  past?: HandOverPast,
): Promise<void> {
  let backoff: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: 50, maxDelay: 2000 }).next();
  for (;;) {
    try {
      await resign(ctx, key, token, session, past);
      return;
    } catch (err) {
      if (session.ended) return;
      report(new EtcdUnavailableError(`resign of '${name}'`, err));
      await new Promise<void>((r) => ctx.clock.setTimeout(r, backoff.duration));
      backoff = backoff.next(undefined);
    }
  }
}
