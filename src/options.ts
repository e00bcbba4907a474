import { isIP } from 'node:net';
import type { IOptions } from 'etcd3';
import { nanoid } from 'nanoid';
import { systemClock, type Clock } from './clock.js';

/** etcd's own minimum lease TTL with default server timings (1.5 × election timeout, rounded up). */
export const MIN_TTL = 2;

export interface LockerOptions {
  /** This host's node id, written as the value of its election keys. Default: a nanoid. */
  id?: string;
  /**
   * Lease TTL in whole seconds (default 10, at least 2). A crashed host is replaced
   * after at most this long; a shorter TTL means faster failover and more keepalives.
   */
  ttl?: number;
  /**
   * Seconds after the send time of the last keepalive etcd acknowledged at which a
   * leader stops itself. Default ⅔ × ttl. Must satisfy keepaliveInterval < renewDeadline < ttl:
   * the gap ttl − renewDeadline is the margin for clock-rate drift and a late timer.
   */
  renewDeadline?: number;
  /** Seconds between keepalives at rest. Default ttl / 3; at most ttl / 3. */
  keepaliveInterval?: number;
  /** Key prefix of every election of this locker. Default `'locked/'`. */
  prefix?: string;
  /**
   * On SIGTERM / SIGINT, resign every singleton at once so a standby starts without
   * waiting for the TTL, then let the process exit as it would have. Default true.
   */
  handleSignals?: boolean;
  /**
   * Seconds a graceful step-down (remove, close, fn failure) waits for the running
   * fn's promise to settle after aborting its signal, before releasing the key anyway.
   * Default: ttl.
   */
  stopTimeout?: number;
  /**
   * Spread leaderships over the hosts (default true): a host leading two or more names
   * more than a candidate of one of them hands it over gracefully (README: Balance).
   * `{ concurrency }` bounds the moves one host makes at once (default 16).
   */
  balance?: boolean | { concurrency?: number };
  /** Passed to the etcd3 client: TLS `credentials`, `auth`, `grpcOptions`, `defaultCallOptions`… */
  etcd?: Omit<IOptions, 'hosts'>;
  /** Injected clock (tests). */
  clock?: Clock;
}

export interface ResolvedOptions {
  hosts: string[];
  id: string;
  ttl: number;
  renewDeadlineMs: number;
  keepaliveIntervalMs: number;
  /**
   * How often the prefix watch checks that its member keeps up (watch.ts): twice per keepalive
   * interval, so a member that fell silent is left within about ttl/4 — a deposed leader must
   * stop within ttl/3 of its key's delete.
   */
  watchFreshnessMs: number;
  prefix: string;
  handleSignals: boolean;
  stopTimeoutMs: number;
  /** Moves at once per host; 0 = balancing off (drain and requested moves still work). */
  balanceConcurrency: number;
  etcd: Omit<IOptions, 'hosts'>;
  clock: Clock;
}

export function parseHosts(hosts: unknown): string[] {
  const list = typeof hosts === 'string' ? hosts.split(',') : hosts;
  if (!Array.isArray(list)) {
    throw new TypeError(`hosts must be a string like 'h1:2379,h2:2379' or an array of strings, got ${describeValue(hosts)}`);
  }
  const out: string[] = [];
  for (const h of list) {
    if (typeof h !== 'string') throw new TypeError(`hosts must contain only strings, got ${describeValue(h)}`);
    const trimmed = h.trim();
    if (trimmed) out.push(trimmed);
  }
  if (out.length === 0) throw new TypeError(`hosts must name at least one etcd endpoint, got ${describeValue(hosts)}`);
  // etcd3 decides TLS from the scheme; a bare host:port is plain http.
  return out.map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`));
}

/** Node 26 and later refuse an IP address as the TLS server name (it was deprecation DEP0123 before). */
const REFUSES_IP_SERVERNAME = Number(process.versions.node.split('.')[0]) >= 26;

/**
 * grpc-js (under etcd3) sends the endpoint's host as the TLS server name, an IP address
 * included, and Node ≥ 26 refuses that in tls.connect: such a client never connects and
 * only says "No connection established". Said at once instead, with what to do.
 */
function refuseTlsToAddresses(hosts: readonly string[], etcd: LockerOptions['etcd']): void {
  if (!REFUSES_IP_SERVERNAME) return;
  if (etcd?.credentials === undefined && !hosts.some((h) => h.startsWith('https://'))) return;
  const byAddress = hosts.filter((h) => isIP(new URL(h).hostname.replace(/^\[|\]$/g, '')) !== 0);
  if (byAddress.length === 0) return;
  throw new TypeError(
    `hosts: TLS to an IP address cannot work on Node ${process.versions.node} (${byAddress.join(', ')}): grpc-js sends the address as the TLS server name, which Node 26 and later refuse; name the members by a DNS name their certificates carry (e.g. https://localhost:2379), or run Node 22 or 24`,
  );
}

