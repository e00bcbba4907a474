// Flags from the environment, seen from outside: the node id `locked run` really uses,
// the flag winning over the variable, and the id not leaking into a nested `locked run`
// started by the program (which does inherit the endpoints and the prefix, on purpose).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd();
});
after(async () => {
  await cluster?.close();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `locked ARGS` with exactly `env` besides PATH (no LOCKED_* of this process leaks in). */
function locked(args: string[], env: Record<string, string> = {}): Promise<Result> & { kill: () => void } {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Result>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return Object.assign(done, { kill: () => void child.kill('SIGTERM') });
}

const prefix = (): string => `env${Math.random().toString(36).slice(2, 8)}/`;
const conn = (p: string): Record<string, string> => ({ LOCKED_ENDPOINTS: cluster.endpointsString, LOCKED_PREFIX: p });
/** A program that prints the id it was started under. */
const PRINT_ID = ['sh', '-c', 'echo "id=$LOCKED_ID"'];

test('LOCKED_ID is the node id run uses (the program and status see it); --id wins over it', async () => {
  const p = prefix();
  const fromEnv = await locked(['run', 'job', '--try', '--', ...PRINT_ID], { ...conn(p), LOCKED_ID: 'pod-abc12' });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.match(fromEnv.stdout, /^id=pod-abc12$/m);
  const flagWins = await locked(['run', 'job', '--try', '--id', 'flag-id', '--', ...PRINT_ID], { ...conn(p), LOCKED_ID: 'pod-abc12' });
  assert.equal(flagWins.code, 0, flagWins.stderr);
  assert.match(flagWins.stdout, /^id=flag-id$/m);
  // While it runs, the cluster knows it by that id: status and leader say so.
  const holder = locked(['run', 'held', '--', 'sh', '-c', 'sleep 60'], { ...conn(p), LOCKED_ID: 'pod-abc12' });
  try {
    await waitFor(async () => (await locked(['leader', 'held'], conn(p))).stdout.trim() === 'pod-abc12', {
      timeoutMs: 20_000,
      message: 'pod-abc12 leads held',
    });
    const hosts = await locked(['status', '--hosts'], { ...conn(p), LOCKED_JSON: '1' });
    assert.equal(hosts.code, 0, hosts.stderr);
    assert.deepEqual(
      (JSON.parse(hosts.stdout) as { id: string }[]).map((h) => h.id),
      ['pod-abc12'],
      'LOCKED_JSON=1 is --json',
    );
  } finally {
    holder.kill();
    await holder;
  }
});

test('a bad value from a variable is a usage error naming the variable (run: 125, status: 2); LOCKED_TRY=1 is --try', async () => {
  const p = prefix();
  const ttl = await locked(['run', 'job', '--', 'true'], { ...conn(p), LOCKED_TTL: '1m30x' });
  assert.equal(ttl.code, 125);
  assert.match(ttl.stderr, /LOCKED_TTL must be a duration ≥ 2s such as 500ms, 10s, 1m30s or plain seconds, got '1m30x'/);
  const json = await locked(['status'], { ...conn(p), LOCKED_JSON: 'yes' });
  assert.equal(json.code, 2);
  assert.match(json.stderr, /LOCKED_JSON must be true, false, 1 or 0 \(it sets --json\), got 'yes'/);
  // --try from the environment: with another host leading, exit 75 at once naming it.
  const holder = locked(['run', 'job', '--id', 'A', '--', 'sh', '-c', 'sleep 60'], conn(p));
  try {
    await waitFor(async () => (await locked(['leader', 'job'], conn(p))).stdout.trim() === 'A', {
      timeoutMs: 20_000,
      message: 'A leads job',
    });
    const busy = await locked(['run', 'job', '--id', 'B', '--', 'true'], { ...conn(p), LOCKED_TRY: '1', LOCKED_TTL: '1m30s' });
    assert.equal(busy.code, 75, busy.stderr);
    assert.match(busy.stderr, /'job' is led by A/);
  } finally {
    holder.kill();
    await holder;
  }
});

test("a nested locked run does not take the parent's LOCKED_ID; a nested locked leader inherits its endpoints and prefix", async () => {
  const p = prefix();
  // The program of the outer run: a nested run (its own id printed) and a nested leader query,
  // both without flags — everything they know comes from the environment run exported.
  const script = [
    `"$NODE" "$MAIN" run inner --try -- sh -c 'echo "inner id=$LOCKED_ID"'`,
    `echo "leader of outer: $("$NODE" "$MAIN" leader outer)"`,
  ].join('\n');
  const r = await locked(
    ['run', 'outer', '--try', '--endpoints', cluster.endpointsString, '--prefix', p, '--id', 'parent', '--', 'sh', '-c', script],
    {
      NODE: process.execPath,
      MAIN,
    },
  );
  assert.equal(r.code, 0, r.stderr);
  const inner = /^inner id=(.*)$/m.exec(r.stdout)?.[1];
  assert.ok(inner, `the nested run ran its program: ${r.stdout}\n${r.stderr}`);
  assert.notEqual(inner, 'parent', "the nested run is a candidate of its own, not the parent's id");
  assert.match(inner, /-\d+$/, 'the default <hostname>-<pid>');
  assert.match(r.stdout, /^leader of outer: parent$/m, 'LOCKED_ENDPOINTS and LOCKED_PREFIX reached the nested command');
});
