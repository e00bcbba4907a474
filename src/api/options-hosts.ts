// The first argument of locked(hosts, options): the etcd endpoints, checked with the options
// (options.ts) and in the same way — a TypeError naming the value.
import { isIP } from 'node:net';
import type { IOptions } from '../etcd/etcd3.js';
import { describeValue } from '../core/errors.js';
import { describeTyped } from './options-schema.js';

export function parseHosts(hosts: unknown): string[] {
  const list = typeof hosts === 'string' ? hosts.split(',') : hosts;
  if (!Array.isArray(list)) {
    throw new TypeError(`hosts must be a string like 'h1:2379,h2:2379' or an array of strings, got ${describeTyped(hosts)}`);
  }
  const out: string[] = [];
  for (const h of list) {
    if (typeof h !== 'string') throw new TypeError(`hosts must contain only strings, got ${describeTyped(h)}`);
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
export function refuseTlsToAddresses(hosts: readonly string[], etcd: Omit<IOptions, 'hosts'> | undefined): void {
  if (!REFUSES_IP_SERVERNAME) return;
  if (etcd?.credentials === undefined && !hosts.some((h) => h.startsWith('https://'))) return;
  const byAddress = hosts.filter((h) => isIP(new URL(h).hostname.replace(/^\[|\]$/g, '')) !== 0);
  if (byAddress.length === 0) return;
  throw new TypeError(
    `hosts: TLS to an IP address cannot work on Node ${process.versions.node} (${byAddress.join(', ')}): grpc-js sends the address as the TLS server name, which Node 26 and later refuse; name the members by a DNS name their certificates carry (e.g. https://localhost:2379), or run Node 22 or 24`,
  );
}
