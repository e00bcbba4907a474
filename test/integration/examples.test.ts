// The deployment examples in examples/ are checked as far as this machine can: the systemd
// unit by systemd-analyze, the Kubernetes manifest parsed and its probes matched to the
// --listen port, and the `locked run` command line of each run for real against etcd (the
// program replaced by `true`, --listen moved to a free loopback port), so a flag renamed in
// the CLI breaks the example's test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';
import { parseYamlDocuments, type Yaml } from '../helpers/yaml.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const UNIT = join(ROOT, 'examples/systemd/nightly-report.service');
const MANIFEST = join(ROOT, 'examples/kubernetes/deployment.yaml');

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd();
});
after(async () => {
  await cluster?.close();
});

/** `locked run ARGS`: listen moved to 127.0.0.1:0, the program replaced by `true`; exits with its status. */
async function runLocked(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const sep = args.indexOf('--');
  assert.ok(sep > 0, `the example runs a program after '--': ${args.join(' ')}`);
  const mine = args.slice(0, sep).map((a, i, all) => (all[i - 1] === '--listen' ? '127.0.0.1:0' : a));
  const child = spawn(process.execPath, [MAIN, ...mine, '--try', '--', 'true'], {
    env: { ...process.env, ...env, LOCKED_ENDPOINTS: cluster.endpoints.join(','), LOCKED_PREFIX: `examples-${process.pid}/` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stderr };
}

function get(v: Yaml | undefined, ...path: (string | number)[]): Yaml | undefined {
  let cur = v;
  for (const p of path) {
    if (cur === undefined || typeof cur === 'string') return undefined;
    cur = Array.isArray(cur) ? (typeof p === 'number' ? cur[p] : undefined) : (cur as Record<string, Yaml>)[String(p)];
  }
  return cur;
}

describe('examples/systemd', () => {
  const unit = readFileSync(UNIT, 'utf8');
  const execStart = /^ExecStart=(.*)$/m.exec(unit)?.[1];

  test('the unit passes systemd-analyze verify', () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
    assert.equal(which.status, 0, 'systemd-analyze is needed to check the unit (Debian package systemd); it is not on this machine');
    assert.ok(execStart, 'the unit has an ExecStart');
    // verify wants the binaries to exist: point them at ones that do.
    const dir = mkdtempSync(join(tmpdir(), 'locked-unit-'));
    try {
      const file = join(dir, 'nightly-report.service');
      writeFileSync(file, unit.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      const complaints = r.stderr.split('\n').filter((l) => l.includes('nightly-report.service'));
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(complaints, [], 'systemd-analyze has no complaint about the unit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the unit's locked run command line works, and stops by SIGTERM to locked run alone", async () => {
    assert.match(unit, /^KillMode=mixed$/m);
    const timeoutStop = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    const args = execStart!.split(/\s+/).slice(1);
    const grace = args[args.indexOf('--grace') + 1]!;
    assert.ok(timeoutStop > parseInt(grace, 10), `TimeoutStopSec (${timeoutStop}) outlasts --grace (${grace})`);
    const r = await runLocked(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /listening on http:\/\/127\.0\.0\.1:\d+/);
  });
});

describe('examples/kubernetes', () => {
  const docs = parseYamlDocuments(readFileSync(MANIFEST, 'utf8'));
  const deployment = docs.find((d) => get(d, 'kind') === 'Deployment');
  const container = get(deployment, 'spec', 'template', 'spec', 'containers', 0);

  test('the manifest parses; probes hit /healthz and /readyz on the --listen port', () => {
    assert.ok(deployment, 'a Deployment');
    assert.equal(get(deployment, 'apiVersion'), 'apps/v1');
    assert.deepEqual(get(deployment, 'spec', 'selector', 'matchLabels'), get(deployment, 'spec', 'template', 'metadata', 'labels'));
    const args = get(container, 'args') as string[];
    assert.deepEqual(get(container, 'command'), ['locked']);
    const listen = args[args.indexOf('--listen') + 1]!;
    const portName = get(container, 'livenessProbe', 'httpGet', 'port');
    const port = (get(container, 'ports') as Yaml[]).find((p) => get(p, 'name') === portName);
    assert.equal(get(port, 'containerPort'), listen.split(':').pop(), 'the probe port is the --listen port');
    assert.equal(get(container, 'livenessProbe', 'httpGet', 'path'), '/healthz');
    assert.equal(get(container, 'readinessProbe', 'httpGet', 'path'), '/readyz');
    const grace = parseInt(args[args.indexOf('--grace') + 1]!, 10);
    assert.ok(
      Number(get(deployment, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds')) > grace,
      'terminationGracePeriodSeconds outlasts --grace',
    );
    const service = docs.find((d) => get(d, 'kind') === 'Service');
    assert.deepEqual(get(service, 'spec', 'selector'), get(deployment, 'spec', 'selector', 'matchLabels'));
  });

  test("the container's locked run command line works", async () => {
    const args = get(container, 'args') as string[];
    const r = await runLocked(args, { LOCKED_ID: 'report-worker-abc12' });
    assert.equal(r.code, 0, r.stderr);
  });

  /** The container's environment as Kubernetes sets it in pod `pod`: the values, and the pod name where a fieldRef asks for it. */
  function podEnv(pod: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const e of get(container, 'env') as Yaml[]) {
      const name = get(e, 'name') as string;
      const value = get(e, 'value');
      if (typeof value === 'string') env[name] = value;
      else if (get(e, 'valueFrom', 'fieldRef', 'fieldPath') === 'metadata.name') env[name] = pod;
      else assert.fail(`env ${name}: neither a value nor the pod name, which this test cannot stand in for`);
    }
    return env;
  }

  test("the pod name is the node id: from the manifest's own environment, 'locked drain <pod-name>' moves the worker away", async () => {
    const args = get(container, 'args') as string[];
    const sep = args.indexOf('--');
    // The manifest's command line up to the program, --listen on a free loopback port.
    const mine = args.slice(0, sep).map((a, i, all) => (all[i - 1] === '--listen' ? '127.0.0.1:0' : a));
    const prefix = `examples-pods-${process.pid}/`;
    const pods = ['report-worker-7d9f8-abcde', 'report-worker-7d9f8-fghij'];
    const procs = pods.map((pod) => {
      const env = podEnv(pod);
      assert.equal(env['LOCKED_ID'], pod, 'the manifest sets LOCKED_ID from the pod name');
      // etcd here is plain HTTP on loopback: the TLS files and the cluster's endpoints are the pod's own.
      for (const tls of ['LOCKED_CACERT', 'LOCKED_CERT', 'LOCKED_KEY']) {
        assert.match(env[tls] ?? '', /^\/etc\/locked\/tls\//, `${tls} is a file of the mounted secret`);
        delete env[tls];
      }
      const child = spawn(
        process.execPath,
        [MAIN, ...mine, '--', process.execPath, '-e', 'setInterval(() => {}, 1000); process.on("SIGTERM", () => process.exit(0))'],
        {
          env: { ...process.env, ...env, LOCKED_ENDPOINTS: cluster.endpoints.join(','), LOCKED_PREFIX: prefix },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      return { child, exited, stderr: () => stderr };
    });
    const locked = (...more: string[]) =>
      spawnSync(process.execPath, [MAIN, ...more, '--endpoints', cluster.endpoints.join(','), '--prefix', prefix], {
        encoding: 'utf8',
        env: { ...process.env, LOCKED_ID: '' },
      });
    try {
      let leader = '';
      await waitFor(
        () => {
          const s = locked('status', '--json');
          const st = s.status === 0 ? (JSON.parse(s.stdout) as { leader?: string; candidates: string[] }[])[0] : undefined;
          leader = st?.leader ?? '';
          return st?.candidates.length === 2;
        },
        { timeoutMs: 20_000, message: `both pods queue for report-worker: ${procs.map((p) => p.stderr()).join('\n')}` },
      );
      assert.ok(pods.includes(leader), `the leader is a pod name, got '${leader}'`);
      const other = pods.find((p) => p !== leader)!;
      const drain = locked('drain', leader);
      assert.equal(drain.status, 0, drain.stderr);
      assert.match(drain.stdout, new RegExp(`^moved 'report-worker' to ${other}$`, 'm'));
      assert.match(drain.stdout, /is drained: 1 leadership\(s\) moved/);
      assert.equal(locked('leader', 'report-worker').stdout.trim(), other);
    } finally {
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
    }
  });
});
