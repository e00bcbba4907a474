// One host of the demo: the program every machine of a real deployment would run.
// Each host registers the same six singletons; etcd elects one host per name, and
// only that host runs the function.
//
//   node .build/demo/host.js <endpoints> <id> <prefix>
//
// The demo's narrator (demo.ts) starts three of these as separate processes. They
// tell it what happens over IPC, stamped with process.hrtime.bigint(): a monotonic
// clock shared by every process of one machine, so the narrator can subtract the
// time it killed a host from the time another one started.
import { once } from 'node:events';
import locked, { type Leadership } from '../src/index.js';
import { NAMES, type HostCommand, type HostMessage } from './protocol.js';

const now = (): string => process.hrtime.bigint().toString();
const tell = (msg: HostMessage): void => void process.send?.(msg);

const [endpoints = '', id = '', prefix = 'locked/'] = process.argv.slice(2);

// ttl 2 s (default 10): a host that crashes cannot resign, so it is replaced only when
// its lease expires. A short TTL makes the demo's failover quick; it costs more
// keepalives and less tolerance for pauses, which is why the default is 10 s.
const locker = locked(endpoints, { id, prefix, ttl: 2 });

async function job(_remove: () => Promise<void>, leadership: Leadership): Promise<void> {
  // The real work goes here: it runs on this host only while it leads the name, and
  // must stop when leadership.signal aborts (a standby may start right after). For
  // writes to shared resources, guard them with leadership.fence() / leadership.token.
  if (!leadership.signal.aborted) await once(leadership.signal, 'abort');
}

for (const name of NAMES) {
  const singleton = locker(name, job);
  singleton.on('start', (l) => tell({ type: 'start', name, token: l.token, key: l.key, t: now() }));
  singleton.on('stop', (reason) => tell({ type: 'stop', name, reason, t: now() }));
  singleton.on('error', (err) => tell({ type: 'error', message: err.message }));
}
locker.on('session', (leaseId) => tell({ type: 'session', leaseId }));
locker.on('error', (err) => tell({ type: 'error', message: err.message }));

let closing = false;
process.on('message', (cmd: HostCommand) => {
  void (async () => {
    if (cmd.op === 'remove') {
      const called = now();
      await locker.singletons()[cmd.name]?.remove();
      tell({ type: 'removed', name: cmd.name, called, resolved: now() });
    } else {
      closing = true;
      await locker.close();
      tell({ type: 'closed', t: now() });
      // Dropping the IPC channel leaves nothing to keep this process alive: after
      // close() it must exit by itself, which the narrator checks.
      process.disconnect();
    }
  })().catch((err: unknown) => tell({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
});
process.on('disconnect', () => {
  // The narrator died: don't outlive it.
  if (!closing) void locker.close().finally(() => process.exit(0));
});
