// `locked run --listen HOST:PORT`: probes and metrics over HTTP for Kubernetes, load
// balancers and Prometheus. Plain node:http; every probe is computed from the locker's
// synchronous health() and metrics(), so a probe never waits on etcd. Only /members and
// /health?members=1 — for an operator, not a probe — ask each etcd member (1 s at most).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus, type Locker } from '../index.js';
import { UsageError } from './messages.js';
import { allHealthy, memberTable } from './view.js';

const JSON_TYPE = 'application/json; charset=utf-8';

export interface ListenAddress {
  host: string;
  port: number;
}

// HOST:PORT; HOST a name, IPv4 or [IPv6]; PORT 0–65535 (0: any free port, printed on stderr).
const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/** --listen: HOST:PORT with the host spelled out (no listening on every interface by accident). */
export function listenFlag(value: string | undefined): ListenAddress | undefined {
  if (value === undefined) return undefined;
  const m = LISTEN.exec(value.trim());
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) {
    throw new UsageError(
      `--listen must be HOST:PORT with the host given (e.g. 127.0.0.1:9090, [::1]:9090, 0.0.0.0:9090), got '${value}'`,
      'run',
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** What the probes ask of `locked run` besides the locker. */
export interface ProbeState {
  /** True while this process's program runs as the leader. */
  leading(): boolean;
  /** A line for /leader: who leads, or why not us. */
  describe(): string;
}

/** Listens on `address`; resolves once bound (rejects on EADDRINUSE and the like). */
export async function startProbes(address: ListenAddress, locker: Locker, state: ProbeState): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const [path, query] = (req.url ?? '/').split('?') as [string, string | undefined];
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(405, 'method not allowed\n');
    }
    switch (path) {
      case '/healthz': {
        const h = locker.health();
        if (h.live) return send(200, 'ok\n');
        return send(
          503,
          `unhealthy: ${h.overdue.map((n) => `'${n}'`).join(', ')} still running past the lease's TTL since its last acknowledged keepalive\n`,
        );
      }
      case '/readyz': {
        const h = locker.health();
        if (h.ready) return send(200, 'ok\n');
        const why =
          h.leaseId === undefined || h.lastKeepaliveAgoMs === undefined
            ? 'no lease held'
            : !h.watchConnected
              ? 'the watch of the prefix is not connected'
              : 'no usable lease';
        return send(503, `not ready: ${why}${h.lastError ? ` (${h.lastError})` : ''}\n`);
      }
      case '/leader':
        return send(state.leading() ? 200 : 503, `${state.describe()}\n`);
      case '/metrics':
        return send(200, renderPrometheus(locker.metrics(), { id: locker.id() }), PROMETHEUS_CONTENT_TYPE);
      case '/health': {
        // This host's own view (which member it keeps its lease alive on, watches on, how
        // its calls there went); with ?members=1 also each member's answer and the quorum.
        if (!new URLSearchParams(query ?? '').has('members')) return send(200, `${JSON.stringify(locker.health(), null, 2)}\n`, JSON_TYPE);
        locker.health({ members: true }).then(
          (h) => send(200, `${JSON.stringify(h, null, 2)}\n`, JSON_TYPE),
          (err: unknown) => send(503, `${JSON.stringify({ error: err instanceof Error ? err.message : String(err) })}\n`, JSON_TYPE),
        );
        return;
      }
      case '/members':
        // 200 while every member serves (has a raft leader, answers a linearizable read),
        // 503 during a fault or a member's rejoin: for monitoring, not for a liveness probe.
        locker.health({ members: true }).then(
          (h) => send(allHealthy(h) ? 200 : 503, memberTable(h)),
          (err: unknown) => send(503, `members not polled: ${err instanceof Error ? err.message : String(err)}\n`),
        );
        return;
      default:
        return send(404, 'not found: /healthz, /readyz, /leader, /metrics, /health, /members\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return { server, url: `http://${host}:${a.port}` };
}

/** Stops accepting and drops open (keep-alive) connections. */
export function stopProbes(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
