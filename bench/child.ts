// The leader that gets SIGKILLed in the crash-failover benchmark: a process of its own,
// so nothing of it (no revoke, no resign, no half-sent request) survives the kill and
// the standby can only take over once etcd expires the lease.
//
// Config as JSON in argv[2]; tells the parent `{ type: 'leading' }` over IPC once elected.
import { Etcd3 } from 'etcd3';
import locked from '../src/index.js';

export interface ChildConfig {
  lib: 'locked' | 'etcd3';
  endpoints: string[];
  name: string;
  /** locked: key prefix of the locker. */
  prefix: string;
  ttl: number;
  /** Balance bench: this host's id, and register `name0`…`name{names−1}` (each start told as `{ type: 'start' }`). */
  id?: string;
  names?: number;
  /**
   * Sick-member bench, etcd3 only: campaign with etcd3's `Election` for each of these
   * names, tell every election and every loss as `{ type: 'start' | 'stop', name, t }`
   * (t: process.hrtime.bigint(), decimal), and campaign again 500 ms after a loss — what
   * an application on etcd3 would do.
   */
  electNames?: string[];
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const leading = (): void => void process.send?.({ type: 'leading' });

if (config.lib === 'locked' && config.names !== undefined) {
  const locker = locked(config.endpoints, { id: config.id ?? 'child', ttl: config.ttl, prefix: config.prefix, handleSignals: false });
  locker.on('error', () => {});
  for (let i = 0; i < config.names; i++) {
    locker(
      `${config.name}${i}`,
      (_remove, l) => new Promise<void>((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true })),
    ).on('start', () => process.send?.({ type: 'start' }));
  }
} else if (config.electNames !== undefined) {
  const client = new Etcd3({ hosts: config.endpoints.map((e) => `http://${e}`) });
  const tell = (type: 'start' | 'stop', name: string): void => void process.send?.({ type, name, t: process.hrtime.bigint().toString() });
  const run = (name: string): void => {
    const campaign = client.election(name, config.ttl).campaign(config.id ?? 'child');
    let leading = false;
    let over = false;
    campaign.on('elected', () => {
      leading = true;
      tell('start', name);
    });
    campaign.on('error', () => {
      if (over) return;
      over = true;
      if (leading) tell('stop', name);
      void campaign.resign().catch(() => {});
      setTimeout(() => run(name), 500);
    });
  };
  for (const name of config.electNames) run(name);
} else if (config.lib === 'locked') {
  const locker = locked(config.endpoints, { id: 'child', ttl: config.ttl, prefix: config.prefix, handleSignals: false });
  locker.on('error', () => {});
  locker(config.name, () => {}).on('start', leading);
} else {
  const client = new Etcd3({ hosts: config.endpoints.map((e) => `http://${e}`) });
  const campaign = client.election(config.name, config.ttl).campaign('child');
  campaign.on('elected', leading);
  campaign.on('error', () => {});
}

// The parent going away (bench aborted) must not leave this process holding a lease.
process.on('disconnect', () => process.exit(0));
