// Health and metrics against real etcd: the library's figures after a hand-over, the
// Prometheus text they render to, health().live/ready while etcd is down, and
// `locked run --listen` probed over HTTP by two real processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import locked, {
  renderPrometheus,
  PROMETHEUS_CONTENT_TYPE,
  STOP_REASONS,
  PER_NAME_SERIES_LIMIT,
  type Leadership,
  type MetricsSnapshot,
  type NameMetrics,
} from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd({ members: 1 });
});
after(async () => {
  await cluster?.close();
});

const uniquePrefix = (): string => `met${Math.random().toString(36).slice(2, 8)}/`;

// ——— the exposition grammar (Prometheus text format 0.0.4) ———
const METRIC = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]Inf|NaN)';
const SAMPLE = new RegExp(`^(${METRIC})(?:\\{(?:${LABEL})(?:,${LABEL})*\\})? ${VALUE}(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${METRIC}) .*$`);
const TYPE = new RegExp(`^# TYPE (${METRIC}) (counter|gauge|histogram|summary|untyped)$`);

/** Checks every line against the grammar and every sample against its family's TYPE; returns the samples. */
function parseExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.slice(0, -1).split('\n')) {
    const help = HELP.exec(line);
    if (help) continue;
    const type = TYPE.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]!), `one TYPE line per family: ${line}`);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `not a valid sample line: ${JSON.stringify(line)}`);
    const metric = m[1]!;
    const family = types.get(metric) ? metric : metric.replace(/_(bucket|sum|count)$/, '');
    const t = types.get(family);
    assert.ok(t, `sample ${metric} before its # TYPE`);
    if (t === 'counter') assert.match(metric, /_total$/, `counter ${metric} ends in _total`);
    if (t === 'histogram') assert.match(metric, /_(bucket|sum|count)$/, `histogram sample ${metric}`);
    const key = line.slice(0, line.lastIndexOf(' '));
    assert.ok(!samples.has(key), `duplicate sample ${key}`);
    samples.set(key, Number(line.slice(line.lastIndexOf(' ') + 1).replace('Inf', 'Infinity')));
  }
  return samples;
}

