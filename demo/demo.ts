// `npm run demo`: the main job of locked, narrated, on one machine.
//
// Starts a local 3-member etcd, then three hosts as separate processes (host.ts) that
// register the same two singletons, and shows: who is elected (and the fencing token),
// a SIGKILLed leader replaced by a standby (failover time), a graceful remove()
// hand-over (its time), and a close that leaves nothing behind in etcd.
//
// LOCKED_ENDPOINTS=h1:2379,h2:2379 runs it against an etcd you already have (e.g.
// docker-compose.etcd.yml) instead of starting one.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import locked, { type Locker } from '../src/index.js';
import { startEtcd, type EtcdCluster } from '../test/helpers/etcd.js';
import { NAMES, type HostCommand, type HostMessage } from './protocol.js';

// ——— terminal ———

const tty = process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined;
const paint = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint('1');
const dim = paint('2');
const green = paint('32');
const yellow = paint('33');
const red = paint('31');
const cyan = paint('36');

const say = (s = ''): void => console.log(s);
const indent = (s: string): void => say(`   ${s}`);
const explain = (s: string): void => say(dim(`   ${s}`));
const code = (s: string): void => say(cyan(`     ${s}`));
let stepNo = 0;
const step = (title: string): void => say(`\n${bold(`${++stepNo}. ${title}`)}`);

const hr = (): bigint => process.hrtime.bigint();
const ms = (from: bigint | string, to: bigint | string): number => Number(BigInt(to) - BigInt(from)) / 1e6;
function duration(millis: number): string {
  if (millis >= 1000) return `${(millis / 1000).toFixed(2)} s`;
  return millis < 10 ? `${millis.toFixed(1)} ms` : `${Math.round(millis)} ms`;
}
const pad = (s: string, n: number): string => s.padEnd(n);
const ordinal = (i: number): string => ['1st', '2nd', '3rd'][i] ?? `${i + 1}th`;
const hexLease = (decimal: string): string => BigInt(decimal).toString(16);

// ——— etcd binaries ———

const ETCD = process.env['ETCD_BIN'] ?? 'etcd';
const ETCDCTL = process.env['ETCDCTL_BIN'] ?? 'etcdctl';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(bin: string): boolean {
  if (bin.includes('/')) return executable(bin);
  return (process.env['PATH'] ?? '').split(delimiter).some((dir) => dir !== '' && executable(join(dir, bin)));
}

/** True when etcd can be started; installs Debian's package when running as root with apt-get. */
function ensureEtcd(): boolean {
  if (onPath(ETCD)) return true;
  if (process.env['ETCD_BIN'] === undefined && process.getuid?.() === 0 && onPath('apt-get')) {
    indent(yellow(`etcd is not on PATH. This runs as root with apt-get, so the demo`));
    indent(yellow(`installs Debian's packages now (once; about a minute):`));
    code('apt-get update && apt-get install -y etcd-server etcd-client');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // A failed update may still leave usable package lists: try the install anyway.
    spawnSync('apt-get', ['-q', 'update'], { stdio: 'inherit', env });
    const install = spawnSync('apt-get', ['-q', 'install', '-y', '--no-install-recommends', 'etcd-server', 'etcd-client'], { stdio: 'inherit', env });
    if (install.status === 0 && onPath(ETCD)) return true;
    indent(
      red(
        install.status === 0
          ? 'apt-get succeeded, but etcd is still not on PATH (Debian puts it in /usr/bin).'
          : `Installing etcd failed (apt-get install exited ${install.status ?? install.signal ?? install.error?.message}).`,
      ),
    );
  } else {
    indent(red(process.env['ETCD_BIN'] !== undefined ? `ETCD_BIN (${ETCD}) is not an executable file.` : 'etcd is not on PATH.'));
    indent(red('The demo starts its own local 3-member etcd and needs the etcd'));
    indent(red('binary (3.4 or newer). To get it:'));
  }
  say();
  indent('Debian/Ubuntu:');
  code('sudo apt-get install etcd-server etcd-client');
  indent('Elsewhere: a release from https://github.com/etcd-io/etcd/releases,');
  indent('with etcd and etcdctl on PATH (or set ETCD_BIN and ETCDCTL_BIN).');
  indent('Or, with Docker, run the demo against the compose cluster of this repo:');
  code('docker compose -f docker-compose.etcd.yml up -d --wait');
  code('LOCKED_ENDPOINTS=127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 npm run demo');
  return false;
}

function etcdVersion(): string {
  const r = spawnSync(ETCD, ['--version'], { encoding: 'utf8' });
  return /etcd Version: (\S+)/.exec(r.stdout ?? '')?.[1] ?? 'unknown version';
}

