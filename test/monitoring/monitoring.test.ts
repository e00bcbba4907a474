// The monitoring examples against what the library really exports (scripts/check-monitoring.sh
// runs this with PROMTOOL set, after `promtool check rules` and `promtool test rules`):
//   - `promtool check metrics` on a real scrape of `locked run --listen`'s /metrics, and on
//     the library's rendering without per-name series;
//   - every metric and label that examples/prometheus's rules and examples/grafana's
//     dashboard query is in that scrape, and every dashboard query is valid PromQL;
//   - docs/monitoring.md documents exactly the metric families of the scrape.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import locked, { renderPrometheus, type Leadership } from '../../src/index.js';
import { LockedProcesses } from '../helpers/cli.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { parseYamlDocuments, type Yaml } from '../helpers/yaml.js';
import { promqlRefs } from './promql.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RULES = join(ROOT, 'examples/prometheus/locked.rules.yml');
const DASHBOARD = join(ROOT, 'examples/grafana/locked-dashboard.json');
const DOC = join(ROOT, 'docs/monitoring.md');

const PROMTOOL = process.env.PROMTOOL ?? '';

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  assert.ok(
    PROMTOOL,
    "PROMTOOL must name a promtool binary: scripts/check-monitoring.sh sets it from scripts/promtool-bin.sh (Debian's promtool package)",
  );
  const r = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `promtool ${args.join(' ')}: ${r.error?.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `promtool check metrics` reads the exposition on stdin; any lint problem is a failure. */
function checkMetrics(text: string, what: string): void {
  const r = promtool(['check', 'metrics'], text);
  assert.equal(r.status, 0, `promtool check metrics on ${what}:\n${r.out}`);
  assert.equal(r.out.trim(), '', `promtool check metrics complained about ${what}:\n${r.out}`);
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 3_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The sample names, metric families (# TYPE) and label names of an exposition. */
function exposition(text: string): { samples: Set<string>; families: Map<string, string>; labels: Set<string> } {
  const samples = new Set<string>();
  const families = new Map<string, string>();
  const labels = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    samples.add(m[1]!);
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l[1]!);
  }
  return { samples, families, labels };
}

function field(v: Yaml | undefined, key: string): Yaml | undefined {
  return v !== undefined && typeof v === 'object' && !Array.isArray(v) ? v[key] : undefined;
}

/** Every alert's name and expression in the rules file. */
function ruleExprs(): { alert: string; expr: string }[] {
  const [doc] = parseYamlDocuments(readFileSync(RULES, 'utf8'));
  const out: { alert: string; expr: string }[] = [];
  const groups = field(doc, 'groups');
  assert.ok(Array.isArray(groups) && groups.length > 0, 'the rules file has groups');
  for (const g of groups) {
    const rules = field(g, 'rules');
    assert.ok(Array.isArray(rules), 'each group has rules');
    for (const r of rules) {
      const alert = field(r, 'alert');
      const expr = field(r, 'expr');
      assert.ok(typeof alert === 'string' && typeof expr === 'string', `a rule with alert and expr: ${JSON.stringify(r)}`);
      out.push({ alert, expr });
    }
  }
  return out;
}

interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { refId?: string; expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

/** Every query of the dashboard: panel targets and query variables. */
function dashboardExprs(): { where: string; expr: string }[] {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels?: Panel[];
    templating?: { list?: { name?: string; type?: string; query?: unknown }[] };
  };
  const out: { where: string; expr: string }[] = [];
  const ids = new Set<number>();
  const walk = (panels: Panel[]): void => {
    for (const p of panels) {
      assert.ok(typeof p.id === 'number' && !ids.has(p.id), `panel ids are numbers and unique: ${p.title}`);
      ids.add(p.id);
      if (p.type === 'row') {
        walk(p.panels ?? []);
        continue;
      }
      assert.equal(p.datasource?.uid, '${datasource}', `panel '${p.title}' uses the dashboard's data source variable`);
      assert.ok(p.targets && p.targets.length > 0, `panel '${p.title}' has queries`);
      for (const t of p.targets) {
        assert.ok(typeof t.expr === 'string' && t.expr.trim() !== '', `panel '${p.title}' query ${t.refId} has an expr`);
        out.push({ where: `panel '${p.title}' ${t.refId}`, expr: t.expr });
      }
    }
  };
  walk(d.panels ?? []);
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    assert.ok(typeof q === 'string', `variable ${v.name} has a query`);
    // label_values(METRIC, LABEL): the metric is queried, the label must exist.
    const lv = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/.exec(q);
    assert.ok(lv, `variable ${v.name}: a label_values(metric, label) query, got ${q}`);
    out.push({ where: `variable ${v.name}`, expr: `count by (${lv[2]}) (${lv[1]})` });
  }
  return out;
}

