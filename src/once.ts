// Run-once jobs across the cluster. (Stub: being implemented.)
import type { LockerCore } from './locker.js';

export interface OnceContext {
  signal: AbortSignal;
  token: string;
  attempt: number;
}
export type OnceFunction = (ctx: OnceContext) => unknown;
export interface OnceOptions {
  maxAttempts?: number;
}
export interface OnceOutcome {
  status: 'done' | 'failed';
  attempts: number;
  by: string;
}

export async function once(_core: LockerCore, _name: string, _fn: OnceFunction, _options?: OnceOptions): Promise<OnceOutcome> {
  throw new Error('once: not implemented yet');
}