/** `etcdctl elect -l NAME` prints the leader's key and value, then keeps observing: stop it after those two lines. */
function electList(endpoints: string[], election: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL, [`--endpoints=${endpoints.join(',')}`, 'elect', '-l', election], {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').length > 2) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', () => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l !== '');
      if (lines.length >= 2) resolve(lines.slice(0, 2));
      else reject(new Error(`etcdctl elect -l ${election} printed ${JSON.stringify(out)}: ${err.trim()}`));
    });
  });
}

// ——— host processes ———

type Msg<K extends HostMessage['type']> = Extract<HostMessage, { type: K }>;

class Host {
  readonly messages: HostMessage[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly listeners = new Set<() => void>();
  private stderr = '';

  constructor(
    readonly id: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: HostMessage) => {
      this.messages.push(m);
      if (m.type === 'error') indent(yellow(`${id} reported an error: ${m.message}`));
      for (const l of [...this.listeners]) l();
    });
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.stdout?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        for (const l of [...this.listeners]) l();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.stderr.trim();
  }

  send(cmd: HostCommand): void {
    this.child.send(cmd);
  }

  started(name: string): Msg<'start'>[] {
    return this.messages.filter((m): m is Msg<'start'> => m.type === 'start' && m.name === name);
  }

  /** The first message of `type` matching `match`, received already or later. */
  wait<K extends HostMessage['type']>(type: K, match: (m: Msg<K>) => boolean = () => true, timeoutMs = 15_000): Promise<Msg<K>> {
    const find = (): Msg<K> | undefined => this.messages.find((m): m is Msg<K> => m.type === type && match(m as Msg<K>));
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const m = find();
        if (m) done(() => resolve(m));
        else if (!this.alive) done(() => reject(new Error(`${this.id} exited while the demo waited for its '${type}' message${this.output ? `:\n${this.output}` : ''}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.id} sent no '${type}' message within ${timeoutMs} ms`))), timeoutMs);
      const done = (then: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        then();
      };
      this.listeners.add(check);
      check();
    });
  }
}

const hosts: Host[] = [];
process.on('exit', () => {
  for (const h of hosts) if (h.alive) h.child.kill('SIGKILL');
});

function startHost(id: string, endpoints: string[], prefix: string): Host {
  const script = new URL('./host.js', import.meta.url);
  const child = fork(script, [endpoints.join(','), id, prefix], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const host = new Host(id, child);
  hosts.push(host);
  return host;
}

function exitWithin(host: Host, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    host.exited.finally(() => clearTimeout(timer)),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    }),
  ]);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined || pid < 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ——— the demo ———

