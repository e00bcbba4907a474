/**
 * TCP proxy on 127.0.0.1 for fault injection between a client and one etcd
 * member.
 *
 *   const proxy = await startProxy(cluster.endpoints[0]);
 *   const client = new Etcd3({ hosts: `http://${proxy.endpoint}` });
 *   proxy.blackhole();   // partition: bytes vanish, connections stay open
 *   proxy.heal();        // new connections work again
 *   proxy.reset();       // RST every connection
 *
 * Semantics:
 * - blackhole(): every byte in either direction, on existing and new
 *   connections, is read and discarded. Nothing is closed: no FIN, no RST,
 *   and closes/errors on one side are not passed to the other. New
 *   connections are accepted (the client's connect succeeds) but no
 *   upstream connection is made. Since the proxy reads (and so TCP-ACKs)
 *   the discarded bytes, the client's kernel sees no retransmission
 *   timeout: only application-level timeouts or keepalives (gRPC
 *   keepalive, request deadlines, lease TTLs) can notice the partition.
 * - heal(): new connections are forwarded again. Connections that were
 *   black-holed have lost bytes mid-stream and cannot be resumed, so by
 *   default they are destroyed with RST on heal (a real partition would
 *   eventually end them by timeout; this is the fast version of that).
 *   `heal({ keepStale: true })` leaves them open and dead instead (they
 *   keep swallowing bytes until reset() or close()).
 * - reset(): destroy every current connection with RST on both sides. The
 *   proxy keeps listening; the blackhole state is unchanged.
 * - delay(ms): from now on every chunk, in each direction, on existing and new
 *   connections, is forwarded `ms` after it arrived (a slow link: latency added per
 *   direction, so a request/response round trip gets 2 × ms more). Order is kept;
 *   an end or close of one side reaches the other after the data queued before it.
 *   delay(0) forwards what is queued at once, in order, and stops delaying.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxyStats {
  /** Connections accepted since start. */
  accepted: number;
  /** Connections currently open (client side). */
  active: number;
  /** Bytes forwarded client → target. */
  bytesUp: number;
  /** Bytes forwarded target → client. */
  bytesDown: number;
  /** Bytes discarded while black-holed (both directions). */
  bytesDropped: number;
}

export interface Proxy extends AsyncDisposable {
  /** `127.0.0.1:P` — give this to clients instead of the target. */
  readonly endpoint: string;
  readonly target: string;
  readonly isBlackholed: boolean;
  readonly stats: Readonly<ProxyStats>;
  blackhole(): void;
  heal(opts?: { keepStale?: boolean }): void;
  reset(): void;
  /** Latency added to each direction, in ms (0: none, the default). */
  delay(ms: number): void;
  readonly delayMs: number;
  close(): Promise<void>;
}

interface Conn {
  client: Socket;
  upstream: Socket | undefined;
  /** Set once black-holed: this connection never forwards again. */
  stale: boolean;
}

function rst(s: Socket | undefined): void {
  if (!s || s.destroyed) return;
  // After end() libuv refuses the reset (EINVAL, the handle is shutting down) and Node 20
  // then never closes the handle: the process spins at exit. A FIN was sent anyway.
  if (s.writableEnded) {
    s.destroy();
    return;
  }
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

function parseHostPort(target: string): { host: string; port: number } {
  const i = target.lastIndexOf(':');
  const host = target.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`bad proxy target ${JSON.stringify(target)}, expected host:port`);
  }
  return { host, port };
}

