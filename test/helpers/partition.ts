/**
 * Cut one etcd member off from its peers while clients still reach it, with iptables on
 * loopback. Needs root and iptables (the owner and connmark matches, CONNMARK target).
 *
 *   const users = memberUsers(3);                              // locked-etcd0..2
 *   await using cluster = await startEtcd({ members: 3, users, extraArgs: ['--pre-vote'] });
 *   await using net = await partitionable(cluster, users);
 *   net.cut(1);                 // m1 can neither send to nor receive from m0, m2
 *   net.heal(1);
 *
 * How: every member runs as its own unix user (startEtcd's `users`). All loopback
 * traffic passes the OUTPUT chain, where the sending socket's owner is known. A chain
 * LOCKED_TEST_<pid>, jumped to from OUTPUT, always marks (connmark) every connection on
 * which member i sends a packet from or to a peer port — its own connections to the
 * others' peer ports and the others' connections to its peer port — with bit M_i (OR-ed
 * in: a connection carries the bits of both ends).
 * cut(i) adds `connmark has M_i → DROP` (both directions of all of i's peer connections,
 * established ones included, since a member sends on each of them several times per
 * heartbeat) and `--dport peerPort_i → DROP` (new connections to i). Its client port is
 * never touched: hosts, running as root, reach it as before.
 *
 * Every setup failure throws an Error saying why (tests must fail, not skip).
 * Two test files may cut members at once (the faults tier runs two files at a time): the
 * drops match this cluster's peer ports as well as the mark, so one never cuts the other's.
 * Cleanup: close() removes the chain; so does a process 'exit' handler; chains left by
 * test processes that died (SIGKILL) are removed when the next one starts.
 */
import { execFileSync } from 'node:child_process';
import type { EtcdCluster } from './etcd.js';

const IPTABLES = process.env['IPTABLES_BIN'] ?? 'iptables';
const CHAIN_PREFIX = 'LOCKED_TEST_';
/**
 * One connmark bit per member (bits 16–23): a peer connection carries the bits of both of
 * its ends, OR-ed in as each end sends on it. (A single mark per member, set by whoever
 * sent last, was overwritten by the other end's packets: cut(i) then dropped only what i
 * sent, and i went on receiving the raft log — a one-way cut.)
 */
const bitOf = (i: number): string => `0x${(1 << (16 + i)).toString(16)}`;
const markOf = (i: number): string => `${bitOf(i)}/${bitOf(i)}`;

function run(cmd: string, args: string[]): string {
  // /usr/sbin may be missing from a non-root PATH.
  const env = { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` };
  return execFileSync(cmd, args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function ipt(args: string[]): string {
  try {
    return run(IPTABLES, ['-w', ...args]);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${IPTABLES} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} needs root (uid ${process.getuid?.()}): etcd members run as their own users and are cut off with iptables`);
  }
}

/**
 * Unix users `locked-etcd0..n-1` (system users, no home, no login shell), created if
 * missing. One per member, for startEtcd's `users`.
 */
