// Cluster view: observe leaders of a name, list every name, force a hand-over.
// (Stub: being implemented.)
import type { LockerCore } from './locker.js';

export interface NameStatus {
  name: string;
  /** Node id of the leader, or undefined. */
  leader: string | undefined;
  /** Fencing token (create revision, decimal string) of the leader's key. */
  token: string | undefined;
  /** Node ids in queue order, leader first. */
  candidates: string[];
}

export interface Observer {
  close(): Promise<void>;
}

export function observe(_core: LockerCore, _name: string): Observer {
  throw new Error('observe: not implemented yet');
}

export async function clusterStatus(_core: LockerCore): Promise<NameStatus[]> {
  throw new Error('status: not implemented yet');
}

export async function failover(_core: LockerCore, _name: string): Promise<string | undefined> {
  throw new Error('failover: not implemented yet');
}
