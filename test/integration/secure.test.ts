// Credentials and TLS for the `locked` command, against real etcd: one member serving
// TLS with client certificates required (certificates made with openssl by the test
// helper), one with etcd auth enabled and a user 'app' whose role may only touch the
// prefix app/. `locked` runs as a user would run it (the built main.js).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { makeCerts, type TlsFiles } from '../helpers/tls.js';
import { enableAuth } from '../helpers/auth.js';
import { waitFor } from '../helpers/wait.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PASSWORD = 'app-S3cret-pw';

let certs: TlsFiles;
let tlsEtcd: EtcdCluster;
let authEtcd: EtcdCluster;
let dir: string;
const procs = new Set<ChildProcess>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'locked-secure-'));
  certs = await makeCerts();
  [tlsEtcd, authEtcd] = await Promise.all([startEtcd({ tls: certs }), startEtcd()]);
  await enableAuth(authEtcd, { users: [{ name: 'app', password: PASSWORD, prefix: 'app/' }] });
});
after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all([tlsEtcd?.close(), authEtcd?.close()]);
  await certs?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `locked ARGS` with only `env`'s LOCKED_* variables (none of the test process's). */
class Cli {
  stdout = '';
  stderr = '';
  readonly proc: ChildProcess;
  readonly exited: Promise<Result>;
  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    const t0 = Date.now();
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKED_')));
    this.proc = spawn(process.execPath, [MAIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.add(this.proc);
    this.proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      this.proc.on('close', (code) => {
        procs.delete(this.proc);
        resolve({ code, stdout: this.stdout, stderr: this.stderr, ms: Date.now() - t0 });
      }),
    );
  }
}
const cli = (args: string[], env?: NodeJS.ProcessEnv): Promise<Result> => new Cli(args, env).exited;

let seq = 0;
const file = (what: string): string => join(dir, `${what}-${++seq}`);

/** A program for run/once: writes its environment to $OUT (atomically), then waits for $GO if set. */
const PROGRAM = [
  'sh',
  '-c',
  'env > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"; if [ -n "$GO" ]; then while [ ! -e "$GO" ]; do sleep 0.05; done; fi',
];

function envOf(out: string): Map<string, string> {
  return new Map(
    readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as [string, string]),
  );
}
const waitFile = (f: string, message: string): Promise<boolean> =>
  waitFor(() => existsSync(f), { timeoutMs: 20_000, intervalMs: 20, message });
/** What ps shows as the arguments of `pid`. */
const psArgs = (pid: number): string => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');

