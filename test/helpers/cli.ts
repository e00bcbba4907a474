/**
 * `locked` spawned as a user would run it (the built .build/src/cli/main.js), for tests
 * that keep it running and look at its stderr while it does.
 *
 *   const procs = new LockedProcesses();      // after(() => procs.killAll())
 *   const p = procs.spawn(['run', 'job', ...], { OUT: file });
 *   procs.stderr(p)                           // everything it said so far
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export class LockedProcesses {
  private readonly running = new Set<ChildProcess>();
  private readonly said = new WeakMap<ChildProcess, string>();

  /** `locked ARGS` with `env` added to this process's environment; stdin and stdout ignored. */
  spawn(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const p = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    this.said.set(p, '');
    p.stderr!.on('data', (d: Buffer) => this.said.set(p, this.said.get(p) + d.toString()));
    this.running.add(p);
    p.once('exit', () => this.running.delete(p));
    return p;
  }

  stderr(p: ChildProcess): string {
    return this.said.get(p) ?? '';
  }

  /** SIGKILLs every process still running (test teardown). */
  killAll(): void {
    for (const p of this.running) p.kill('SIGKILL');
  }
}

/**
 * The arguments of `locked run NAME` for a node program given as source (`node -e PROGRAM`):
 * connection, id, then any other flags (`--ttl 3`, `--grace 60`, `--check …`).
 */
export function runArgs(o: { endpoints: string; prefix: string; id: string; program: string; flags?: string[]; name?: string }): string[] {
  return [
    'run',
    o.name ?? 'job',
    '--endpoints',
    o.endpoints,
    '--prefix',
    o.prefix,
    '--id',
    o.id,
    ...(o.flags ?? []),
    '--',
    process.execPath,
    '-e',
    o.program,
  ];
}