describe('locker.metrics()', () => {
  test('after a hand-over between two lockers: counters, leader gauge, queue position, keepalive rtt; the text parses', async () => {
    const prefix = uniquePrefix();
    const a = locked(cluster.endpoints, { ttl: 2, prefix, id: 'a', handleSignals: false });
    const b = locked(cluster.endpoints, { ttl: 2, prefix, id: 'b', handleSignals: false });
    try {
      const runFn = (_r: unknown, l: Leadership): Promise<void> =>
        new Promise((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true }));
      const sa = a('job', runFn);
      await waitFor(() => sa.isLeader, { timeoutMs: 20_000, message: 'a leads' });
      const sb = b('job', runFn);
      await waitFor(() => b.metrics().names['job']?.queuePosition === 1, { timeoutMs: 20_000, message: 'b queued at position 1' });
      let ma = a.metrics();
      assert.equal(ma.id, 'a');
      assert.deepEqual(ma.names['job'], {
        registered: true,
        leader: true,
        queuePosition: 0,
        leadershipsStarted: 1,
        leadershipsStopped: { removed: 0, lost: 0, deposed: 0, error: 0, unhealthy: 0, handover: 0, closed: 0 },
      });
      assert.equal(b.metrics().names['job']?.leader, false);

      // The hand-over: a leaves, b leads.
      await sa.remove();
      await waitFor(() => sb.isLeader, { timeoutMs: 20_000, message: 'b leads after the hand-over' });
      ma = a.metrics();
      const mb = b.metrics();
      assert.equal(ma.names['job']?.leader, false, 'a removed: not leading');
      assert.equal(ma.names['job']?.registered, false, 'a removed: no longer registered, its counters kept');
      assert.equal(ma.names['job']?.queuePosition, undefined, 'a is no longer queued');
      assert.equal(ma.names['job']?.leadershipsStarted, 1);
      assert.equal(ma.names['job']?.leadershipsStopped.removed, 1);
      assert.deepEqual(mb.names['job'], {
        registered: true,
        leader: true,
        queuePosition: 0,
        leadershipsStarted: 1,
        leadershipsStopped: { removed: 0, lost: 0, deposed: 0, error: 0, unhealthy: 0, handover: 0, closed: 0 },
      });
      assert.equal(ma.leaseLosses, 0);

      // Keepalives go every ttl/3: wait for one to be answered.
      const rtt = await waitFor(() => (b.metrics().keepaliveRtt.count > 0 ? b.metrics().keepaliveRtt : undefined), {
        timeoutMs: 10_000,
        message: 'an answered keepalive',
      });
      assert.ok(rtt.sum >= 0 && rtt.sum < rtt.count * 5, `rtt sum ${rtt.sum}`);
      assert.ok(
        rtt.counts.every((c, i) => c <= rtt.count && (i === 0 || c >= rtt.counts[i - 1]!)),
        'cumulative buckets',
      );

      // The rendered text: every line valid, the figures where they belong.
      const text = renderPrometheus(b.metrics());
      const s = parseExposition(text);
      assert.equal(s.get('locked_leader{name="job"}'), 1);
      assert.equal(s.get('locked_queue_position{name="job"}'), 0);
      assert.equal(s.get('locked_leaderships_started_total{name="job"}'), 1);
      assert.equal(s.get('locked_leaderships_stopped_total{name="job",reason="lost"}'), 0);
      assert.equal(s.get('locked_lease_losses_total'), 0);
      assert.ok(s.get('locked_keepalive_rtt_seconds_count')! >= 1);
      assert.equal(s.get('locked_keepalive_rtt_seconds_bucket{le="+Inf"}'), s.get('locked_keepalive_rtt_seconds_count'));
      const sa2 = parseExposition(renderPrometheus(a.metrics(), { id: 'a' }));
      // A removed name has no locked_leader series (a name removed everywhere must not look leaderless); its counters stay.
      assert.equal(sa2.get('locked_leader{id="a",name="job"}'), undefined);
      assert.equal(sa2.get('locked_names_registered{id="a"}'), 0);
      assert.equal(sa2.get('locked_leaderships_started_total{id="a",name="job"}'), 1);
      assert.equal(sa2.get('locked_leaderships_stopped_total{id="a",name="job",reason="removed"}'), 1);
      for (const reason of STOP_REASONS)
        assert.ok(sa2.has(`locked_leaderships_stopped_total{id="a",name="job",reason="${reason}"}`), `reason ${reason} rendered`);
      // The host figures: leading one name, ready, live, and the timings of ttl 2.
      assert.equal(s.get('locked_names_registered'), 1);
      assert.equal(s.get('locked_names_leading'), 1);
      assert.equal(s.get('locked_ready'), 1);
      assert.equal(s.get('locked_live'), 1);
      assert.equal(s.get('locked_lease_ttl_seconds'), 2);
      assert.equal(s.get('locked_renew_deadline_seconds'), 4 / 3);
      assert.equal(s.get('locked_keepalive_interval_seconds'), 2 / 3);
      assert.equal(s.get('locked_keepalive_timeout_seconds'), 1 / 3);
      const mb2 = b.metrics();
      assert.equal(mb2.ready, true);
      assert.equal(mb2.live, true);
      assert.deepEqual(mb2.timing, { ttl: 2, renewDeadline: 4 / 3, keepaliveInterval: 2 / 3, keepaliveTimeout: 1 / 3 });
      // keepaliveTimeout restates the session's attempt limit (session.ts, attemptMs): read the real one.
      const session = (b.runtime as unknown as { current?: { attemptMs?: number } }).current;
      assert.equal(typeof session?.attemptMs, 'number', 'the locker has a session with an attempt limit');
      assert.equal(session!.attemptMs! / 1000, mb2.timing.keepaliveTimeout);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('renderPrometheus escapes label values and stays parseable', () => {
    const snap: MetricsSnapshot = {
      id: 'x',
      names: {
        'we"ird\\name\nx': {
          registered: true,
          leader: true,
          queuePosition: 0,
          leadershipsStarted: 2,
          leadershipsStopped: { removed: 0, lost: 1, deposed: 0, error: 0, unhealthy: 0, handover: 0, closed: 0 },
        },
      },
      leaseLosses: 1,
      keepaliveRtt: { buckets: [0.01, 0.1], counts: [1, 2], sum: 0.055, count: 3 },
      ready: true,
      live: true,
      timing: { ttl: 10, renewDeadline: 20 / 3, keepaliveInterval: 10 / 3, keepaliveTimeout: 5 / 3 },
    };
    const text = renderPrometheus(snap, { id: 'h"o\\st' });
    const s = parseExposition(text);
    assert.equal(s.get('locked_leader{id="h\\"o\\\\st",name="we\\"ird\\\\name\\nx"}'), 1);
    assert.equal(s.get('locked_keepalive_rtt_seconds_bucket{id="h\\"o\\\\st",le="0.1"}'), 2);
    assert.equal(s.get('locked_keepalive_rtt_seconds_bucket{id="h\\"o\\\\st",le="+Inf"}'), 3);
    assert.equal(s.get('locked_lease_losses_total{id="h\\"o\\\\st"}'), 1);
    assert.match(text, /# HELP locked_leader .+\n# TYPE locked_leader gauge\n/);
  });

  test('per-name series: on up to PER_NAME_SERIES_LIMIT names by default, else host totals only; perName forces either way', () => {
    const stops = (over: Partial<NameMetrics['leadershipsStopped']> = {}): NameMetrics['leadershipsStopped'] => ({
      removed: 0,
      lost: 0,
      deposed: 0,
      error: 0,
      unhealthy: 0,
      handover: 0,
      closed: 0,
      ...over,
    });
    const snap = (n: number): MetricsSnapshot => {
      const names: Record<string, NameMetrics> = {};
      for (let i = 0; i < n; i++) {
        // Every third name led here, every fifth one removed (counters only), one 'lost' stop each.
        const registered = i % 5 !== 4;
        names[`n${i}`] = {
          registered,
          leader: registered && i % 3 === 0,
          queuePosition: registered ? (i % 3 === 0 ? 0 : 1) : undefined,
          leadershipsStarted: 2,
          leadershipsStopped: stops({ lost: 1, handover: i % 2 }),
        };
      }
      return {
        id: 'h',
        names,
        leaseLosses: 0,
        keepaliveRtt: { buckets: [0.01], counts: [0], sum: 0, count: 0 },
        ready: false,
        live: true,
        timing: { ttl: 10, renewDeadline: 20 / 3, keepaliveInterval: 10 / 3, keepaliveTimeout: 5 / 3 },
      };
    };
    const count = (s: Map<string, number>, metric: string): number =>
      [...s.keys()].filter((k) => k === metric || k.startsWith(`${metric}{`)).length;

    // At the limit: per-name series for the registered names, counters per name.
    const n = PER_NAME_SERIES_LIMIT;
    const registered = Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 4);
    const leading = registered.filter((i) => i % 3 === 0);
    const small = parseExposition(renderPrometheus(snap(n)));
    assert.equal(count(small, 'locked_leader'), registered.length);
    assert.equal(count(small, 'locked_queue_position'), registered.length);
    assert.equal(count(small, 'locked_leaderships_started_total'), n);
    assert.equal(count(small, 'locked_leaderships_stopped_total'), n * STOP_REASONS.length);
    assert.equal(small.get('locked_names_registered'), registered.length);
    assert.equal(small.get('locked_names_leading'), leading.length);
    assert.equal(small.get('locked_leader{name="n3"}'), 1);
    assert.equal(small.get('locked_leader{name="n4"}'), undefined, 'a removed name has no leader series');
    assert.equal(small.get('locked_ready'), 0);

    // One name more: host totals, the counters summed over the names, no name label anywhere.
    const bigText = renderPrometheus(snap(n + 1));
    const big = parseExposition(bigText);
    assert.doesNotMatch(bigText, /name="/);
    assert.equal(count(big, 'locked_leader'), 0);
    assert.equal(count(big, 'locked_queue_position'), 0);
    assert.equal(big.get('locked_leaderships_started_total'), 2 * (n + 1));
    assert.equal(big.get('locked_leaderships_stopped_total{reason="lost"}'), n + 1);
    assert.equal(big.get('locked_leaderships_stopped_total{reason="handover"}'), Math.floor((n + 1) / 2));
    assert.equal(big.get('locked_leaderships_stopped_total{reason="error"}'), 0);
    assert.equal(count(big, 'locked_leaderships_stopped_total'), STOP_REASONS.length);
    assert.equal(big.get('locked_names_registered'), Array.from({ length: n + 1 }, (_, i) => i).filter((i) => i % 5 !== 4).length);

    // Forced either way.
    assert.equal(
      count(parseExposition(renderPrometheus(snap(n + 1), {}, { perName: true })), 'locked_leader'),
      registered.length + (n % 5 === 4 ? 0 : 1),
    );
    assert.equal(count(parseExposition(renderPrometheus(snap(3), {}, { perName: false })), 'locked_leader'), 0);
    assert.equal(count(parseExposition(renderPrometheus(snap(3), {}, { perName: 2 })), 'locked_leader'), 0);
    assert.equal(count(parseExposition(renderPrometheus(snap(3), {}, { perName: 3 })), 'locked_leader'), 3);
  });
});

describe('health(): live and ready', () => {
  test('etcd down: a host whose fn stopped stays live (ready false); one whose fn outlives the lease is not live', async () => {
    // An etcd of this test's own, to kill.
    await using own = await startEtcd({ members: 1 });
    const polite = locked(own.endpoints, { ttl: 2, prefix: uniquePrefix(), handleSignals: false });
    const stubborn = locked(own.endpoints, { ttl: 2, prefix: uniquePrefix(), handleSignals: false });
    polite.on('error', () => {});
    stubborn.on('error', () => {});
    let release!: () => void;
    const stubbornDone = new Promise<void>((r) => (release = r));
    try {
      polite('p', (_r, l) => new Promise<void>((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true })));
      stubborn('s', () => stubbornDone); // ignores its signal
      await waitFor(() => polite.health().leading.length === 1 && stubborn.health().leading.length === 1, {
        timeoutMs: 20_000,
        message: 'both lead',
      });
      for (const l of [polite, stubborn]) {
        const h = l.health();
        assert.equal(h.live, true);
        assert.equal(h.ready, true);
        assert.deepEqual(h.overdue, []);
      }

      await own.members[0]!.kill();
      // The stubborn fn still runs ttl after its last acknowledged keepalive: not live.
      // Meanwhile the polite host, which lost its leadership and has nothing running,
      // must stay live at every look although etcd is gone.
      const samples: boolean[] = [];
      await waitFor(
        () => {
          samples.push(polite.health().live);
          return stubborn.health().live === false;
        },
        { timeoutMs: 10_000, intervalMs: 20, message: 'stubborn not live' },
      );
      assert.ok(samples.length > 5, `sampled ${samples.length} times`);
      assert.ok(samples.every(Boolean), 'the host that does not lead stays live while etcd is down');
      const hp = polite.health();
      assert.deepEqual(hp.leading, []);
      assert.equal(hp.ready, false, 'no lease: not ready');
      assert.equal(hp.live, true);
      const hs = stubborn.health();
      assert.deepEqual(hs.overdue, ['s']);
      assert.deepEqual(hs.leading, [], 'no longer counts as leading');
      assert.equal(hs.ready, false);
      assert.ok(polite.metrics().leaseLosses >= 1 && stubborn.metrics().leaseLosses >= 1);
      assert.equal(polite.metrics().names['p']?.leadershipsStopped.lost, 1);
      // The same in the metrics: locked_ready 0 on both, locked_live 0 only on the stubborn host.
      const rp = parseExposition(renderPrometheus(polite.metrics()));
      const rs = parseExposition(renderPrometheus(stubborn.metrics()));
      assert.equal(rp.get('locked_ready'), 0);
      assert.equal(rp.get('locked_live'), 1);
      assert.equal(rs.get('locked_ready'), 0);
      assert.equal(rs.get('locked_live'), 0);
      assert.equal(rs.get('locked_names_leading'), 0);
      assert.ok(rs.get('locked_lease_losses_total')! >= 1);

      // fn settles at last: live again, though etcd is still down.
      release();
      await waitFor(() => stubborn.health().live, { timeoutMs: 5_000, message: 'live once fn settled' });
      assert.equal(stubborn.metrics().live, true);
    } finally {
      release();
      await Promise.all([polite.close(), stubborn.close()]);
    }
  });
});

// ——— locked run --listen ———

const procs = new Set<ChildProcess>();
after(() => {
  for (const p of procs) p.kill('SIGKILL');
});

/** A program that runs until signalled. */
const PROGRAM = ['node', '-e', 'setInterval(() => {}, 1000)'];

class Run {
  stderr = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    procs.add(this.proc);
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code) => {
        procs.delete(this.proc);
        resolve(code);
      }),
    );
  }
  /** The probe server's base URL, once it printed it. */
  url(): Promise<string> {
    return waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(this.stderr)?.[1], {
      timeoutMs: 10_000,
      message: `listening line in: ${this.stderr}`,
    });
  }
}