export async function startProxy(target: string): Promise<Proxy> {
  const { host, port } = parseHostPort(target.replace(/^https?:\/\//, ''));
  const conns = new Set<Conn>();
  const stats: ProxyStats = { accepted: 0, active: 0, bytesUp: 0, bytesDown: 0, bytesDropped: 0 };
  let blackholed = false;
  let delayMs = 0;
  /** Per direction of every connection: what waits for its due time (see delay()). */
  const lanes = new Set<Lane>();

  interface Lane {
    queue: { due: number; what: Buffer | 'end' | 'close' }[];
    timer: NodeJS.Timeout | undefined;
    flush(all: boolean): void;
  }

  /** Forward `from` → `to` unless the connection is black-holed, `delayMs` late. */
  function wire(conn: Conn, from: Socket, to: Socket, dir: 'bytesUp' | 'bytesDown'): void {
    const deliver = (what: Buffer | 'end' | 'close'): void => {
      if (what === 'end') {
        if (!conn.stale) to.end();
      } else if (what === 'close') {
        if (!conn.stale) to.destroy();
      } else if (conn.stale) {
        stats.bytesDropped += what.length;
      } else {
        stats[dir] += what.length;
        if (!to.write(what) && delayMs === 0) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      }
    };
    const lane: Lane = {
      queue: [],
      timer: undefined,
      flush(all) {
        clearTimeout(lane.timer);
        lane.timer = undefined;
        const t = Date.now();
        while (lane.queue.length > 0 && (all || lane.queue[0]!.due <= t)) deliver(lane.queue.shift()!.what);
        if (lane.queue.length > 0) lane.timer = setTimeout(() => lane.flush(false), lane.queue[0]!.due - t);
        else lanes.delete(lane);
      },
    };
    const push = (what: Buffer | 'end' | 'close'): void => {
      if (delayMs === 0 && lane.queue.length === 0) return deliver(what);
      lanes.add(lane);
      lane.queue.push({ due: Date.now() + delayMs, what });
      if (lane.timer === undefined) lane.flush(false);
    };
    from.on('data', (chunk: Buffer) => push(chunk));
    from.on('end', () => push('end'));
    from.on('close', () => push('close'));
  }

  function drop(from: Socket): void {
    from.on('data', (chunk: Buffer) => {
      stats.bytesDropped += chunk.length;
    });
  }

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    stats.accepted += 1;
    stats.active += 1;
    const conn: Conn = { client, upstream: undefined, stale: blackholed };
    conns.add(conn);
    client.on('error', () => {
      /* reported via 'close' */
    });
    client.on('close', () => {
      stats.active -= 1;
      conns.delete(conn);
    });
    if (conn.stale) {
      // Accept, swallow, never connect upstream.
      drop(client);
      return;
    }
    const upstream = connect({ host, port, allowHalfOpen: true });
    conn.upstream = upstream;
    upstream.on('error', () => {
      /* reported via 'close' */
    });
    wire(conn, client, upstream, 'bytesUp');
    wire(conn, upstream, client, 'bytesDown');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('unexpected proxy address');
  const endpoint = `127.0.0.1:${addr.port}`;

  const resetAll = (): void => {
    for (const c of conns) {
      rst(c.client);
      rst(c.upstream);
    }
  };

  let closed: Promise<void> | undefined;
  const proxy: Proxy = {
    endpoint,
    target,
    get isBlackholed() {
      return blackholed;
    },
    get stats() {
      return { ...stats };
    },
    blackhole() {
      blackholed = true;
      for (const c of conns) {
        if (c.stale) continue;
        c.stale = true;
        // Writes already queued in socket buffers may still go out; nothing
        // new is forwarded. Resume paused sides so their data is drained
        // (and dropped) instead of backing up.
        c.client.resume();
        c.upstream?.resume();
      }
    },
    heal(opts = {}) {
      blackholed = false;
      if (opts.keepStale) return;
      for (const c of conns) {
        if (c.stale) {
          rst(c.client);
          rst(c.upstream);
        }
      }
    },
    reset() {
      resetAll();
    },
    get delayMs() {
      return delayMs;
    },
    delay(ms: number) {
      if (!(ms >= 0)) throw new Error(`bad delay ${ms}`);
      delayMs = ms;
      if (ms === 0) for (const l of [...lanes]) l.flush(true);
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const l of lanes) clearTimeout(l.timer);
        lanes.clear();
        server.close(() => resolve());
        resetAll();
      });
      return closed;
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return proxy;
}
