// The states of one name on this host, and what they say to a reader (the handle in
// singleton.ts, health, metrics): who leads, where we queue, what still runs. The
// transitions are the machine's (name-machine.ts).
import type { Timer } from './clock.js';
import type { Run } from './leadership.js';
import type { Session } from './session.js';
import type { HandOverPast } from '../etcd/store.js';

/** Our key in etcd: what a campaign wrote. */
export interface Claim {
  readonly session: Session;
  readonly key: string;
  /** Create revision of the key: the fencing token. */
  readonly token: bigint;
  /**
   * The view must have reached this revision before it may judge the key: the key's own
   * create revision, so the view has seen it written. (Not the campaign transaction's
   * revision: when the key already existed — a retried write that had landed — that can
   * be a revision of keys outside the prefix, which this view never sees.)
   */
  readonly since: bigint;
}

/** What follows once a leadership has drained (or a write in flight has answered). */
export type Next =
  /** Queue again (deposed, lost: the key is gone or goes with the lease). */
  | 'campaign'
  /** Delete our key, then wait before queueing again (fn failed: a standby's turn). */
  | 'backoff'
  /** Delete our key (if still ours) and leave for good (remove, try-lock over, close). */
  | 'retire';

/**
 * THE LIFECYCLE OF ONE NAME on this host: every state carries what it needs; the machine
 * (name-machine.ts) moves between them through its one `enter()`.
 */
export type State =
  /** Registered; waits for a session (and a current view) to campaign. */
  | { readonly kind: 'idle' }
  /** The campaign write is in flight; `then` is set if the name must not stay queued. */
  | { readonly kind: 'campaigning'; readonly session: Session; then: 'retire' | undefined }
  /** Our key is in etcd, behind others (or not yet judged). */
  | { readonly kind: 'queued'; readonly claim: Claim; awaitingRenewal?: boolean }
  /** Our key is first: fn runs. */
  | { readonly kind: 'leading'; readonly claim: Claim; readonly run: Run }
  /** The leadership ended; fn's signal is aborted and we wait for fn to settle. The key stays until then. */
  | { readonly kind: 'draining'; claim: Claim | undefined; readonly run: Run; then: Next; readonly past?: HandOverPast }
  /** Deleting our key (nothing runs on it). */
  | { readonly kind: 'resigning'; then: Next }
  /** Waiting before the next campaign. */
  | { readonly kind: 'backoff'; readonly timer: Timer; readonly why: 'error' | 'campaign' }
  /** Removed, closed, or a try-lock that is over. */
  | { readonly kind: 'retired' };

/** Name of a lifecycle state. */
export type Phase = State['kind'];

/** The state of kind `K`. */
export type In<K extends Phase> = Extract<State, { kind: K }>;

/** True while this host leads the name and the step-down deadline has not passed. */
export function leads(s: State): boolean {
  return s.kind === 'leading' && s.claim.session.alive();
}

/** Our key while queued or leading. */
export function claimOf(s: State): Claim | undefined {
  return s.kind === 'queued' || s.kind === 'leading' ? s.claim : undefined;
}

/** fn's run while it has not settled (leading, or draining after the leadership ended). */
export function unsettledRun(s: State): Run | undefined {
  return (s.kind === 'leading' || s.kind === 'draining') && !s.run.done ? s.run : undefined;
}

/** Leaving for good (removed, closed, a try-lock or lock over) but not gone yet: a write or fn still to settle. */
export function retiring(s: State): boolean {
  return (s.kind === 'campaigning' || s.kind === 'draining' || s.kind === 'resigning') && s.then === 'retire';
}

/** Resolves when fn's current or last run has settled. */
export function settled(s: State): Promise<void> {
  return s.kind === 'leading' || s.kind === 'draining' ? s.run.settled : Promise.resolve();
}
