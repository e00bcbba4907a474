// What the demo's narrator (demo.ts) and its host processes (host.ts) say to each other over IPC.
import type { StopReason } from '../src/index.js';

/** The jobs that must run on exactly one host at a time. */
export const NAMES = ['scheduler', 'report-mailer', 'billing-sync', 'cache-warmer', 'search-indexer', 'digest-sender'] as const;

/** What a host tells the narrator. `t`, `called`, `resolved`: process.hrtime.bigint() as decimal strings. */
export type HostMessage =
  | { type: 'session'; leaseId: string }
  | { type: 'start'; name: string; token: string; key: string; t: string }
  | { type: 'stop'; name: string; reason: StopReason; t: string }
  | { type: 'removed'; name: string; called: string; resolved: string }
  | { type: 'closed'; t: string }
  | { type: 'error'; message: string };

/** What the narrator asks of a host. */
export type HostCommand = { op: 'remove'; name: string } | { op: 'close' };
