// Key layout of etcd's own election protocol (Go `concurrency.Election`,
// `etcdctl elect`): `<prefix><name>/<lease id in lowercase hex>`, value = proposal.

export const MAX_NAME_LENGTH = 256;

export function validateName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new TypeError(`name must be a string, got ${typeof name} (${String(name)})`);
  }
  if (name.length === 0) throw new TypeError('name must not be empty');
  if (name.length > MAX_NAME_LENGTH) {
    throw new TypeError(`name must be at most ${MAX_NAME_LENGTH} characters, got ${name.length} ('${name.slice(0, 40)}…')`);
  }
  // A '/' would put this name's keys inside another name's range
  // ('a/b/<lease>' is also under 'a/'), and a candidate of one would wait on the other.
  if (name.includes('/')) throw new TypeError(`name must not contain '/', got '${name}'`);
}

/** Decimal lease id (etcd3 keeps 64-bit ids as strings) → lowercase hex, as Go's `%x`. */
export function leaseHex(leaseId: string): string {
  return BigInt(leaseId).toString(16);
}

export const namePrefix = (prefix: string, name: string): string => `${prefix}${name}/`;
export const electionKey = (prefix: string, name: string, leaseId: string): string => `${namePrefix(prefix, name)}${leaseHex(leaseId)}`;

/** The name a key under `prefix` belongs to, or undefined for keys outside the layout. */
export function nameOf(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const slash = key.indexOf('/', prefix.length);
  if (slash <= prefix.length) return undefined;
  return key.slice(prefix.length, slash);
}

/** End of the range of all keys starting with `prefix` (etcd's "prefix + 1"). */
export function prefixEnd(prefix: string): Buffer {
  const buf = Buffer.from(prefix);
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      const end = Buffer.from(buf.subarray(0, i + 1));
      end[i]! += 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

// CONTROL RECORDS live under `<prefix>/`: a key there has no name before its first '/'
// (names are never empty), so it is outside every name's range `<prefix><name>/` — no
// election, ours or `etcdctl elect`'s, ever counts it as a candidate.
export const controlPrefix = (prefix: string): string => `${prefix}/`;
/** This host's presence (under its session's lease): `{ "lease": hex, "draining": bool }`. */
export const hostKey = (prefix: string, nodeId: string): string => `${prefix}/hosts/${nodeId}`;
/** A drain order for a node id (no lease: it holds until undrain, like a cordon). */
export const drainKey = (prefix: string, nodeId: string): string => `${prefix}/drain/${nodeId}`;
/** A request to hand one leadership over gracefully: `{ "from": key, "to"?: nodeId }`. */
export const moveKey = (prefix: string, name: string): string => `${prefix}/move/${name}`;

/** A request to make a host the first standby of a name (standby balance): `{ "from": leader key, "to": nodeId }`. */
export const nextKey = (prefix: string, name: string): string => `${prefix}/next/${name}`;

/** The lease hex of an election key (its last segment). */
export const keyLeaseHex = (key: string): string => key.slice(key.lastIndexOf('/') + 1);