export function memberUsers(n: number): { name: string; uid: number; gid: number }[] {
  requireRoot('memberUsers');
  const out: { name: string; uid: number; gid: number }[] = [];
  for (let i = 0; i < n; i++) {
    const name = `locked-etcd${i}`;
    const ids = (): { uid: number; gid: number } | undefined => {
      try {
        return { uid: Number(run('id', ['-u', name]).trim()), gid: Number(run('id', ['-g', name]).trim()) };
      } catch {
        return undefined;
      }
    };
    let u = ids();
    if (!u) {
      try {
        run('useradd', ['--system', '--no-create-home', '--user-group', '--shell', '/usr/sbin/nologin', name]);
      } catch (e) {
        // Another test process may have created it in the meantime.
        if (!ids())
          throw new Error(`cannot create unix user ${name} with useradd: ${(e as { stderr?: string }).stderr?.trim() ?? String(e)}`);
      }
      u = ids();
      if (!u) throw new Error(`unix user ${name} missing after useradd`);
    }
    out.push({ name, ...u });
  }
  return out;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeChain(chain: string): void {
  // Every jump to it, then the chain itself. Best effort, synchronous (runs in 'exit').
  for (const jump of [
    ['-o', 'lo', '-j', chain],
    ['-j', chain],
  ]) {
    for (let k = 0; k < 16; k++) {
      try {
        run(IPTABLES, ['-w', '-D', 'OUTPUT', ...jump]);
      } catch {
        break;
      }
    }
  }
  try {
    run(IPTABLES, ['-w', '-F', chain]);
    run(IPTABLES, ['-w', '-X', chain]);
  } catch {
    /* already gone */
  }
}

/** Chains of earlier test processes that are gone (killed before their 'exit' handler ran). */
function removeStaleChains(): void {
  const rules = ipt(['-S']);
  for (const m of rules.matchAll(/^-N (LOCKED_TEST_(\d+))$/gm)) {
    const pid = Number(m[2]);
    if (pid !== process.pid && !pidAlive(pid)) removeChain(m[1]!);
  }
}

export interface Partitioner extends AsyncDisposable {
  readonly chain: string;
  /** Members currently cut off. */
  readonly cutOff: ReadonlySet<number>;
  /** Cut member i off from every peer (both directions); its client port stays reachable. */
  cut(i: number): void;
  heal(i: number): void;
  /** Heal every member and remove the chain. Idempotent. */
  close(): Promise<void>;
}

const portOf = (url: string): number => Number(new URL(url).port);

/**
 * Sets up the chain for `cluster`, whose members run as `users` (same order). Throws,
 * saying why, when that is impossible (not root, no iptables, no owner/connmark support).
 */
export async function partitionable(cluster: EtcdCluster, users: readonly { uid: number }[]): Promise<Partitioner> {
  try {
    return setUp(cluster, users);
  } catch (e) {
    throw new Error(
      `cannot set up the iptables partition of the etcd members (needs root and iptables with the owner and connmark matches and the CONNMARK target): ${(e as Error).message}`,
      { cause: e },
    );
  }
}

function setUp(cluster: EtcdCluster, users: readonly { uid: number }[]): Partitioner {
  requireRoot('partitionable');
  if (users.length < cluster.members.length) throw new Error(`partitionable: ${cluster.members.length} members, ${users.length} users`);
  const uids = new Set(users.slice(0, cluster.members.length).map((u) => u.uid));
  if (uids.size !== cluster.members.length || uids.has(0)) throw new Error('partitionable: every member needs a distinct non-root user');
  removeStaleChains();
  const chain = `${CHAIN_PREFIX}${process.pid}`;
  removeChain(chain);
  ipt(['-N', chain]);
  const onExit = (): void => removeChain(chain);
  process.on('exit', onExit);
  const peerPorts = cluster.members.map((m) => portOf(m.peerUrl));
  try {
    cluster.members.forEach((_, i) => {
      const others = peerPorts.filter((_, j) => j !== i).join(',');
      const uid = String(users[i]!.uid);
      // i's connections to the others' peer ports, and the others' connections to i's.
      ipt([
        '-A',
        chain,
        '-p',
        'tcp',
        '-m',
        'owner',
        '--uid-owner',
        uid,
        '-m',
        'multiport',
        '--dports',
        others,
        '-j',
        'CONNMARK',
        '--or-mark',
        bitOf(i),
      ]);
      ipt([
        '-A',
        chain,
        '-p',
        'tcp',
        '-m',
        'owner',
        '--uid-owner',
        uid,
        '--sport',
        String(peerPorts[i]),
        '-j',
        'CONNMARK',
        '--or-mark',
        bitOf(i),
      ]);
    });
    ipt(['-I', 'OUTPUT', '1', '-o', 'lo', '-j', chain]);
  } catch (e) {
    removeChain(chain);
    process.off('exit', onExit);
    throw e;
  }

  const cutOff = new Set<number>();
  // The mark bits are the same in every test process's chain: a file that cuts its member i
  // must not drop the peer traffic of another file's cluster (members run as the same users,
  // so their connections carry the same bits). The ports scope the drop to this cluster.
  const ours = peerPorts.join(',');
  const dropRules = (i: number): string[][] => [
    ['-p', 'tcp', '-m', 'connmark', '--mark', markOf(i), '-m', 'multiport', '--ports', ours, '-j', 'DROP'],
    ['-p', 'tcp', '--dport', String(peerPorts[i]), '-j', 'DROP'],
  ];
  let closed = false;
  const p: Partitioner = {
    chain,
    cutOff,
    cut(i) {
      if (closed) throw new Error('partitioner closed');
      if (i < 0 || i >= peerPorts.length) throw new Error(`no member #${i}`);
      if (cutOff.has(i)) return;
      for (const r of dropRules(i)) ipt(['-A', chain, ...r]);
      cutOff.add(i);
    },
    heal(i) {
      if (!cutOff.has(i)) return;
      for (const r of dropRules(i)) ipt(['-D', chain, ...r]);
      cutOff.delete(i);
    },
    async close() {
      if (closed) return;
      closed = true;
      cutOff.clear();
      removeChain(chain);
      process.off('exit', onExit);
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return p;
}