describe('TLS with client certificates', () => {
  /** The members by name (their certificate has DNS:localhost, IP:127.0.0.1). */
  const byName = (): string => tlsEtcd.endpointsString.replaceAll('127.0.0.1', 'localhost');
  const tlsEnv = (): NodeJS.ProcessEnv => ({
    // A bare host:port: with TLS files the endpoint is https. By name, not by address: on
    // Node ≥ 26 TLS to an IP address cannot work through grpc-js (options.ts says why).
    LOCKED_ENDPOINTS: byName(),
    LOCKED_CACERT: certs.ca,
    LOCKED_CERT: certs.clientCert,
    LOCKED_KEY: certs.clientKey,
  });

  test('run and leader work with LOCKED_CACERT, LOCKED_CERT and LOCKED_KEY; the program gets LOCKED_ELECTION_KEY', async () => {
    const out = file('env');
    const go = file('go');
    const runner = new Cli(['run', 'job', '--prefix', 'tls/', '--id', 'tls-a', '--', ...PROGRAM], { ...tlsEnv(), OUT: out, GO: go });
    await waitFile(out, 'the program started over TLS').catch((e: unknown) => {
      throw new Error(`${String(e)}\nrun's stderr: ${runner.stderr}`);
    });
    const leader = await cli(['leader', 'job', '--prefix', 'tls/'], tlsEnv());
    assert.deepEqual([leader.code, leader.stdout], [0, 'tls-a\n'], leader.stderr);
    assert.doesNotMatch(leader.stderr + runner.stderr, /DEP0123|DeprecationWarning/);
    const env = envOf(out);
    assert.match(env.get('LOCKED_ELECTION_KEY') ?? '', /^tls\/job\/[0-9a-f]+$/);
    // LOCKED_KEY stays what it is here: the TLS key file, for `locked` commands the program runs.
    assert.equal(env.get('LOCKED_KEY'), certs.clientKey);
    writeFileSync(go, '');
    const r = await runner.exited;
    assert.equal(r.code, 0, r.stderr);
  });

  test('without the client certificate: leader exits 3 and run --timeout exits 125, promptly', async () => {
    const noCert = { LOCKED_ENDPOINTS: byName(), LOCKED_CACERT: certs.ca };
    const out = file('never');
    const [leader, runner] = await Promise.all([
      cli(['leader', 'job', '--prefix', 'tls/', '--timeout', '3s'], noCert),
      cli(['run', 'job', '--prefix', 'tls/', '--timeout', '2s', '--', ...PROGRAM], { ...noCert, OUT: out }),
    ]);
    assert.equal(leader.code, 3, leader.stderr);
    assert.match(leader.stderr, new RegExp(`cannot reach etcd at ${byName()}`));
    assert.ok(leader.ms < 8_000, `leader gave up after ${leader.ms} ms`);
    assert.equal(runner.code, 125, runner.stderr);
    assert.ok(runner.ms < 8_000, `run gave up after ${runner.ms} ms`);
    assert.equal(existsSync(out), false, 'the program never started');
  });

  test('a lone LOCKED_CERT is a usage error', async () => {
    const r = await cli(['leader', 'job'], { LOCKED_ENDPOINTS: byName(), LOCKED_CERT: certs.clientCert });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /a client certificate and its key go together .*got only LOCKED_CERT/);
  });
});