const KNOWN: readonly (keyof LockerOptions)[] = [
  'id',
  'ttl',
  'renewDeadline',
  'keepaliveInterval',
  'prefix',
  'handleSignals',
  'stopTimeout',
  'balance',
  'etcd',
  'clock',
];

/** One place validates every option and the relations between the timings. */
export function resolveOptions(hosts: unknown, options: LockerOptions = {}): ResolvedOptions {
  const parsedHosts = parseHosts(hosts);
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if ((KNOWN as readonly string[]).includes(key)) continue;
    const near = nearest(key, KNOWN);
    throw new TypeError(`unknown option '${key}'${near ? ` (did you mean '${near}'?)` : ''}; valid options: ${KNOWN.join(', ')}`);
  }
  const id = options.id ?? nanoid();
  if (typeof id !== 'string' || id.length === 0) {
    throw new TypeError(`options.id must be a non-empty string, got ${describeValue(options.id)}`);
  }
  const ttl = options.ttl ?? 10;
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < MIN_TTL || !Number.isInteger(ttl)) {
    throw new RangeError(
      `options.ttl must be a whole number of seconds ≥ ${MIN_TTL} (etcd's minimum lease TTL), got ${describeValue(ttl)}`,
    );
  }
  const keepaliveInterval = options.keepaliveInterval ?? ttl / 3;
  if (!isPositive(keepaliveInterval) || keepaliveInterval > ttl / 3 + 1e-9) {
    throw new RangeError(
      `options.keepaliveInterval must be a number of seconds in (0, ttl/3 = ${round(ttl / 3)}], got ${describeValue(keepaliveInterval)}`,
    );
  }
  const renewDeadline = options.renewDeadline ?? (2 * ttl) / 3;
  if (!isPositive(renewDeadline) || renewDeadline <= keepaliveInterval || renewDeadline >= ttl) {
    throw new RangeError(
      `options.renewDeadline must be a number of seconds with keepaliveInterval (${round(keepaliveInterval)}) < renewDeadline < ttl (${ttl}), got ${describeValue(renewDeadline)}`,
    );
  }
  const prefix = options.prefix ?? 'locked/';
  if (typeof prefix !== 'string') throw new TypeError(`options.prefix must be a string, got ${describeValue(prefix)}`);
  // Without the slash, prefix 'app' would also cover every key of 'app2…'.
  if (!prefix.endsWith('/')) throw new TypeError(`options.prefix must end with '/', got ${describeValue(prefix)} (use '${prefix}/')`);
  const stopTimeout = options.stopTimeout ?? ttl;
  if (typeof stopTimeout !== 'number' || !(stopTimeout >= 0) || !Number.isFinite(stopTimeout)) {
    throw new RangeError(`options.stopTimeout must be a finite number of seconds ≥ 0, got ${describeValue(stopTimeout)}`);
  }
  refuseTlsToAddresses(parsedHosts, options.etcd);
  const balance = options.balance ?? true;
  let balanceConcurrency: number;
  if (typeof balance === 'boolean') balanceConcurrency = balance ? 16 : 0;
  else if (typeof balance === 'object' && balance !== null) {
    const c = balance.concurrency ?? 16;
    if (!Number.isInteger(c) || c < 1) throw new RangeError(`options.balance.concurrency must be an integer ≥ 1, got ${describeValue(c)}`);
    balanceConcurrency = c;
  } else throw new TypeError(`options.balance must be a boolean or { concurrency }, got ${describeValue(balance)}`);
  return {
    hosts: parsedHosts,
    id,
    ttl,
    renewDeadlineMs: renewDeadline * 1000,
    keepaliveIntervalMs: keepaliveInterval * 1000,
    watchFreshnessMs: (keepaliveInterval * 1000) / 2,
    prefix,
    handleSignals: options.handleSignals ?? true,
    stopTimeoutMs: stopTimeout * 1000,
    balanceConcurrency,
    etcd: options.etcd ?? {},
    clock: options.clock ?? systemClock,
  };
}

/** The known key closest to `key` (edit distance ≤ 2), for "did you mean". */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

const isPositive = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
const round = (n: number): number => Math.round(n * 1000) / 1000;

export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return `[${v.map(describeValue).join(', ')}]`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}
