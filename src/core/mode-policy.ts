// The three ways of holding a name — a singleton (`locker(name, fn)`), a try-lock
// (`tryLock`) and a waiting lock (`lock`) — run the same per-name machine
// (name-machine.ts). What differs is said here, once per mode, and chosen at
// construction: what happens on a busy name, on loss, on fn's failure, when fn settles,
// and whether placement (placement.ts) may move the name.

/** How a name is held: 'queue' (a singleton), 'try' (`tryLock`), 'lock' (`lock`). */
export type Mode = 'queue' | 'try' | 'lock';

export interface ModePolicy {
  readonly mode: Mode;
  /**
   * A name someone else holds. 'queue': join the back of its queue (and queue again when
   * our key or lease goes before we led). 'refuse': campaign only if nobody else does,
   * answer with the holder otherwise, and end the attempt — with an error — when our key,
   * our lease or the campaign's answer is lost before we led.
   */
  readonly onBusy: 'queue' | 'refuse';
  /** A leadership lost (deposed, lease lost): queue again, or leave for good. */
  readonly onLoss: 'campaign' | 'retire';
  /** fn failed: step down and queue again after a backoff (a standby's turn), or leave for good. */
  readonly onError: 'backoff' | 'retire';
  /** fn returned while leading: keep the name until the next election, or release it at once. */
  readonly onSettle: 'keep' | 'release';
  /** fn's failure goes to the `error` event (not for a lock: it is the caller's answer). */
  readonly reportsFailure: boolean;
  /** A queued key steps out of the way of a requested move or a draining host. */
  readonly standsAside: boolean;
  /** Balance, drain and failover may hand the leadership over and step the standby back. */
  readonly handsOver: boolean;
}

/** A singleton: campaigns again after every leadership, for as long as it is registered. */
const QUEUE: ModePolicy = {
  mode: 'queue',
  onBusy: 'queue',
  onLoss: 'campaign',
  onError: 'backoff',
  onSettle: 'keep',
  reportsFailure: true,
  standsAside: true,
  handsOver: true,
};

/** A try-lock: campaigns once, only if nobody else does, and leads at most once. */
const TRY: ModePolicy = {
  mode: 'try',
  onBusy: 'refuse',
  onLoss: 'retire',
  onError: 'retire',
  onSettle: 'keep',
  reportsFailure: true,
  standsAside: false,
  handsOver: false,
};

/** A waiting lock: queues once, runs fn once, releases the name as soon as fn settles. */
const LOCK: ModePolicy = {
  mode: 'lock',
  onBusy: 'queue',
  onLoss: 'retire',
  onError: 'retire',
  onSettle: 'release',
  reportsFailure: false,
  standsAside: true,
  handsOver: false,
};

const POLICIES: Readonly<Record<Mode, ModePolicy>> = { queue: QUEUE, try: TRY, lock: LOCK };

export function policyFor(mode: Mode): ModePolicy {
  return POLICIES[mode];
}
