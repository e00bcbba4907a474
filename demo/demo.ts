// `npm run demo`: the main job of locked, narrated, on one machine.
//
// Starts a local 3-member etcd, then three hosts as separate processes (host.ts) that
// register the same six singletons, and shows: the jobs spread over the hosts (balance,
// fencing tokens), a SIGKILLed leader replaced by standbys (failover time), a graceful
// failover to a chosen host (hand-over time), a drain before a "deploy" and the undrain
// after it, and a close that leaves nothing behind in etcd.
//
// LOCKED_ENDPOINTS=h1:2379,h2:2379 runs it against an etcd you already have (e.g.
// docker-compose.etcd.yml) instead of starting one.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import locked, { type Locker } from '../src/index.js';
import { startEtcd, type EtcdCluster } from '../test/helpers/etcd.js';
import { hostTable } from '../src/cli/view.js';
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
  // From a clone: Debian's etcd 3.5 into a cache folder, nothing installed system-wide.
  const fetcher = fileURLToPath(new URL('../../scripts/etcd-bin.sh', import.meta.url));
  if (process.env['ETCD_BIN'] === undefined && executable('/bin/bash') && onPath('apt-get') && onPath('dpkg-deb')) {
    indent(yellow("etcd is not on PATH: fetching Debian's etcd 3.5 into a cache folder (once):"));
    code('bash scripts/etcd-bin.sh 3.5');
    const r = spawnSync('bash', [fetcher, '3.5'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const dir = r.stdout?.trim();
    if (r.status === 0 && dir) {
      process.env['PATH'] = `${dir}${delimiter}${process.env['PATH'] ?? ''}`;
      if (onPath(ETCD)) return true;
    }
    indent(red(`Fetching etcd 3.5 failed (scripts/etcd-bin.sh exited ${r.status ?? r.signal ?? r.error?.message}).`));
  }
  if (process.env['ETCD_BIN'] === undefined && process.getuid?.() === 0 && onPath('apt-get')) {
    indent(yellow(`etcd is not on PATH. This runs as root with apt-get, so the demo`));
    indent(yellow(`installs Debian's packages now (once; about a minute):`));
    code('apt-get update && apt-get install -y etcd-server etcd-client');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // A failed update may still leave usable package lists: try the install anyway.
    spawnSync('apt-get', ['-q', 'update'], { stdio: 'inherit', env });
    const install = spawnSync('apt-get', ['-q', 'install', '-y', '--no-install-recommends', 'etcd-server', 'etcd-client'], {
      stdio: 'inherit',
      env,
    });
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
  /** process.hrtime.bigint() when the demo SIGKILLed it: its jobs ended then. */
  killedAt: bigint | undefined;

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
        else if (!this.alive)
          done(() =>
            reject(new Error(`${this.id} exited while the demo waited for its '${type}' message${this.output ? `:\n${this.output}` : ''}`)),
          );
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.id} sent no '${type}' message within ${timeoutMs} ms`))),
        timeoutMs,
      );
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

/**
 * No job ran on two hosts at once: per name, every start comes after the stop (or the
 * death) of the previous leadership. From the hosts' monotonic stamps.
 */
function checkNoOverlap(): void {
  for (const name of NAMES) {
    const spans: { id: string; start: bigint; end: bigint }[] = [];
    for (const h of hosts) {
      let open: bigint | undefined;
      for (const m of h.messages) {
        if (m.type === 'start' && m.name === name) open = BigInt(m.t);
        if (m.type === 'stop' && m.name === name && open !== undefined) {
          spans.push({ id: h.id, start: open, end: BigInt(m.t) });
          open = undefined;
        }
      }
      if (open !== undefined)
        spans.push({ id: h.id, start: open, end: h.alive ? BigInt(Number.MAX_SAFE_INTEGER) * 1000n : (h.killedAt ?? open) });
    }
    spans.sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < spans.length; i++) {
      if (spans[i - 1]!.end > spans[i]!.start) throw new Error(`'${name}' ran on ${spans[i - 1]!.id} and ${spans[i]!.id} at once`);
    }
  }
}

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
    endpoints = given
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '');
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

  try {
    // 2. hosts
    step('Three hosts, one program (demo/host.ts), each its own process');
    code(`const locker = locked(endpoints, { id, ttl: 2 });`);
    code(`for (const name of jobs) locker(name, job);   // ${NAMES.length} jobs`);
    explain('One etcd lease per host. Each job name is a queue of keys, one per');
    explain(`host, under ${prefix}<name>/, in the order etcd created them.`);
    explain('First in line leads.');
    const first = startHost('alpha', endpoints, prefix);
    const alphaSession = await first.wait('session');
    for (const name of NAMES) await first.wait('start', (m) => m.name === name);
    indent(`alpha  pid ${pad(String(first.pid), 7)} lease ${hexLease(alphaSession.leaseId)}  alone: leads all ${NAMES.length} jobs`);
    for (const id of ['bravo', 'carol']) {
      const host = startHost(id, endpoints, prefix);
      const session = await host.wait('session');
      indent(`${pad(id, 6)} pid ${pad(String(host.pid), 7)} lease ${hexLease(session.leaseId)}  joins every queue`);
    }
    const [, bravo, carol] = hosts as [Host, Host, Host];

    // 3. balance
    step('Balance: the hosts share the jobs');
    explain('Every host sees every queue, so each computes the same picture. A host');
    explain('leading more than its fair share hands the surplus over gracefully:');
    explain("its job's signal aborts, the job stops, then its key is deleted and");
    explain('the receiver starts. Every host ends up with 2 of the 6.');
    const tBalance = hr();
    await until('2 jobs per host', async () => (await observer.status({ hosts: true })).every((h) => h.leads.length === 2), 15_000);
    const spread = await observer.status({ hosts: true });
    for (const h of spread) indent(`${pad(h.id, 6)} leads ${h.leads.map((n) => green(n)).join(', ')}`);
    const moves = bravo.messages.filter((m) => m.type === 'start').length + carol.messages.filter((m) => m.type === 'start').length;
    indent(`${moves} graceful hand-overs in ${duration(ms(tBalance, hr()))}; each job stopped before its next host started it.`);
    checkNoOverlap();
    code(`$ locked status --hosts`);
    say(dim(hostTable(spread).replace(/^/gm, '     ').trimEnd()));
    const status = await observer.status();
    const sample = status.find((s) => s.name === NAMES[0])!;
    indent(`${NAMES[0]}: leader ${green(sample.leader!)}, fencing token ${sample.token}`);
    explain("The token is the create revision of the leader's key. It only grows");
    explain('from one leadership to the next: send it along with your writes, and');
    explain('a resource can refuse one from an older leader.');
    if (onPath(ETCDCTL)) {
      indent(`etcd's own tool reads the same election (the keys follow its protocol):`);
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
    }

    // 4. crash
    const victim = hosts.find((h) => h.id === sample.leader)!;
    const victimJobs = spread.find((h) => h.id === victim.id)!.leads;
    const survivors = hosts.filter((h) => h !== victim);
    step(`Crash: ${victim.id} is killed with SIGKILL`);
    explain('A crashed host cannot resign: its keys go only when its lease expires.');
    explain("So the hosts use ttl 2 s (etcd's minimum; the default is 10 s). The TTL");
    explain('is the price of crash detection: shorter = faster failover, but more');
    explain('keepalive traffic and less patience with a slow network or a GC pause.');
    const killedAt = hr();
    victim.killedAt = killedAt;
    victim.child.kill('SIGKILL');
    await victim.exited;
    indent(red(`kill -9 ${victim.pid}`) + dim(`  (${victim.id} leads ${victimJobs.join(', ')})`));
    const failovers: number[] = [];
    for (const name of victimJobs) {
      const took = await Promise.race(
        survivors.map(async (h) => {
          const s = await h.wait('start', (m) => m.name === name && BigInt(m.t) > killedAt);
          return { h, s };
        }),
      );
      failovers.push(ms(killedAt, took.s.t));
      indent(`${pad(name, 15)} ${green(pad(took.h.id, 6))} after ${bold(duration(ms(killedAt, took.s.t)))}, token → ${took.s.token}`);
    }
    explain(`etcd counts the TTL from ${victim.id}'s last keepalive (sent every ttl/3) and`);
    explain('reaps expired leases about every 0.5 s: expect 1.3 to 2.5 s here.');
    await until('3 jobs per survivor', async () =>
      (await observer.status({ hosts: true })).filter((h) => h.leads.length > 0).every((h) => h.leads.length === 3),
    );
    indent(
      `Then balance evens it out: ${(await observer.status({ hosts: true }))
        .filter((h) => h.leads.length > 0)
        .map((h) => `${h.id} ${h.leads.length}`)
        .join(', ')}.`,
    );
    checkNoOverlap();

    // 5. graceful, targeted failover
    const [s1, s2] = survivors as [Host, Host];
    const target = (await observer.status()).find((x) => x.name === NAMES[1])!;
    const from = survivors.find((h) => h.id === target.leader)!;
    const to = from === s1 ? s2 : s1;
    step(`Graceful failover of '${NAMES[1]}' to a chosen host`);
    code(`await locker.failover('${NAMES[1]}', { to: '${to.id}' });   // locked failover ${NAMES[1]} --to ${to.id}`);
    const tAsk = hr();
    const now = await observer.failover(NAMES[1], { to: to.id });
    const asked = ms(tAsk, hr());
    const stop = await from.wait('stop', (m) => m.name === NAMES[1] && BigInt(m.t) > tAsk);
    const start = await to.wait('start', (m) => m.name === NAMES[1] && BigInt(m.t) > tAsk);
    if (now !== to.id) throw new Error(`failover went to ${String(now)}, expected ${to.id}`);
    if (BigInt(stop.t) > BigInt(start.t)) throw new Error(`${to.id} started before ${from.id} had stopped`);
    const handover = ms(stop.t, start.t);
    indent(
      `${pad(NAMES[1], 15)} ${green(pad(to.id, 6))} ${from.id} stopped ('${stop.reason}'), ${to.id} started ${bold(duration(handover))} later`,
    );
    indent(`(the call took ${duration(asked)}: ask, stop, hand over, confirm).`);
    explain('The leader drains its job before it deletes its key, so the two never');
    explain(`overlap. 'locked failover --force' still deletes the key outright, for a`);
    explain('leader that does not answer.');

    // 6. drain before a deploy
    step(`Drain ${s1.id} before a deploy`);
    code(`$ locked drain ${s1.id}      # or: await locker.drain() on ${s1.id} itself`);
    const tDrain = hr();
    const movedNames: string[] = [];
    await observer.drain({ nodeId: s1.id, onMove: (name, leader) => movedNames.push(`${name} → ${leader ?? 'nobody'}`) });
    indent(`moved ${movedNames.join(', ')} in ${bold(duration(ms(tDrain, hr())))}`);
    const afterDrain = await observer.status({ hosts: true });
    if ((afterDrain.find((h) => h.id === s1.id)?.leads.length ?? 0) !== 0) throw new Error(`${s1.id} still leads after drain`);
    indent(`${s1.id} leads nothing and stays in every queue as a standby.`);
    indent(`"Deploy": ${s1.id} closes and a new version starts, with the same id.`);
    s1.send({ op: 'close' });
    await s1.wait('closed');
    await exitWithin(s1, 5_000);
    const next = startHost(s1.id, endpoints, prefix);
    await next.wait('session');
    await until(
      `${s1.id} queues again`,
      async () => (await observer.status({ hosts: true })).find((h) => h.id === s1.id)?.queued.length === NAMES.length,
    );
    indent(`The drain order holds across the restart: the new ${s1.id} waits as a standby.`);
    code(`$ locked undrain ${s1.id}`);
    await observer.undrain({ nodeId: s1.id });
    await until(
      '3 jobs each again',
      async () =>
        (await observer.status({ hosts: true })).filter((h) => h.leads.length > 0).length === 2 &&
        (await observer.status({ hosts: true })).every((h) => h.leads.length === 0 || h.leads.length === 3),
    );
    const back = await observer.status({ hosts: true });
    indent(
      `Balance gives it its share back: ${back
        .filter((h) => h.leads.length > 0)
        .map((h) => `${h.id} ${h.leads.length}`)
        .join(', ')}.`,
    );
    checkNoOverlap();
    explain('No job was without a leader for longer than one hand-over, and none');
    explain('ran on two hosts at once.');

    // 7. close
    step('Close: every host calls locker.close()');
    explain('It stops every job, revokes the lease and closes the etcd client.');
    const remaining = hosts.filter((h) => h.alive);
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

    const figures = `failover ${failovers.map(duration).join(' / ')}, graceful hand-over ${duration(handover)}`;
    await observer.close();
    const pids = [...hosts.map((h) => h.pid), ...(cluster?.members.map((m) => m.pid) ?? [])];
    await cluster?.close();
    const running = pids.filter(alive);
    if (running.length > 0) throw new Error(`processes still running: ${running.join(', ')}`);
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
