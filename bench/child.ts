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
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const leading = (): void => void process.send?.({ type: 'leading' });

if (config.lib === 'locked' && config.names !== undefined) {
  const locker = locked(config.endpoints, { id: config.id ?? 'child', ttl: config.ttl, prefix: config.prefix, handleSignals: false });
  locker.on('error', () => {});
  for (let i = 0; i < config.names; i++) {
    locker(`${config.name}${i}`, (_remove, l) => new Promise<void>((resolve) => l.signal.addEventListener('abort', () => resolve(), { once: true }))).on('start', () =>
      process.send?.({ type: 'start' }),
    );
  }
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