describe('promql references', () => {
  test('reads metric and label names, not functions, keywords, strings, durations or variables', () => {
    const r = promqlRefs(
      'sum by (job, name) (increase(locked_a_total{name!="x y",reason=~"lost|error"}[$__rate_interval] offset 5m)) > 0.5 * on (id) group_left locked_b_seconds or vector(1e3) unless locked_c == bool 0',
    );
    assert.deepEqual([...r.metrics].sort(), ['locked_a_total', 'locked_b_seconds', 'locked_c']);
    assert.deepEqual([...r.labels].sort(), ['id', 'job', 'name', 'reason']);
    assert.deepEqual([...promqlRefs('histogram_quantile(0.99, rate(x_bucket[5m]))').metrics], ['x_bucket']);
  });
});

describe('the monitoring examples against a real scrape', () => {
  let cluster: EtcdCluster;
  const procs = new LockedProcesses();
  let scrape = '';
  before(async () => {
    cluster = await startEtcd({ members: 1 });
    // `locked run --listen` leading one name, scraped once a keepalive was answered (so the
    // histogram has observations) and it is ready.
    const prefix = `mon${process.pid}/`;
    const p = procs.spawn([
      'run',
      'report',
      '--endpoints',
      cluster.endpointsString,
      '--prefix',
      prefix,
      '--id',
      'scrape-a',
      '--ttl',
      '2',
      '--listen',
      '127.0.0.1:0',
      '--',
      'node',
      '-e',
      'setInterval(() => {}, 1000)',
    ]);
    const said = (e: unknown): Error => new Error(`${(e as Error).message}\nlocked run said: ${procs.stderr(p)}`);
    const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+) /.exec(procs.stderr(p))?.[1], {
      timeoutMs: 20_000,
      message: 'the listening line',
    }).catch((e) => {
      throw said(e);
    });
    scrape = await waitFor(
      async () => {
        if ((await get(`${url}/leader`)).status !== 200) return undefined;
        const m = await get(`${url}/metrics`);
        const rtt = /^locked_keepalive_rtt_seconds_count\{[^}]*\} (\d+)$/m.exec(m.body);
        return m.status === 200 && rtt && Number(rtt[1]) > 0 && /^locked_ready\{[^}]*\} 1$/m.test(m.body) ? m.body : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, message: 'leading, ready and a keepalive answered' },
    ).catch((e) => {
      throw said(e);
    });
  });
  after(async () => {
    procs.killAll();
    await cluster?.close();
  });

  test('promtool check metrics finds nothing to complain about in /metrics of locked run --listen', () => {
    assert.match(scrape, /^locked_leader\{id="scrape-a",name="report"\} 1$/m);
    checkMetrics(scrape, 'the /metrics of locked run --listen');
  });

  test('promtool check metrics on the library rendering with and without per-name series', async () => {
    const l = locked(cluster.endpoints, { ttl: 2, prefix: `monlib${process.pid}/`, id: 'lib', handleSignals: false });
    try {
      const fn = (_r: unknown, x: Leadership): Promise<void> =>
        new Promise((resolve) => x.signal.addEventListener('abort', () => resolve(), { once: true }));
      l('a', fn);
      l('b', fn);
      await waitFor(() => l.metrics().names['b']?.leader === true && l.metrics().names['a']?.leader === true, {
        timeoutMs: 20_000,
        message: 'leads a and b',
      });
      const totals = renderPrometheus(l.metrics(), { id: 'lib' }, { perName: false });
      assert.doesNotMatch(totals, /name="/);
      assert.match(totals, /^locked_names_leading\{id="lib"\} 2$/m);
      checkMetrics(totals, 'renderPrometheus without per-name series');
      checkMetrics(renderPrometheus(l.metrics(), { id: 'lib' }, { perName: true }), 'renderPrometheus with per-name series');
    } finally {
      await l.close();
    }
  });

  test('every metric and label the alerting rules query is exported', () => {
    const { samples, labels } = exposition(scrape);
    const known = new Set([...labels, 'job', 'instance']);
    const rules = ruleExprs();
    assert.ok(rules.length >= 6, `rules found: ${rules.map((r) => r.alert).join(', ')}`);
    for (const { alert, expr } of rules) {
      const refs = promqlRefs(expr);
      assert.ok(refs.metrics.size > 0, `${alert} queries some metric: ${expr}`);
      for (const m of refs.metrics)
        assert.ok(samples.has(m), `${alert} queries '${m}', which locked does not export (exported: ${[...samples].join(', ')})`);
      for (const l of refs.labels) assert.ok(known.has(l), `${alert} uses the label '${l}', which no exported series has`);
    }
  });

  test('every query of the Grafana dashboard names only exported metrics and labels, and is valid PromQL', () => {
    const { samples, labels } = exposition(scrape);
    const known = new Set([...labels, 'job', 'instance']);
    const queries = dashboardExprs();
    assert.ok(queries.length >= 10, `queries found: ${queries.length}`);
    for (const { where, expr } of queries) {
      const refs = promqlRefs(expr);
      assert.ok(refs.metrics.size > 0, `${where} queries some metric: ${expr}`);
      for (const m of refs.metrics)
        assert.ok(samples.has(m), `${where} queries '${m}', which locked does not export (exported: ${[...samples].join(', ')})`);
      for (const l of refs.labels) assert.ok(known.has(l), `${where} uses the label '${l}', which no exported series has`);
    }
    // promtool parses each query as a recording rule, Grafana's variables replaced by values.
    const dir = mkdtempSync(join(tmpdir(), 'locked-dashboard-'));
    try {
      const file = join(dir, 'dashboard.rules.yml');
      const rules = queries.map(({ expr }, i) => {
        const plain = expr.replace(/\$__rate_interval|\$__interval/g, '1m').replace(/\$job/g, '.*');
        return `      - record: dashboard:query${i}\n        expr: '${plain.replace(/'/g, "''")}'`;
      });
      writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const r = promtool(['check', 'rules', file]);
      assert.equal(
        r.status,
        0,
        `promtool check rules on the dashboard's queries:\n${r.out}\n${queries.map((q, i) => `query${i}: ${q.where}`).join('\n')}`,
      );
      assert.match(r.out, new RegExp(`SUCCESS: ${queries.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('docs/monitoring.md documents exactly the metric families locked exports, with their types', () => {
    const { families } = exposition(scrape);
    const doc = readFileSync(DOC, 'utf8');
    // The metrics table: | `locked_x` | type | labels | meaning |
    const documented = new Map<string, string>();
    for (const m of doc.matchAll(/^\| `(locked_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)) documented.set(m[1]!, m[2]!);
    assert.deepEqual([...documented.keys()].sort(), [...families.keys()].sort(), 'the documented metrics are the exported ones');
    for (const [name, type] of families) assert.equal(documented.get(name), type, `${name} is documented as a ${type}`);
  });
});