async function demo(): Promise<void> {
  const began = hr();
  say(`${bold('locked demo')}: elected singleton functions on etcd`);
  say(dim('Three hosts run the same program. For each job name, etcd elects one host'));
  say(dim('to run it; when that host goes away, the next one in line takes over.'));

  // 1. etcd
  step('etcd');
  let cluster: EtcdCluster | undefined;
  let endpoints: string[];
  let prefix: string;
  const given = process.env['LOCKED_ENDPOINTS'];
  if (given) {
    endpoints = given.split(',').map((e) => e.trim()).filter((e) => e !== '');
    // A prefix of our own: your cluster may hold other elections under 'locked/'.
    prefix = `locked-demo-${randomBytes(3).toString('hex')}/`;
    indent('Using your etcd cluster, from LOCKED_ENDPOINTS:');
    indent(endpoints.join(', '));
  } else {
    if (!ensureEtcd()) {
      process.exitCode = 1;
      return;
    }
    const t = hr();
    cluster = await startEtcd({ members: 3 });
    endpoints = cluster.endpoints;
    prefix = 'locked/';
    const ports = endpoints.map((e) => e.split(':')[1]).join(', ');
    indent(`Started a 3-member etcd cluster (etcd ${etcdVersion()}) in ${duration(ms(t, hr()))}`);
    indent(`on 127.0.0.1, client ports ${ports}; data in a temp dir.`);
  }

  // A demo must never hang. (Armed only now: installing etcd may take longer than this.)
  setTimeout(() => {
    say(red('\nThe demo took more than 60 s; giving up.'));
    process.exit(1);
  }, 60_000).unref();

  // The narrator has a locker of its own, only to ask questions: it registers nothing,
  // so it holds no lease and takes no part in any election.
  const observer: Locker = locked(endpoints, { prefix, handleSignals: false });
  try {
    await observer.leader(NAMES[0]);
  } catch (err) {
    throw new Error(`cannot reach etcd at ${endpoints.join(', ')}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const leaseIds = async (): Promise<string[]> => (await observer.client.leaseClient.leaseLeases()).leases.map((l) => l.ID);
  const queue = async (name: string): Promise<number> => (await observer.client.getAll().prefix(`${prefix}${name}/`).keys()).length;

  try {
    // 2. hosts
    step('Three hosts, one program (demo/host.ts), each its own process');
    code(`const locker = locked(endpoints, { id, ttl: 2 });`);
    code(`locker('scheduler', job);  locker('report-mailer', job);`);
    explain('One etcd lease per host. Each job name is a queue of keys, one per');
    explain(`host, under ${prefix}<name>/, in the order etcd created them.`);
    explain('First in line leads.');
    const names = ['alpha', 'bravo', 'carol'];
    for (const [i, id] of names.entries()) {
      const host = startHost(id, endpoints, prefix);
      const session = await host.wait('session');
      // Started one after the other, so the queue order is alpha, bravo, carol.
      await until(`${id} in line for every job`, async () => (await Promise.all(NAMES.map(queue))).every((n) => n === i + 1));
      indent(`${pad(id, 6)} pid ${pad(String(host.pid), 7)} lease ${hexLease(session.leaseId)}  ${ordinal(i)} in line for both`);
    }
    const [alpha, bravo, carol] = hosts as [Host, Host, Host];

    // 3. elected
    step('Who was elected');
    const first = new Map<string, Msg<'start'>>();
    for (const name of NAMES) {
      const s = await alpha.wait('start', (m) => m.name === name);
      first.set(name, s);
      indent(`${pad(name, 14)} ${green(pad('alpha', 6))} fencing token ${s.token}`);
    }
    explain("The token is the create revision of the leader's key. It only grows");
    explain('from one leadership to the next: send it along with your writes, and');
    explain('a resource can refuse one from an older leader.');
    const seen = await observer.leader(NAMES[0]);
    if (seen !== 'alpha') throw new Error(`locker.leader('${NAMES[0]}') says ${String(seen)}, expected alpha`);
    indent(`Any process can ask: await locker.leader('${NAMES[0]}') → '${seen}'`);
    indent(`etcd's own tool reads the same election (the keys follow its protocol):`);
    if (onPath(ETCDCTL)) {
      say(`   ${cyan(`$ etcdctl elect -l ${prefix}${NAMES[0]}`)}`);
      const before = new Set(await leaseIds());
      for (const line of await electList(endpoints, `${prefix}${NAMES[0]}`)) say(`     ${line}`);
      // etcdctl (3.4) grants a 60 s session lease even just to observe, and leaves it
      // behind. On our own cluster, any new lease is etcdctl's: give it back, so the
      // final check can demand an etcd with no lease at all.
      const strays = (await leaseIds()).filter((id) => !before.has(id));
      if (strays.length > 0) {
        if (cluster) for (const ID of strays) await observer.client.leaseClient.leaseRevoke({ ID });
        explain(`(etcdctl leaves a 60 s lease of its own behind${cluster ? '; the demo revoked it' : ''}.)`);
      }
    } else {
      explain(`(etcdctl is not on PATH: skipped. It would print the leader's key`);
      explain(` ${first.get(NAMES[0])?.key} and its value, alpha.)`);
    }

    // 4. crash
    step('Crash: alpha is killed with SIGKILL');
    explain('A crashed host cannot resign: its keys go only when its lease expires.');
    explain("So the hosts use ttl 2 s (etcd's minimum; the default is 10 s). The TTL");
    explain('is the price of crash detection: shorter = faster failover, but more');
    explain('keepalive traffic and less patience with a slow network or a GC pause.');
    const killedAt = hr();
    alpha.child.kill('SIGKILL');
    await alpha.exited;
    indent(red(`kill -9 ${alpha.pid}`) + dim('  (alpha leads both jobs)'));
    const failovers: number[] = [];
    for (const name of NAMES) {
      const s = await bravo.wait('start', (m) => m.name === name);
      const took = ms(killedAt, s.t);
      failovers.push(took);
      indent(`${pad(name, 14)} ${green(pad('bravo', 6))} after ${bold(duration(took))}, token ${first.get(name)?.token} → ${s.token}`);
    }
    if (NAMES.some((n) => carol.started(n).length > 0)) throw new Error('carol started a job while bravo was next in line');
    explain("etcd counts the TTL from alpha's last keepalive (sent every ttl/3) and");
    explain('reaps expired leases about every 0.5 s: expect 1.3 to 2.5 s here.');
    explain("Both jobs moved at once: their keys hung off alpha's one lease.");
    explain('carol stays 2nd in line; no job had two hosts running it.');

    // 5. graceful hand-over
    const moved = NAMES[1];
    step(`Graceful hand-over: bravo calls remove() on '${moved}'`);
    code(`await locker.singletons()['${moved}'].remove();`);
    bravo.send({ op: 'remove', name: moved });
    const removed = await bravo.wait('removed', (m) => m.name === moved);
    const stopped = await bravo.wait('stop', (m) => m.name === moved);
    const next = await carol.wait('start', (m) => m.name === moved);
    const handover = ms(removed.called, next.t);
    const previous = bravo.started(moved)[0]?.token;
    indent(`${pad(moved, 14)} ${green(pad('carol', 6))} after ${bold(duration(handover))}, token ${previous} → ${next.token}`);
    if (stopped.reason !== 'removed') throw new Error(`bravo stopped '${moved}' with reason '${stopped.reason}', expected 'removed'`);
    if (BigInt(stopped.t) > BigInt(next.t)) throw new Error(`carol started '${moved}' before bravo had stopped it`);
    indent(`bravo stopped ('${stopped.reason}') ${duration(ms(stopped.t, next.t))} before carol started;`);
    indent(`remove() resolved in ${duration(ms(removed.called, removed.resolved))}.`);
    explain('No TTL to wait for: bravo deleted its key, and carol, watching it,');
    explain('started at once. close() and SIGTERM hand over the same way.');

    // 6. close
    step('Close: every host calls locker.close()');
    explain('It stops every job, revokes the lease and closes the etcd client.');
    const remaining = [bravo, carol];
    for (const h of remaining) h.send({ op: 'close' });
    const tClose = hr();
    await Promise.all(remaining.map((h) => h.wait('closed')));
    for (const h of remaining) {
      const exit = await exitWithin(h, 5_000);
      if (!exit) {
        h.child.kill('SIGKILL');
        throw new Error(`${h.id} did not exit by itself within 5 s of close(): something kept it alive`);
      }
      if (exit.code !== 0) throw new Error(`${h.id} exited with ${exit.code ?? exit.signal}${h.output ? `:\n${h.output}` : ''}`);
      indent(`${pad(h.id, 6)} closed in ${duration(ms(tClose, (await h.wait('closed')).t))}, then exited by itself (code 0)`);
    }
    const keys = await observer.client.getAll().prefix(prefix).keys();
    const listed = await leaseIds();
    const ours = new Set(hosts.flatMap((h) => h.messages.flatMap((m) => (m.type === 'session' ? [m.leaseId] : []))));
    const leftover = listed.filter((id) => ours.has(id));
    if (keys.length > 0) throw new Error(`keys left under ${prefix}: ${keys.join(', ')}`);
    if (leftover.length > 0) throw new Error(`leases left: ${leftover.map(hexLease).join(', ')}`);
    if (cluster && listed.length > 0) throw new Error(`leases left in etcd: ${listed.map(hexLease).join(', ')}`);
    indent(green(`Left in etcd: no key under ${prefix}, ${cluster ? 'no lease at all' : "none of the hosts' leases"}.`));

    const figures = `failover ${failovers.map(duration).join(' / ')}, hand-over ${duration(handover)}`;
    await observer.close();
    const pids = [...hosts.map((h) => h.pid), ...(cluster?.members.map((m) => m.pid) ?? [])];
    await cluster?.close();
    const survivors = pids.filter(alive);
    if (survivors.length > 0) throw new Error(`processes still running: ${survivors.join(', ')}`);
    indent(cluster ? 'etcd stopped; no host or etcd process left running.' : 'No host process left running.');
    say(`\n${bold('Done')} in ${duration(ms(began, hr()))}: ${figures}.`);
  } finally {
    await observer.close();
  }
}

demo().then(
  () => {
    // An unref'd timer fires only if something else still keeps the process alive.
    setTimeout(() => {
      say(red('Something kept the demo process alive after it finished.'));
      process.exit(1);
    }, 5_000).unref();
  },
  async (err: unknown) => {
    say(`\n${red(`demo failed: ${err instanceof Error ? err.message : String(err)}`)}`);
    for (const h of hosts) {
      if (h.output) say(dim(`--- ${h.id} output ---\n${h.output}`));
      if (h.alive) h.child.kill('SIGKILL');
    }
    process.exit(1); // the exit hooks of test/helpers/etcd.ts stop etcd and remove its data
  },
);
