// What `locked` says on stderr, and the two kinds of failure it reports as such: a
// mistake in the command line (usage printed) and etcd that cannot be reached or refuses.
import type { CommandName } from './commands.js';

/** A mistake in the command line: usage is printed and the exit status is 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message);
  }
}

/** etcd could not be reached or refused; `endpoints` is what the user should check. */
export class EtcdError extends Error {
  override readonly name = 'EtcdError';
  constructor(message: string) {
    super(message);
  }
}

export const say = (msg: string): void => void process.stderr.write(`locked: ${msg}\n`);

/** An error's message, or anything else as a string. */
export const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** grpc-js appends an empty "Resolution note:" to connection errors. */
export const clean = (message: string): string => message.replace(/\s*Resolution note:\s*$/, '').trim();
