// The `locked` command, spawned as a user would run it (the built .build/src/cli/main.js),
// against a real 3-node etcd. Children are tiny node scripts that append what they see
// (environment, signals, wall-clock times) to a file as JSON lines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { freePorts, startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { startProxy, type Proxy } from '../helpers/proxy.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Appends {ev, t, pid, id, ...} lines to $OUT; exits 0 on SIGTERM/SIGINT; exits 7 once $GO exists. */
const CHILD_SCRIPT = `
const fs = require('fs');
const w = (o) => fs.appendFileSync(process.env.OUT, JSON.stringify({ ...o, t: Date.now(), pid: process.pid, id: process.env.LOCKED_ID }) + '\\n');
// The handlers first: a test signals the program as soon as it sees 'start' (written after them).
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { w({ ev: s }); process.exit(0); });
process.on('SIGHUP', () => w({ ev: 'SIGHUP' }));
w({ ev: 'start', name: process.env.LOCKED_NAME, token: process.env.LOCKED_TOKEN, key: process.env.LOCKED_ELECTION_KEY,
    endpoints: process.env.LOCKED_ENDPOINTS, prefix: process.env.LOCKED_PREFIX });
setInterval(() => { if (process.env.GO && fs.existsSync(process.env.GO)) { w({ ev: 'exit7' }); process.exit(7); } }, 20);
`;
const CHILD = ['node', '-e', CHILD_SCRIPT];

interface ChildEvent {
  ev: 'start' | 'SIGTERM' | 'SIGINT' | 'SIGHUP' | 'exit7';
  t: number;
  pid: number;
  id: string;
  name?: string;
  token?: string;
  key?: string;
  endpoints?: string;
  prefix?: string;
}

let cluster: EtcdCluster;
let dir: string;
const procs = new Set<ChildProcess>();
const outFiles: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'locked-cli-'));
  cluster = await startEtcd({ members: 3 });
});
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  // A SIGKILLed `locked run` leaves its child (own process group) behind: end those too.
  for (const f of outFiles) for (const e of events(f)) killOurs(e.pid, f);
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** SIGKILLs `pid` only if it is still one of our children (its OUT is `file`): pids get reused. */
function killOurs(pid: number, file: string): void {
  try {
    if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`OUT=${file}`)) return;
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

let seq = 0;
const uniquePrefix = (): string => `cli${Math.random().toString(36).slice(2, 8)}/`;
function outFile(): string {
  const f = join(dir, `out-${++seq}.jsonl`);
  outFiles.push(f);
  return f;
}
function events(file: string): ChildEvent[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ChildEvent);
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A running `locked ...` process. */
class Cli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Result>;
  readonly proc: ChildProcess;

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    const t0 = Date.now();
    const clean = { ...process.env };
    delete clean['LOCKED_ENDPOINTS'];
    delete clean['LOCKED_PREFIX'];
    this.proc = spawn(process.execPath, [MAIN, ...args], { env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(this.proc);
    this.proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.proc.on('exit', (code, signal) => {
        procs.delete(this.proc);
        const ms = Date.now() - t0;
        // Output may still be in the pipes; a grandchild that inherited them (a run's
        // child outliving it) would hold 'close' back for ever, so wait only briefly.
        const done = (): void => resolve({ code, signal, stdout: this.stdout, stderr: this.stderr, ms });
        const timer = setTimeout(done, 1000);
        this.proc.once('close', () => {
          clearTimeout(timer);
          done();
        });
      }),
    );
  }

  kill(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  /** Stops it the way a supervisor would, and waits. */
  async stop(): Promise<Result> {
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), 20_000);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }
}

const cli = (args: string[], env?: NodeJS.ProcessEnv): Promise<Result> => new Cli(args, env).exited;

function run(name: string, prefix: string, id: string, out: string, opts: { endpoints?: string; ttl?: number; go?: string } = {}): Cli {
  return new Cli(
    [
      'run',
      name,
      '--endpoints',
      opts.endpoints ?? cluster.endpointsString,
      '--prefix',
      prefix,
      '--id',
      id,
      '--ttl',
      String(opts.ttl ?? 10),
      '--grace',
      '5',
      '--',
      ...CHILD,
    ],
    { OUT: out, ...(opts.go ? { GO: opts.go } : {}) },
  );
}