describe('etcd auth: user app, role on app/ only', () => {
  const at = (): NodeJS.ProcessEnv => ({ LOCKED_ENDPOINTS: authEtcd.endpointsString, LOCKED_PREFIX: 'app/' });

  test('--user NAME with LOCKED_PASSWORD: run works; the program gets no LOCKED_PASSWORD and ps shows no password', async () => {
    const out = file('env');
    const go = file('go');
    const runner = new Cli(['run', 'job', '--user', 'app', '--id', 'auth-a', '--', ...PROGRAM], {
      ...at(),
      LOCKED_PASSWORD: PASSWORD,
      OUT: out,
      GO: go,
    });
    await waitFile(out, 'the program started as user app');
    assert.doesNotMatch(psArgs(runner.proc.pid!), new RegExp(PASSWORD));
    const env = envOf(out);
    assert.equal(env.get('LOCKED_NAME'), 'job');
    assert.equal(env.has('LOCKED_PASSWORD'), false, 'LOCKED_PASSWORD is not inherited');
    assert.doesNotMatch(readFileSync(out, 'utf8'), new RegExp(PASSWORD), 'the password is nowhere in the environment');
    // leader as the same user, the password from the environment too.
    const leader = await cli(['leader', 'job', '--user', 'app'], { ...at(), LOCKED_PASSWORD: PASSWORD });
    assert.deepEqual([leader.code, leader.stdout], [0, 'auth-a\n'], leader.stderr);
    writeFileSync(go, '');
    const r = await runner.exited;
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/);
  });

  test('LOCKED_USER with --password-file (trailing newline): run and once work, no password in ps or in the program', async () => {
    const pw = file('pw');
    writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });
    const out = file('env');
    const go = file('go');
    const runner = new Cli(['run', 'job2', '--password-file', pw, '--', ...PROGRAM], { ...at(), LOCKED_USER: 'app', OUT: out, GO: go });
    await waitFile(out, 'the program started with the password from a file');
    assert.doesNotMatch(psArgs(runner.proc.pid!), new RegExp(PASSWORD));
    assert.doesNotMatch(readFileSync(out, 'utf8'), new RegExp(PASSWORD));
    writeFileSync(go, '');
    const onceOut = file('env');
    const [r, once] = await Promise.all([
      runner.exited,
      cli(['once', 'migrate', '--password-file', pw, '--', ...PROGRAM], { ...at(), LOCKED_USER: 'app', OUT: onceOut }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stdout, /'migrate' done: 1 attempt/);
    assert.doesNotMatch(readFileSync(onceOut, 'utf8'), new RegExp(PASSWORD));
  });

  test('--user NAME:PASSWORD works, with a warning on stderr that ps shows it', async () => {
    const r = await cli(['leader', 'nobody', '--user', `app:${PASSWORD}`], at());
    assert.equal(r.code, 1, r.stderr); // answered: nobody leads it
    assert.match(r.stderr, /warning: --user app:PASSWORD shows the password in ps/);
    assert.doesNotMatch(r.stderr, new RegExp(PASSWORD));
  });

  test('a wrong password: run and once exit 125 at once naming the user, leader exits 3', async () => {
    const env = { ...at(), LOCKED_USER: 'app', LOCKED_PASSWORD: 'wrong' };
    const out = file('never');
    const [runner, once, leader] = await Promise.all([
      cli(['run', 'job', '--', ...PROGRAM], { ...env, OUT: out }),
      cli(['once', 'migrate2', '--', ...PROGRAM], { ...env, OUT: out }),
      cli(['leader', 'job'], env),
    ]);
    for (const [what, r, code] of [
      ['run', runner, 125],
      ['once', once, 125],
      ['leader', leader, 3],
    ] as const) {
      assert.equal(r.code, code, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /refused user 'app': authentication failed/, what);
      assert.doesNotMatch(r.stderr, /retrying/, what);
      // No retry loop: etcd answers at once, so does locked (the bound is for slow CI).
      assert.ok(r.ms < 8_000, `${what} took ${r.ms} ms`);
    }
    assert.equal(existsSync(out), false, 'no program started');
  });

  test('outside its prefix the user is denied: run and once exit 125, leader exits 3', async () => {
    const env = { ...at(), LOCKED_PREFIX: 'other/', LOCKED_USER: 'app', LOCKED_PASSWORD: PASSWORD };
    const out = file('never');
    const [runner, once, leader] = await Promise.all([
      cli(['run', 'job', '--', ...PROGRAM], { ...env, OUT: out }),
      cli(['once', 'migrate', '--', ...PROGRAM], { ...env, OUT: out }),
      cli(['leader', 'job'], env),
    ]);
    for (const [what, r, code] of [
      ['run', runner, 125],
      ['once', once, 125],
      ['leader', leader, 3],
    ] as const) {
      assert.equal(r.code, code, `${what}: ${r.stderr}`);
      assert.match(r.stderr, /refused user 'app' under prefix 'other\/': permission denied/, what);
      assert.ok(r.ms < 8_000, `${what} took ${r.ms} ms`);
    }
    assert.equal(existsSync(out), false, 'no program started');
  });

  test('no user where etcd requires one: leader exits 3, run 125, saying a user is needed', async () => {
    const out = file('never');
    const [leader, runner] = await Promise.all([
      cli(['leader', 'job'], at()),
      cli(['run', 'job', '--', ...PROGRAM], { ...at(), OUT: out }),
    ]);
    assert.equal(leader.code, 3, leader.stderr);
    assert.equal(runner.code, 125, runner.stderr);
    for (const r of [leader, runner]) assert.match(r.stderr, /requires a user: .*--user NAME or LOCKED_USER/);
    assert.equal(existsSync(out), false);
  });

  test('usage errors: a user without a password, a password without a user', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['leader', 'job', '--user', 'app'], {}, /no password for etcd user 'app': set LOCKED_PASSWORD, give --password-file FILE/],
      [['leader', 'job', '--password-file', '/dev/null'], {}, /--password-file needs a user/],
      [['leader', 'job'], { LOCKED_PASSWORD: PASSWORD }, /LOCKED_PASSWORD is set but no user is given/],
      [
        ['leader', 'job', '--user', 'app', '--password-file', '/nonexistent/pw'],
        {},
        /cannot read --password-file file '\/nonexistent\/pw'/,
      ],
    ];
    const results = await Promise.all(cases.map(([args, env]) => cli(args, { ...at(), ...env })));
    results.forEach((r, i) => {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, cases[i]![2]);
      assert.match(r.stderr, /Usage: locked leader/);
    });
  });
});
