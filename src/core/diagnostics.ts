// Leadership changes and etcd trouble on node:diagnostics_channel, for applications that
// want them in their own logs or traces without wiring listeners to every singleton
// (undici and fastify publish the same way). Publishing costs nothing while nobody
// subscribes: every publish is guarded by `hasSubscribers`.
//
//   import diagnostics_channel from 'node:diagnostics_channel';
//   diagnostics_channel.subscribe('locked:leadership', (m) => logger.info(m, 'leadership'));
import diagnostics_channel from 'node:diagnostics_channel';
import type { StopReason } from './leadership-types.js';

/** Published on `locked:leadership` when this host starts or stops leading a name. */
export interface LeadershipMessage {
  /** The locker's node id. */
  id: string;
  name: string;
  event: 'start' | 'stop';
  /** Fencing token of the leadership (decimal string). */
  token: string;
  /** Why it stopped (`event: 'stop'` only). */
  reason?: StopReason;
}

/** Published on `locked:session` when a lease is granted or lost. */
export interface SessionMessage {
  id: string;
  event: 'granted' | 'lost';
  /** Lease id (decimal string). */
  leaseId: string;
  /** What ended it (`event: 'lost'` only). */
  error?: Error;
}

/** Published on `locked:error`: everything the locker reports on its `error` event. */
export interface ErrorMessage {
  id: string;
  error: Error;
}

/**
 * Why the prefix watch left its member: `preferred` — another member answered keepalives and
 * calls, the watch follows it; `dropped` — the stream broke and did not come back at once;
 * `behind` — the member's applied revision stayed below another member's (cut off from its
 * peers); `silent` — the member did not answer a local read (frozen, overloaded).
 */
export type WatchMoveReason = 'preferred' | 'dropped' | 'behind' | 'silent';

/** Published on `locked:watch` when the prefix watch moves to another member (gap-free: it resumes after `revision`). */
export interface WatchMoveMessage {
  id: string;
  from: string;
  to: string;
  reason: WatchMoveReason;
  /** The last revision the watch had seen (decimal string); the new stream starts after it. */
  revision: string;
}

/** Channel names, for `diagnostics_channel.subscribe()`. */
export const DIAGNOSTICS_CHANNELS = {
  leadership: 'locked:leadership',
  session: 'locked:session',
  error: 'locked:error',
  watch: 'locked:watch',
} as const;

const leadership = diagnostics_channel.channel(DIAGNOSTICS_CHANNELS.leadership);
const session = diagnostics_channel.channel(DIAGNOSTICS_CHANNELS.session);
const error = diagnostics_channel.channel(DIAGNOSTICS_CHANNELS.error);
const watch = diagnostics_channel.channel(DIAGNOSTICS_CHANNELS.watch);

/** @internal */
export function publishLeadership(m: () => LeadershipMessage): void {
  if (leadership.hasSubscribers) leadership.publish(m());
}

/** @internal */
export function publishSession(m: () => SessionMessage): void {
  if (session.hasSubscribers) session.publish(m());
}

/** @internal */
export function publishError(m: () => ErrorMessage): void {
  if (error.hasSubscribers) error.publish(m());
}

/** @internal */
export function publishWatchMove(m: () => WatchMoveMessage): void {
  if (watch.hasSubscribers) watch.publish(m());
}