async function statusJson(prefix: string): Promise<{ name: string; leader?: string; token?: string; candidates: string[] }[]> {
  const r = await cli(['status', '--json', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { name: string; leader?: string; token?: string; candidates: string[] }[];
}

/** Waits until `ids` are the candidates of `name`, in this order. */
function queued(prefix: string, name: string, ids: string[]): Promise<unknown> {
  return waitFor(async () => (await statusJson(prefix)).find((s) => s.name === name)?.candidates.join() === ids.join(), {
    timeoutMs: 20_000,
    intervalMs: 100,
    message: `candidates of ${name} = ${ids.join(',')}`,
  });
}

function waitEvent(file: string, pred: (e: ChildEvent) => boolean, message: string, timeoutMs = 20_000): Promise<ChildEvent> {
  return waitFor(() => events(file).find(pred), { timeoutMs, intervalMs: 20, message });
}

const noStack = (s: string): void => assert.doesNotMatch(s, /\n\s+at .+:\d+:\d+/, `stack trace in: ${s}`);

describe('locked command', () => {
  test('usage errors exit 2 (run and once: 125) with the usage of the command; --help and --version work', async () => {
    const bad: [string[], RegExp][] = [
      [[], /missing command/],
      [['bogus'], /unknown command 'bogus'/],
      [['run'], /missing NAME/],
      [['run', 'job'], /missing the command to run/],
      [['run', 'job', '--ttl', '1', '--', 'true'], /--ttl must be a duration ≥ 2s such as 500ms, 10s, 1m30s or plain seconds, got '1'/],
      [['run', 'job', '--ttl', '1m30', '--', 'true'], /--ttl must be a duration ≥ 2s .*, got '1m30'/],
      [['run', 'job', '--ttl', '0x10', '--', 'true'], /--ttl must be a duration ≥ 2s .*, got '0x10'/],
      [['run', 'job', '--ttl', '2500ms', '--', 'true'], /--ttl must be whole seconds/],
      [
        ['run', 'job', '--grace', 'soon', '--', 'true'],
        /--grace must be a duration such as 500ms, 10s, 1m30s or plain seconds, got 'soon'/,
      ],
      [['run', 'job', '--try', '--wait', '1s', '--', 'true'], /--try and --wait exclude each other/],
      [['run', 'job', '--sighup', 'ignore', '--', 'true'], /--sighup must be 'forward' or 'stop', got 'ignore'/],
      [['run', 'job', '--endpoints', 'http//127.0.0.1', '--', 'true'], /--endpoints: 'http\/\/127.0.0.1' is not HOST:PORT/],
      [['once', 'job', '--max-attempts', '0', '--', 'true'], /--max-attempts must be a whole number ≥ 1, got '0'/],
      [['status', '--timeout', '1e3'], /--timeout must be a duration/],
      [['status', '--endpoints', '127.0.0.1:99999'], /'127.0.0.1:99999' is not HOST:PORT/],
      [['leader', 'job', '--endpoints', '127.0.0.1:2379,'], /--endpoints has an empty entry/],
      [['status', '--nope'], /Unknown option '--nope'/],
      [['status', '--user', 'nocolon'], /no password for etcd user 'nocolon': set LOCKED_PASSWORD, give --password-file FILE/],
      [['leader'], /missing NAME/],
      [['failover', 'a/b'], /must not contain '\/'/],
      [['status', '--cacert', '/nonexistent/ca.pem'], /cannot read --cacert file '\/nonexistent\/ca.pem'/],
      [
        ['help', 'nope'],
        /no help on 'nope' \(expected a command — run, once, status, leader, failover, drain, undrain, help or completion — or env\)/,
      ],
      [['help', 'run', 'once'], /help takes one word, got 2: run once/],
      [['completion'], /completion needs a shell: bash, zsh, fish/],
    ];
    const results = await Promise.all(bad.map(([args]) => cli(args)));
    results.forEach((r, i) => {
      const [args, msg] = bad[i]!;
      const command = ['run', 'once', 'status', 'leader', 'failover'].includes(args[0]!) ? args[0]! : undefined;
      const code = command === 'run' || command === 'once' ? 125 : 2;
      assert.equal(r.code, code, `locked ${args.join(' ')} exits ${code}; stderr: ${r.stderr}`);
      assert.match(r.stderr, msg);
      // The usage of the command that was wrong, not the main one.
      assert.match(r.stderr, command ? new RegExp(`Usage: locked ${command}`) : /Usage: locked <command>/);
      noStack(r.stderr);
    });
    const helps = await Promise.all(
      [
        ['--help'],
        ['run', '--help'],
        ['once', '--help'],
        ['status', '-h'],
        ['leader', '--help'],
        ['--help', 'failover'],
        ['help'],
        ['help', 'drain'],
        ['help', 'completion'],
        ['completion', '--help'],
      ].map((a) => cli(a)),
    );
    for (const [i, sub] of [
      '<command>',
      'run NAME',
      'once NAME',
      'status',
      'leader NAME',
      'failover NAME',
      '<command>',
      'drain ID',
      'completion',
      'completion',
    ].entries()) {
      assert.equal(helps[i]!.code, 0);
      assert.match(helps[i]!.stdout, new RegExp(`^Usage: locked ${sub}`));
    }
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
    const versions = await Promise.all([['--version'], ['-V'], ['run', 'job', '--version']].map((a) => cli(a)));
    for (const v of versions) assert.deepEqual([v.code, v.stdout], [0, `${pkg.version}\n`], v.stderr);
  });

  test('unreachable etcd: status, leader and failover fail within 10 s, naming the endpoint', async () => {
    const [port] = await freePorts(1);
    // Refused connections, and a peer that accepts but never answers.
    const silent: Proxy = await startProxy(cluster.endpoints[0]!);
    silent.blackhole();
    try {
      const cases = [`127.0.0.1:${port}`, silent.endpoint].flatMap((ep) => [
        ['status', '--endpoints', ep],
        ['leader', 'job', '--endpoints', ep],
        ['failover', 'job', '--endpoints', ep],
      ]);
      const results = await Promise.all(cases.map((a) => cli(a)));
      results.forEach((r, i) => {
        const ep = cases[i]![cases[i]!.length - 1]!;
        assert.equal(r.code, 3, `${cases[i]!.join(' ')}: ${r.stderr}`);
        assert.ok(r.ms < 10_000, `${cases[i]!.join(' ')} took ${r.ms} ms`);
        assert.match(r.stderr, new RegExp(`cannot reach etcd at ${ep.replace(/\./g, '\\.')}`));
        noStack(r.stderr);
      });
    } finally {
      await silent.close();
    }
  });

  test('two runs of one name: exactly one child, with LOCKED_* set; status (JSON and table) and leader agree', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    const first = await waitEvent(out, (e) => e.ev === 'start', 'a child starts');
    const b = run('job', prefix, 'B', out);
    try {
      await queued(prefix, 'job', ['A', 'B']);
      const starts = events(out).filter((e) => e.ev === 'start');
      assert.equal(starts.length, 1, `exactly one child: ${JSON.stringify(starts)}`);
      assert.equal(first.id, 'A');
      assert.equal(first.name, 'job');
      assert.equal(first.endpoints, cluster.endpointsString);
      assert.equal(first.prefix, prefix);
      assert.match(first.token!, /^\d+$/);
      assert.match(first.key!, new RegExp(`^${prefix}job/[0-9a-f]+$`));
      const keys = await cluster.keys(prefix);
      assert.ok(keys.length === 2 && keys.includes(first.key!), `two keys, A's among them: ${keys.join(', ')}`);

      const json = await statusJson(prefix);
      assert.deepEqual(json, [{ name: 'job', leader: 'A', token: first.token, candidates: ['A', 'B'] }]);
      const tableOut = await cli(['status', '--endpoints', cluster.endpointsString], { LOCKED_PREFIX: prefix });
      assert.equal(tableOut.code, 0, tableOut.stderr);
      const lines = tableOut.stdout.trim().split('\n');
      assert.match(lines[0]!, /^NAME\s+LEADER\s+TOKEN\s+CANDIDATES$/);
      assert.match(lines[1]!, new RegExp(`^job\\s+A\\s+${first.token}\\s+A,B \\(2\\)$`));

      const leader = await cli(['leader', 'job', '--prefix', prefix], { LOCKED_ENDPOINTS: cluster.endpointsString });
      assert.deepEqual([leader.code, leader.stdout], [0, 'A\n']);
      const none = await cli(['leader', 'nobody', '--prefix', prefix, '--endpoints', cluster.endpointsString]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /nobody leads 'nobody'/);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('failover moves the child: the old one gets SIGTERM, the new one a larger LOCKED_TOKEN', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    const first = await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
    const b = run('job', prefix, 'B', out);
    try {
      await queued(prefix, 'job', ['A', 'B']);
      const watch = new Cli(['status', '--watch', '--json', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
      const lines = (): { leader?: string; candidates: string[] }[][] =>
        watch.stdout
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { leader?: string; candidates: string[] }[]);
      await waitFor(() => lines()[0]?.[0]?.leader === 'A', { timeoutMs: 10_000, message: 'status --watch shows A' });
      const r = await cli(['failover', 'job', '--endpoints', cluster.endpointsString, '--prefix', prefix]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^B leads 'job' now \(was A; handed over in \d+ ms\)$/m);
      const second = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'B', 'B child starts');
      await waitEvent(out, (e) => e.ev === 'SIGTERM' && e.pid === first.pid, "A's child gets SIGTERM");
      assert.ok(BigInt(second.token!) > BigInt(first.token!), `token ${second.token} > ${first.token}`);
      // The deposed runner queued again, at the back; the watching status saw it happen.
      await queued(prefix, 'job', ['B', 'A']);
      await waitFor(() => lines().some((l) => l[0]?.candidates.join() === 'B,A'), {
        timeoutMs: 10_000,
        message: 'status --watch shows B,A',
      });
      watch.kill('SIGINT');
      assert.equal((await watch.exited).code, 0);
      assert.equal(events(out).filter((e) => e.ev === 'start').length, 2);
      assert.equal(a.proc.exitCode, null, 'the deposed runner keeps running');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('failover --to and --force, status --hosts, drain and undrain: programs move only after the old one stopped', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    await waitEvent(out, (e) => e.ev === 'start' && e.id === 'A', 'A child starts');
    const b = run('job', prefix, 'B', out);
    const conn = ['--endpoints', cluster.endpointsString, '--prefix', prefix];
    let c: Cli | undefined;
    try {
      // One after the other: two runs started together may queue in either order.
      await queued(prefix, 'job', ['A', 'B']);
      c = run('job', prefix, 'C', out);
      await queued(prefix, 'job', ['A', 'B', 'C']);
      // Graceful and targeted: C leads next although B is ahead of it; A's child is gone first.
      const r = await cli(['failover', 'job', '--to', 'C', ...conn]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^C leads 'job' now \(was A; handed over in \d+ ms\)$/m);
      const cStart = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'C', 'C child starts');
      const aTerm = events(out).find((e) => e.ev === 'SIGTERM' && e.id === 'A');
      assert.ok(aTerm && aTerm.t <= cStart.t, "A's child ended before C's started");
      // No live host is Z: 'not found' (68), listing the live ids.
      const bad = await cli(['failover', 'job', '--to', 'Z', ...conn]);
      assert.equal(bad.code, 68, bad.stderr);
      assert.match(bad.stderr, /cannot hand 'job' to 'Z': no live host has node id 'Z' under prefix '[^']+' \(live hosts: A, B, C\)/);
      noStack(bad.stderr);
      // A drain or undrain of an id nobody holds would do nothing at once: refused the same way.
      for (const cmd of ['drain', 'undrain']) {
        const r = await cli([cmd, 'Z', ...conn]);
        assert.equal(r.code, 68, `${cmd}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`cannot ${cmd} 'Z': no live host has node id 'Z' .*\\(live hosts: A, B, C\\)`));
        assert.equal(r.stdout, '', `${cmd} printed nothing on stdout`);
      }
      // --force: an order for a host about to start; then undrain knows the id.
      const early = await cli(['drain', 'Z', '--force', '--json', ...conn]);
      assert.equal(early.code, 0, early.stderr);
      assert.deepEqual(JSON.parse(early.stdout.trim().split('\n').at(-1)!).leads, []);
      assert.equal((await cli(['undrain', 'Z', ...conn])).code, 0, 'a drained id is known to undrain');
      assert.equal((await cli(['failover', 'job', '--to', 'A', '--force', ...conn])).code, 2, '--to with --force is a usage error');
      // status --hosts: who leads what, fair share.
      const hosts = await cli(['status', '--hosts', '--json', ...conn]);
      assert.equal(hosts.code, 0, hosts.stderr);
      const list = JSON.parse(hosts.stdout) as { id: string; leads: string[]; queued: string[]; draining: boolean; share: number }[];
      assert.deepEqual(
        list.map((h) => [h.id, h.leads.length, h.queued.length, h.draining]),
        [
          ['A', 0, 1, false],
          ['B', 0, 1, false],
          ['C', 1, 0, false],
        ],
      );
      assert.ok(Math.abs(list[0]!.share - 1 / 3) < 0.01, `share ${list[0]!.share}`);
      const table = await cli(['status', '--hosts', ...conn]);
      assert.match(table.stdout, /^HOST\s+ZONE\s+WEIGHT\s+LEADS\s+NEXT\s+QUEUED\s+SHARE\s+OFF\s+DRAINING\s+JOINING/m);
      assert.match(table.stdout, /^C\s+-\s+1\s+1\s+0\s+0\s+0\.3\s+\+1\s+no\s+no\s+job$/m);
      // Drain C from "another machine": its program stops, another host's starts, C stays queued.
      const d = await cli(['drain', 'C', ...conn]);
      assert.equal(d.code, 0, d.stderr);
      assert.match(d.stdout, /^moved 'job' to [AB]$/m);
      assert.match(d.stdout, /'C' is drained: 1 leadership\(s\) moved/);
      await waitFor(async () => (await statusJson(prefix))[0]?.candidates.at(-1) === 'C', {
        timeoutMs: 10_000,
        message: 'C queues again, last',
      });
      const drained = JSON.parse((await cli(['status', '--hosts', '--json', ...conn])).stdout) as { id: string; draining: boolean }[];
      assert.equal(drained.find((h) => h.id === 'C')?.draining, true);
      // A forced failover still deletes the key: C, draining, steps out of the way of the next.
      const forced = await cli(['failover', 'job', '--force', ...conn]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /leads 'job' now \(was [AB]; deposed in \d+ ms\)/);
      assert.notEqual((await statusJson(prefix))[0]?.leader, 'C');
      const u = await cli(['undrain', 'C', ...conn]);
      assert.equal(u.code, 0, u.stderr);
      assert.equal(
        JSON.parse((await cli(['status', '--hosts', '--json', ...conn])).stdout).find((h: { id: string }) => h.id === 'C').draining,
        false,
      );
    } finally {
      await Promise.all([a.stop(), b.stop(), c?.stop()]);
    }
  });

  test("SIGTERM to the leading run: forwarded to its child, released, and the standby's child starts long before the TTL", async (t) => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out, { ttl: 10 });
    const first = await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
    const b = run('job', prefix, 'B', out, { ttl: 10 });
    try {
      await queued(prefix, 'job', ['A', 'B']);
      const sent = Date.now();
      a.kill('SIGTERM');
      const second = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'B', 'B child starts');
      const term = events(out).find((e) => e.ev === 'SIGTERM' && e.pid === first.pid);
      assert.ok(term, "A's child got the SIGTERM");
      assert.ok(term.t <= second.t, "A's child stopped before B's started");
      const ms = second.t - sent;
      t.diagnostic(`SIGTERM to leading run → standby's child started: ${ms} ms`);
      // Without the release the standby would wait for the 10 s lease to expire.
      assert.ok(ms < 5_000, `standby's child started ${ms} ms after the SIGTERM`);
      const r = await a.exited;
      assert.equal(r.code, 0, `run exits with its child's status; stderr: ${r.stderr}`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test("a child that exits by itself: run releases at once and exits with the child's status", async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const go = join(dir, `go-${seq}`);
    const a = run('job', prefix, 'A', out, { ttl: 10, go });
    await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
    const b = run('job', prefix, 'B', out, { ttl: 10 });
    try {
      await queued(prefix, 'job', ['A', 'B']);
      writeFileSync(go, '');
      const r = await a.exited;
      assert.equal(r.code, 7, r.stderr);
      const exit = events(out).find((e) => e.ev === 'exit7')!;
      const second = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'B', 'B child starts');
      assert.ok(second.t - exit.t < 5_000, `released: B's child started ${second.t - exit.t} ms after A's exited (lease ttl 10 s)`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('leadership lost (etcd cut off): the child gets SIGTERM before the standby can start', async (t) => {
    const prefix = uniquePrefix();
    const out = outFile();
    const proxy = await startProxy(cluster.endpoints[0]!);
    const a = run('job', prefix, 'A', out, { ttl: 3, endpoints: proxy.endpoint });
    try {
      const first = await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
      const b = run('job', prefix, 'B', out, { ttl: 3 });
      try {
        await queued(prefix, 'job', ['A', 'B']);
        proxy.blackhole();
        const second = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'B', 'B child starts', 20_000);
        const term = await waitEvent(out, (e) => e.ev === 'SIGTERM' && e.pid === first.pid, "A's child gets SIGTERM");
        t.diagnostic(`A's child SIGTERMed ${second.t - term.t} ms before B's child started`);
        assert.ok(term.t < second.t, `SIGTERM at ${term.t} must come before the standby's start at ${second.t}`);
        assert.ok(BigInt(second.token!) > BigInt(first.token!));
      } finally {
        proxy.heal();
        await b.stop();
      }
    } finally {
      await a.stop();
      await proxy.close();
    }
  });

  test('run waits for etcd, says so once, and starts when etcd answers', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const proxy = await startProxy(cluster.endpoints[0]!);
    proxy.blackhole();
    const a = run('job', prefix, 'A', out, { ttl: 3, endpoints: proxy.endpoint });
    try {
      await waitFor(() => /waiting for etcd at 127\.0\.0\.1:\d+/.test(a.stderr), { timeoutMs: 15_000, message: 'waiting message' });
      // Let a few more attempts fail (each lease grant waits 2 s) before etcd comes back.
      await new Promise((r) => setTimeout(r, 4_500));
      proxy.heal();
      await waitEvent(out, (e) => e.ev === 'start', 'child starts once etcd is back', 30_000);
      assert.equal(a.stderr.match(/waiting for etcd/g)?.length, 1, `said once: ${a.stderr}`);
      noStack(a.stderr);
    } finally {
      await a.stop();
      await proxy.close();
    }
  });
});

/** `locked once` program: appends {ev: 'start'|'end', attempt, id, t} to $OUT; runs $MS ms; fails while attempt < $OK_FROM. */
const ONCE_SCRIPT = `
const fs = require('fs');
const a = Number(process.env.LOCKED_ATTEMPT);
const w = (ev) => fs.appendFileSync(process.env.OUT, JSON.stringify({ ev, attempt: a, id: process.env.LOCKED_ID, token: process.env.LOCKED_TOKEN, t: Date.now() }) + '\\n');
w('start');
const go = () => !process.env.GO || fs.existsSync(process.env.GO);
const wait = () => (go() ? setTimeout(() => { w('end'); process.exit(a >= Number(process.env.OK_FROM) ? 0 : 1); }, Number(process.env.MS)) : setTimeout(wait, 20));
wait();
`;

interface OnceEvent {
  ev: 'start' | 'end';
  attempt: number;
  id: string;
  token: string;
  t: number;
}

describe('locked run --try, --wait, SIGHUP, a killed run; locked once', () => {
  const common = (prefix: string): string[] => ['--endpoints', cluster.endpointsString, '--prefix', prefix];

  test('run --try: exits 75 naming the holder while another host leads; runs the program once when nobody does', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    try {
      await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
      const tried = await cli(['run', 'job', '--try', '--id', 'B', ...common(prefix), '--', ...CHILD], { OUT: out });
      assert.equal(tried.code, 75, tried.stderr);
      assert.match(tried.stderr, /'job' is led by A/);
      assert.equal(events(out).filter((e) => e.ev === 'start').length, 1, 'B ran nothing');
      assert.deepEqual((await statusJson(prefix))[0]?.candidates, ['A'], 'B left nothing queued');
    } finally {
      await a.stop();
    }
    const go = join(dir, `go-try-${seq}`);
    writeFileSync(go, '');
    const alone = await cli(['run', 'job', '--try', '--id', 'C', ...common(prefix), '--', ...CHILD], { OUT: out, GO: go });
    assert.equal(alone.code, 7, `run --try exits with its program's status: ${alone.stderr}`);
    assert.equal(events(out).filter((e) => e.ev === 'start' && e.id === 'C').length, 1);
    assert.deepEqual(await statusJson(prefix), [], 'nothing left in etcd');
  });

  test('run --wait: gives up with 75 when not elected in time and leaves the queue', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    try {
      await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
      const waited = await cli(['run', 'job', '--wait', '1500ms', '--ttl', '5s', '--id', 'B', ...common(prefix), '--', ...CHILD], {
        OUT: out,
      });
      assert.equal(waited.code, 75, waited.stderr);
      assert.match(waited.stderr, /not elected for 'job' within 1.5 s \(--wait\)/);
      assert.equal(events(out).filter((e) => e.ev === 'start').length, 1, 'B ran nothing');
      assert.deepEqual((await statusJson(prefix))[0]?.candidates, ['A'], 'B left the queue');
    } finally {
      await a.stop();
    }
  });

  test('SIGHUP reaches the program, which keeps running and leading; --sighup stop stops it', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const a = run('job', prefix, 'A', out);
    try {
      const first = await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
      a.kill('SIGHUP');
      await waitEvent(out, (e) => e.ev === 'SIGHUP' && e.pid === first.pid, 'the program gets SIGHUP');
      assert.equal(a.proc.exitCode, null, 'run keeps running');
      assert.equal((await statusJson(prefix))[0]?.leader, 'A', 'and keeps leading');
      assert.ok(!events(out).some((e) => e.ev === 'SIGTERM'), 'no SIGTERM');
    } finally {
      await a.stop();
    }
    const out2 = outFile();
    const b = new Cli(['run', 'job', '--sighup', 'stop', '--id', 'B', ...common(prefix), '--', ...CHILD], { OUT: out2 });
    try {
      await waitEvent(out2, (e) => e.ev === 'start', 'B child starts');
      b.kill('SIGHUP');
      const r = await b.exited;
      assert.equal(r.code, 0, r.stderr);
      assert.ok(
        events(out2).some((e) => e.ev === 'SIGTERM'),
        'the program got SIGTERM, then the name was released',
      );
      assert.deepEqual(await statusJson(prefix), []);
    } finally {
      await b.stop();
    }
  });

  test('a SIGKILLed run: the watchdog ends its program long before the lease expires and a standby starts', async (t) => {
    const prefix = uniquePrefix();
    const out = outFile();
    const ttl = 6;
    const a = run('job', prefix, 'A', out, { ttl });
    const first = await waitEvent(out, (e) => e.ev === 'start', 'A child starts');
    const b = run('job', prefix, 'B', out, { ttl });
    try {
      await queued(prefix, 'job', ['A', 'B']);
      const killed = Date.now();
      a.kill('SIGKILL');
      const gone = await waitFor(
        () => {
          try {
            process.kill(first.pid, 0);
            return undefined;
          } catch {
            return Date.now();
          }
        },
        { timeoutMs: 30_000, intervalMs: 10, message: "A's program ends" },
      );
      const second = await waitEvent(out, (e) => e.ev === 'start' && e.id === 'B', 'B child starts', 30_000);
      const term = events(out).find((e) => e.ev === 'SIGTERM' && e.pid === first.pid);
      assert.ok(term, 'the watchdog sent SIGTERM first');
      // `gone` includes the reaping of the orphan by pid 1 (kill(pid, 0) succeeds on a zombie).
      t.diagnostic(
        `program got SIGTERM ${term.t - killed} ms and was gone ${gone - killed} ms after SIGKILL of its run; standby started ${second.t - killed} ms after (ttl ${ttl} s)`,
      );
      assert.ok(gone < second.t, 'the orphan was gone before the standby started');
      assert.ok(
        gone - killed < (ttl * 1000) / 3 + 1000,
        `gone ${gone - killed} ms after the kill (SIGKILL at min(grace, ttl/3) at the latest)`,
      );
    } finally {
      await b.stop();
    }
  });

  const once = (name: string, prefix: string, id: string, out: string, env: Record<string, string>, extra: string[] = []): Cli =>
    new Cli(['once', name, '--id', id, '--ttl', '4', ...extra, ...common(prefix), '--', 'node', '-e', ONCE_SCRIPT], { OUT: out, ...env });
  const onceEvents = (file: string): OnceEvent[] => events(file) as unknown as OnceEvent[];
  /** Attempts never overlap: each start comes after the previous end. */
  const sequential = (ev: OnceEvent[]): void => {
    for (let i = 1; i < ev.length; i++) assert.notEqual(ev[i]!.ev, ev[i - 1]!.ev, `attempts overlap: ${JSON.stringify(ev)}`);
  };

  test('once on three hosts: a failed attempt is retried elsewhere, every host exits 0 with the outcome, a late host runs nothing', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    // The first attempt ends only once all three hosts are queued: a host that started late
    // (CI load) would otherwise find the retry already taken by the only other candidate.
    const go = outFile();
    const env = { MS: '300', OK_FROM: '2', GO: go };
    const hosts = ['A', 'B', 'C'].map((id) => once('migrate', prefix, id, out, env, ['--json']));
    await waitFor(async () => (await cluster.keys(`${prefix}migrate/`)).length === 3, {
      timeoutMs: 20_000,
      message: 'all three hosts queued for migrate',
    });
    writeFileSync(go, '');
    const results = await Promise.all(hosts.map((h) => h.exited));
    const ev = onceEvents(out);
    sequential(ev);
    assert.deepEqual(
      ev.filter((e) => e.ev === 'start').map((e) => e.attempt),
      [1, 2],
      `two attempts ran: ${JSON.stringify(ev)}`,
    );
    assert.notEqual(ev[0]!.id, ev[2]!.id, 'the failed attempt was retried on another host');
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      const record = JSON.parse(r.stdout) as { name: string; status: string; attempts: number; by: string; ranHere: boolean };
      assert.deepEqual(
        { ...record, ranHere: undefined },
        { name: 'migrate', status: 'done', attempts: 2, by: ev[2]!.id, ranHere: undefined },
      );
    }
    const late = await once('migrate', prefix, 'D', out, env).exited;
    assert.equal(late.code, 0, late.stderr);
    assert.match(late.stdout, /'migrate' done: 2 attempts, last by [ABC]$/m);
    assert.equal(onceEvents(out).length, 4, 'the late host ran nothing');
  });

  test('once that keeps failing: every host exits 1 after --max-attempts attempts', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const env = { MS: '100', OK_FROM: '99' };
    const results = await Promise.all(['A', 'B'].map((id) => once('doomed', prefix, id, out, env, ['--max-attempts', '2']).exited));
    for (const r of results) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /'doomed' failed: 2 attempts/);
    }
    sequential(onceEvents(out));
    assert.equal(onceEvents(out).filter((e) => e.ev === 'start').length, 2);
  });

  test('once --record-ttl 1m30s: the outcome is kept under a 90 s lease; meanwhile another host gets it without running', async () => {
    const prefix = uniquePrefix();
    const out = outFile();
    const env = { MS: '50', OK_FROM: '1' };
    const first = await once('nightly', prefix, 'A', out, env, ['--record-ttl', '1m30s', '--json']).exited;
    assert.equal(first.code, 0, first.stderr);
    assert.equal((JSON.parse(first.stdout) as { ranHere: boolean }).ranHere, true);
    const client = new Etcd3({ hosts: cluster.endpoints });
    try {
      const kv = (await client.kv.range({ key: Buffer.from(`${prefix}nightly`) })).kvs[0];
      assert.ok(kv && kv.lease !== '0', `the outcome record is under a lease: ${JSON.stringify(kv)}`);
      assert.equal((await client.leaseClient.leaseTimeToLive({ ID: kv.lease })).grantedTTL, '90');
    } finally {
      client.close();
    }
    const second = await once('nightly', prefix, 'B', out, env, ['--json']).exited;
    assert.equal(second.code, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { ranHere: boolean }).ranHere, false);
    assert.equal(onceEvents(out).filter((e) => e.ev === 'start').length, 1);
    const bad = await cli(['once', 'nightly', '--record-ttl', '1500ms', ...common(prefix), '--', 'true']);
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /--record-ttl must be whole seconds ≥ 1 \(etcd leases count in seconds\), got '1500ms'/);
  });
});