function get(url: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 3_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('locked run --listen', () => {
  test('/leader is 200 on exactly one of two runs, moves when the leader is SIGKILLed; /metrics, /healthz, /readyz', async () => {
    const prefix = uniquePrefix();
    const args = (id: string): string[] => [
      'run',
      'web',
      '--endpoints',
      cluster.endpointsString,
      '--prefix',
      prefix,
      '--id',
      id,
      '--ttl',
      '2',
      '--grace',
      '1',
      '--listen',
      '127.0.0.1:0',
      '--',
      ...PROGRAM,
    ];
    const runs = { r1: new Run(args('r1')), r2: new Run(args('r2')) };
    try {
      const urls = { r1: await runs.r1.url(), r2: await runs.r2.url() };
      const statuses = async (): Promise<Record<'r1' | 'r2', number>> => ({
        r1: (await get(`${urls.r1}/leader`)).status,
        r2: (await get(`${urls.r2}/leader`)).status,
      });
      // Both campaigning, one elected and its program started.
      const first = await waitFor(
        async () => {
          const s = await statuses();
          const leaders = (['r1', 'r2'] as const).filter((k) => s[k] === 200);
          const others = (['r1', 'r2'] as const).filter((k) => s[k] === 503);
          return leaders.length === 1 && others.length === 1 ? { leader: leaders[0]!, standby: others[0]! } : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100, message: 'exactly one /leader 200' },
      );
      const { leader, standby } = first;
      assert.match((await get(`${urls[leader]}/leader`)).body, new RegExp(`leading 'web' as ${leader} \\(token \\d+\\)`));
      assert.match((await get(`${urls[standby]}/leader`)).body, /not leading 'web'/);
      for (const k of ['r1', 'r2'] as const) {
        const hz = await get(`${urls[k]}/healthz`);
        assert.equal(hz.status, 200);
        assert.equal(hz.body, 'ok\n');
        await waitFor(async () => (await get(`${urls[k]}/readyz`)).status === 200, { timeoutMs: 5_000, message: `${k} ready` });
        assert.equal((await get(`${urls[k]}/nope`)).status, 404);
      }
      const m = await get(`${urls[leader]}/metrics`);
      assert.equal(m.status, 200);
      assert.equal(m.type, PROMETHEUS_CONTENT_TYPE);
      const ms = parseExposition(m.body);
      assert.equal(ms.get(`locked_leader{id="${leader}",name="web"}`), 1);
      assert.equal(ms.get(`locked_leaderships_started_total{id="${leader}",name="web"}`), 1);
      assert.equal(
        parseExposition((await get(`${urls[standby]}/metrics`)).body).get(`locked_queue_position{id="${standby}",name="web"}`),
        1,
      );

      // The leader dies without a word: its lease expires, the standby takes over.
      runs[leader].proc.kill('SIGKILL');
      await runs[leader].exited;
      await waitFor(async () => (await get(`${urls[standby]}/leader`)).status === 200, {
        timeoutMs: 15_000,
        intervalMs: 100,
        message: 'the standby leads',
      });
      const later = parseExposition((await get(`${urls[standby]}/metrics`)).body);
      assert.equal(later.get(`locked_leader{id="${standby}",name="web"}`), 1);
      assert.equal(later.get(`locked_queue_position{id="${standby}",name="web"}`), 0);

      // A clean stop closes the server (run exits with its program's status: killed by SIGTERM).
      runs[standby].proc.kill('SIGTERM');
      assert.equal(await runs[standby].exited, 128 + 15);
      await assert.rejects(get(`${urls[standby]}/healthz`), /ECONNREFUSED/);
    } finally {
      for (const r of Object.values(runs)) r.proc.kill('SIGKILL');
    }
  });

  test('--listen without a host is a usage error (run: 125 with its usage); a port in use is a failure before campaigning', async () => {
    for (const bad of ['9090', ':9090', '127.0.0.1', '127.0.0.1:65536', 'http://127.0.0.1:1']) {
      const r = new Run(['run', 'web', '--endpoints', cluster.endpointsString, '--listen', bad, '--', 'true']);
      assert.equal(await r.exited, 125, r.stderr);
      assert.match(r.stderr, /--listen must be HOST:PORT with the host given/);
      assert.match(r.stderr, /Usage: locked run/);
    }
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as { port: number }).port;
      const prefix = uniquePrefix();
      const r = new Run([
        'run',
        'web',
        '--endpoints',
        cluster.endpointsString,
        '--prefix',
        prefix,
        '--listen',
        `127.0.0.1:${port}`,
        '--',
        'true',
      ]);
      assert.equal(await r.exited, 125, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      assert.deepEqual(await cluster.keys(prefix), [], 'nothing campaigned');
    } finally {
      busy.close();
    }
  });
});
