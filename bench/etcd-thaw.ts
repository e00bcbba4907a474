// etcd alone, no code of this library: does a raft leader frozen (SIGSTOP) longer than a
// lease's TTL revoke, when it resumes, a lease that clients kept alive all along through the
// other members? That is etcd-io/etcd#15247, said fixed in 3.4.31 and 3.5.13 (#16822). The
// frozen-raft-leader tests and chaos excuse an overlap that follows such a revoke only on an
// etcd that has the bug (etcdRevokesLiveLeases in test/helpers/etcd.ts); this script is the
// evidence for that list.
//
//   npm run build:test && node .build/bench/etcd-thaw.js [--trials 8]
//   ETCD_BIN=… ETCDCTL_BIN=… node .build/bench/etcd-thaw.js     # another etcd (scripts/etcd-bin.sh)
//
// Each trial: a fresh 3-member cluster (heartbeat 100 ms, election timeout 1 s); an etcd3
// client whose endpoints are the raft leader and the two others grants a lease (TTL 4 s),
// puts a key on it and keeps it alive (etcd3's keepalive stream, which moves to another
// member when the frozen one stops answering); the raft leader is frozen for 8 s, then
// resumed. A revoke is counted when the key is deleted after the thaw while the last keepalive
// acknowledged *during the freeze* is less than the TTL old: only the healthy members can
// answer while the leader is frozen, so that renewal is real (a late answer of the resumed
// member to a keepalive queued on it proves nothing), and etcd's lease contract says the lease
// must still be alive.
import { execFileSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { ETCD_BIN, startEtcd } from '../test/helpers/etcd.js';
import { raftLeader, sleep } from '../test/helpers/sick.js';

const TTL = 4;
const FREEZE_MS = 2 * TTL * 1000;

interface Trial {
  /** Deleted after the thaw, less than the TTL after a keepalive acknowledged during the freeze. */
  revokedAlive: boolean;
  /** ms from the thaw to the delete (negative: during the freeze); undefined: never deleted. */
  deletedAfterThawMs: number | undefined;
  /** Age (ms) of the last acknowledged keepalive when the key was deleted. */
  ackAgeMs: number | undefined;
  /** Age (ms) then of the last keepalive acknowledged while the leader was frozen. */
  freezeAckAgeMs: number | undefined;
}

async function trial(): Promise<Trial> {
  await using cluster = await startEtcd({ members: 3 });
  const sick = await raftLeader(cluster);
  const order = [sick, ...cluster.members.map((_, i) => i).filter((i) => i !== sick)];
  const client = new Etcd3({ hosts: order.map((i) => `http://${cluster.members[i]!.endpoint}`) });
  const observer = new Etcd3({ hosts: order.slice(1).map((i) => `http://${cluster.members[i]!.endpoint}`) });
  try {
    const lease = client.lease(TTL);
    let lastAck = Date.now();
    let frozen = false;
    let lastFreezeAck: number | undefined;
    lease.on('keepaliveSucceeded', () => {
      lastAck = Date.now();
      if (frozen) lastFreezeAck = lastAck;
    });
    lease.on('lost', () => undefined);
    await lease.put('thaw/k').value('v');
    let deletedAt: number | undefined;
    let ackAge: number | undefined;
    let freezeAckAge: number | undefined;
    const watcher = await observer.watch().key('thaw/k').create();
    watcher.on('delete', () => {
      deletedAt ??= Date.now();
      ackAge ??= Date.now() - lastAck;
      if (lastFreezeAck !== undefined) freezeAckAge ??= Date.now() - lastFreezeAck;
    });
    await sleep(1000);
    process.kill(cluster.members[sick]!.pid!, 'SIGSTOP');
    frozen = true;
    await sleep(FREEZE_MS);
    frozen = false;
    const thawedAt = Date.now();
    process.kill(cluster.members[sick]!.pid!, 'SIGCONT');
    await sleep(2000);
    await watcher.cancel();
    lease.release();
    return {
      revokedAlive: deletedAt !== undefined && deletedAt >= thawedAt && freezeAckAge !== undefined && freezeAckAge < TTL * 1000,
      deletedAfterThawMs: deletedAt === undefined ? undefined : deletedAt - thawedAt,
      ackAgeMs: ackAge,
      freezeAckAgeMs: freezeAckAge,
    };
  } finally {
    client.close();
    observer.close();
  }
}

const arg = process.argv.indexOf('--trials');
const trials = arg >= 0 ? Number(process.argv[arg + 1]) : 8;
const version = /etcd Version: (\S+)/.exec(execFileSync(ETCD_BIN, ['--version'], { encoding: 'utf8' }))?.[1] ?? '?';
console.log(`etcd ${version}: ${trials} trials, raft leader frozen ${FREEZE_MS} ms, lease TTL ${TTL} s kept alive throughout`);
let hits = 0;
for (let i = 1; i <= trials; i++) {
  const t = await trial();
  if (t.revokedAlive) hits++;
  const what =
    t.deletedAfterThawMs === undefined
      ? 'lease alive after the thaw'
      : `key deleted ${t.deletedAfterThawMs >= 0 ? `${t.deletedAfterThawMs} ms after` : `${-t.deletedAfterThawMs} ms before`} the thaw, last keepalive acknowledged ${t.ackAgeMs} ms before (during the freeze: ${t.freezeAckAgeMs ?? '–'} ms before)${t.revokedAlive ? ': A LIVE LEASE REVOKED' : ''}`;
  console.log(`  trial ${i}: ${what}`);
}
console.log(`etcd ${version}: a live lease revoked in ${hits} of ${trials} trials`);
process.exit(0);
