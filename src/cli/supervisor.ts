// The supervisor of `locked run`: turns leaderships into runs of the program and back,
// and decides when `run` is over and with which status. A state machine with one
// transition function, enter(); everything it does to the world — start a program,
// release the name, print, set a timer — goes through Ports, so its logic is tested with
// fakes (test/unit/cli-supervisor.test.ts). run.ts wires it to the locker, the process's
// signals and real child processes.
import { isNotLeaderError, type Clock, type Leadership, type Timer } from '../index.js';
import type { ChildExit } from './child.js';
import { EXIT } from './exit.js';

/** What the supervisor needs of a started program; child.ts's Child is one. */
export interface Program {
  readonly pid: number | undefined;
  /** Settles when the direct child has exited (or failed to start); never rejects. */
  readonly exited: Promise<ChildExit>;
  /** Settles when the program's whole process group is gone. */
  readonly gone: Promise<void>;
  /** True once the group is gone: it is never signalled again. */
  readonly done: boolean;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL to the group no later than `afterMs` from now (an earlier deadline stands). */
  killBy(afterMs: number, why: string): void;
  /** `sig` now, SIGKILL after `afterMs` unless the group is gone first. */
  terminate(sig: NodeJS.Signals, afterMs: number): void;
}

/** The settings of `run` that the supervisor acts on. */
export interface SupervisorPlan {
  name: string;
  /** The program, for messages. */
  command: string;
  id: string;
  graceMs: number;
  /**
   * After a lost lease, etcd may let a standby in this long after the step-down (ttl/3 with
   * the default renew deadline of ⅔ ttl): the program's group must be gone by then.
   */
  lossMarginMs: number;
  /** --try: one leadership or none, never queue again. */
  try: boolean;
  sighup: 'forward' | 'stop';
  /** --wait: leave the queue (75) if not elected within this long. */
  waitMs: number | undefined;
  /** --timeout: give up (125) if etcd has not answered within this long. */
  timeoutMs: number | undefined;
  /** For messages. */
  endpoints: string;
}

export interface SupervisorPorts {
  /** Starts the program for `leadership`. */
  start(leadership: Leadership): Program;
  /**
   * Closes the locker, which releases the name, waiting at most `withinMs` when given;
   * then stops whatever else serves (the probes of --listen).
   */
  release(withinMs: number | undefined): Promise<void>;
  say(message: string): void;
  clock: Clock;
  /** Called on every transition (tests, tracing). */
  onTransition?(from: RunState, to: RunState): void;
}

export type RunState =
  /** etcd has not answered yet. */
  | { readonly kind: 'connecting' }
  /** Campaigning (or trying) with no program here; `led`: a program ran here before. */
  | { readonly kind: 'queued'; readonly led: boolean }
  /** The program runs under `leadership`, which has not ended; `settled` once its run is over here. */
  | { readonly kind: 'leading'; readonly leadership: Leadership; readonly program: Program; readonly settled: Promise<void> }
  /** `leadership` ended (`reason`) and its program is being stopped; campaigning again once its group is gone. */
  | {
      readonly kind: 'ending';
      readonly leadership: Leadership;
      readonly program: Program;
      readonly settled: Promise<void>;
      readonly reason: string;
    }
  /** For good: waiting for `program` (if any) to be gone, then releasing the name; `led` as for queued. */
  | { readonly kind: 'stopping'; readonly program: Program | undefined; readonly led: boolean }
  /** Over: `run` exits with `code`. */
  | { readonly kind: 'done'; readonly code: number };

export type RunStateKind = RunState['kind'];

/** Every transition enter() accepts. A program never starts before the last one's group is gone: no ending → leading. */
export const TRANSITIONS: Readonly<Record<RunStateKind, readonly RunStateKind[]>> = {
  connecting: ['queued', 'leading', 'stopping'],
  queued: ['leading', 'stopping'],
  leading: ['ending', 'stopping'],
  ending: ['queued', 'stopping'],
  stopping: ['done'],
  done: [],
};

const stoppingOrDone = (s: RunState): s is Extract<RunState, { kind: 'stopping' | 'done' }> => s.kind === 'stopping' || s.kind === 'done';

/** The program of a state, if the state has one. */
const programOf = (s: RunState): Program | undefined =>
  s.kind === 'leading' || s.kind === 'ending' || s.kind === 'stopping' ? s.program : undefined;

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

export class Supervisor {
  private current: RunState = { kind: 'connecting' };
  /** Whether the current etcd outage was reported (once per outage: the locker retries on its own). */
  private troubleSaid = false;
  /** --wait and --timeout. */
  private readonly timers: Timer[] = [];
  private readonly exit = deferred<number>();

  constructor(
    private readonly plan: SupervisorPlan,
    private readonly ports: SupervisorPorts,
  ) {}

  get state(): RunState {
    return this.current;
  }

  /** Resolves with `run`'s exit status once the name is released. */
  get finished(): Promise<number> {
    return this.exit.promise;
  }

  /** Arms --wait and --timeout. */
  start(): void {
    const { waitMs, timeoutMs } = this.plan;
    const { clock } = this.ports;
    if (waitMs !== undefined) this.timers.push(clock.setTimeout(() => this.waitOver(waitMs), waitMs));
    if (timeoutMs !== undefined) this.timers.push(clock.setTimeout(() => this.timedOut(timeoutMs), timeoutMs));
  }

  /** The locker answered for the first time (its ready()). */
  connected(): void {
    const { name, id, endpoints } = this.plan;
    if (this.current.kind === 'connecting') this.enter({ kind: 'queued', led: false });
    this.troubleSaid = false;
    this.say(`connected to etcd at ${endpoints}; ${this.plan.try ? 'trying' : 'campaigning'} for '${name}' as ${id}`);
  }

  /** The locker reported etcd trouble it retries by itself (`why`: its message): said once per outage. */
  outage(why: string): void {
    if (this.troubleSaid) return;
    this.troubleSaid = true;
    const { endpoints } = this.plan;
    this.say(
      this.current.kind === 'connecting' ? `waiting for etcd at ${endpoints}: ${why}` : `etcd trouble at ${endpoints}: ${why} (retrying)`,
    );
  }

  /** The locker has a session again. */
  sessionUp(): void {
    if (this.current.kind === 'connecting') return;
    if (this.troubleSaid) this.say(`etcd is back; campaigning for '${this.plan.name}' again`);
    this.troubleSaid = false;
  }

  /**
   * The locker's SingletonFunction: runs the program for one leadership and resolves once
   * its whole process group is gone (the leadership lasts until then).
   */
  async lead(leadership: Leadership): Promise<void> {
    const { name, command } = this.plan;
    // One program at a time: a leadership won while the last one's program is still being
    // stopped starts only once that program's whole group is gone.
    for (let s = this.current; s.kind === 'leading' || s.kind === 'ending'; s = this.current) await s.settled;
    if (stoppingOrDone(this.current)) return;
    if (leadership.signal.aborted) {
      if (this.plan.try) {
        this.say(`lost '${name}' before ${command} started`);
        this.stop(EXIT.busy);
      }
      return;
    }
    const program = this.ports.start(leadership);
    const settled = deferred<void>();
    this.enter({ kind: 'leading', leadership, program, settled: settled.promise });
    this.say(`leading '${name}' (token ${leadership.token}): started ${command} (pid ${program.pid ?? '?'})`);
    const onEnd = (): void => this.leadershipEnded(leadership, program);
    leadership.signal.addEventListener('abort', onEnd, { once: true });
    try {
      const result = await program.exited;
      // The leadership lasts until the whole group is gone: the SIGKILL deadline (if any)
      // stays armed for the grandchildren.
      await program.gone;
      leadership.signal.removeEventListener('abort', onEnd);
      this.programGone(leadership, result);
    } finally {
      settled.resolve();
    }
  }

  /** `locked run --try` did not get the name: `holder` leads it. */
  notAcquired(holder: string | undefined): void {
    if (stoppingOrDone(this.current)) return;
    this.say(`'${this.plan.name}' is led by ${holder ?? 'another host'}: not running ${this.plan.command} (--try)`);
    this.stop(EXIT.busy);
  }

  /** SIGTERM, SIGINT or SIGHUP reached this process. */
  signal(sig: NodeJS.Signals): void {
    const { name, graceMs } = this.plan;
    const s = this.current;
    const program = programOf(s);
    const running = program !== undefined && !program.done ? program : undefined;
    if (sig === 'SIGHUP' && this.plan.sighup === 'forward' && !stoppingOrDone(s)) {
      if (running) {
        this.say(`SIGHUP: forwarding to process group ${running.pid} (it keeps running; --sighup stop to stop it instead)`);
        running.signal('SIGHUP');
      } else {
        this.say(`SIGHUP: no program running here; ignored`);
      }
      return;
    }
    if (stoppingOrDone(s)) {
      if (running) {
        this.say(`${sig} again: SIGKILL to pid ${running.pid}`);
        running.signal('SIGKILL');
      }
      return;
    }
    if (running) {
      // --sighup stop: a HUP means "stop" here, so the program gets the stop signal.
      const forward = sig === 'SIGHUP' ? 'SIGTERM' : sig;
      this.say(
        `${sig}: ${forward === sig ? 'forwarding' : `sending ${forward}`} to process group ${running.pid}, then releasing '${name}'`,
      );
      running.terminate(forward, graceMs);
      this.stop(running.exited.then((r) => running.gone.then(() => r.code)));
    } else {
      this.say(`${sig}: leaving the queue for '${name}'`);
      this.stop(EXIT.ok);
    }
  }

  /** Stops for good with 125 (etcd refuses the user): the program (if running) gets SIGTERM first, SIGKILL after --grace. */
  fatal(message: string): void {
    if (stoppingOrDone(this.current)) return;
    this.say(message);
    const program = programOf(this.current);
    if (program && !program.done) {
      this.say(`stopping ${this.plan.command}: SIGTERM to process group ${program.pid}`);
      program.terminate('SIGTERM', this.plan.graceMs);
    }
    // etcd refuses us: a release may never be answered, and the lease expires by itself.
    this.stop(EXIT.runFailure, 3_000);
  }

  /** For /leader: true while this process's program runs under an active leadership. */
  leading(): boolean {
    const s = this.current;
    return s.kind === 'leading' && s.leadership.active;
  }

  /** For /leader: who leads, or why not us. */
  describe(): string {
    const { name, id } = this.plan;
    const s = this.current;
    if (stoppingOrDone(s)) return `stopping; not leading '${name}'`;
    if (s.kind === 'leading' && s.leadership.active) return `leading '${name}' as ${id} (token ${s.leadership.token})`;
    return `not leading '${name}' (${id})`;
  }

  /** The one place the state changes; a transition TRANSITIONS does not list is a bug. */
  private enter(next: RunState): void {
    const from = this.current;
    if (!TRANSITIONS[from.kind].includes(next.kind)) throw new Error(`locked run: no transition from ${from.kind} to ${next.kind}`);
    this.current = next;
    this.ports.onTransition?.(from, next);
  }

  private say(message: string): void {
    this.ports.say(message);
  }

  /** The abort of `leadership`, whose program is `program`. */
  private leadershipEnded(leadership: Leadership, program: Program): void {
    const { name, graceMs, lossMarginMs } = this.plan;
    const why: unknown = leadership.signal.reason;
    const reason = isNotLeaderError(why) ? why.reason : 'lost';
    const s = this.current;
    if (s.kind === 'leading' && s.program === program) this.enter({ kind: 'ending', leadership, program, settled: s.settled, reason });
    if (program.done) return;
    const stopping = stoppingOrDone(s);
    if (reason === 'lost') {
      // etcd may expire the lease — and let a standby start the program — ttl/3 after
      // the step-down: the group must be gone by then, whatever else is going on (a
      // shutdown by signal with a longer --grace included).
      if (!stopping) {
        this.say(`leadership of '${name}' ended (lost): SIGTERM to process group ${program.pid}`);
        program.signal('SIGTERM');
      }
      program.killBy(Math.min(graceMs, lossMarginMs), 'the lease was lost');
      return;
    }
    if (stopping) return;
    this.say(`leadership of '${name}' ended (${reason}): SIGTERM to process group ${program.pid}`);
    program.terminate('SIGTERM', graceMs);
  }

  /** The whole group of the program of `leadership` is gone. */
  private programGone(leadership: Leadership, result: ChildExit): void {
    const { name, command } = this.plan;
    if (stoppingOrDone(this.current)) return;
    if (!leadership.signal.aborted) {
      // Finished by itself while leading: that is the job's answer, not a failure to retry.
      this.say(`${command} ${result.how}; releasing '${name}'`);
      this.stop(result.code);
      return;
    }
    if (this.plan.try) {
      // A try-lock never queues again: its one leadership is over.
      this.say(`${command} ${result.how}; not queueing again (--try)`);
      this.stop(result.code);
      return;
    }
    this.say(`${command} ${result.how}; queueing again for '${name}'`);
    this.enter({ kind: 'queued', led: true });
  }

  private waitOver(waitMs: number): void {
    const s = this.current;
    if (s.kind !== 'connecting' && !(s.kind === 'queued' && !s.led)) return;
    this.say(`not elected for '${this.plan.name}' within ${waitMs / 1000} s (--wait): leaving the queue`);
    this.stop(EXIT.busy, 3_000);
  }

  private timedOut(timeoutMs: number): void {
    if (this.current.kind !== 'connecting') return;
    this.say(`etcd at ${this.plan.endpoints} did not answer within ${timeoutMs / 1000} s (--timeout)`);
    this.stop(EXIT.runFailure, 3_000);
  }

  /**
   * Stops for good with `status` (the program's, once known). `closeWithinMs` bounds the
   * release, for when etcd may never answer it (then the lease expires by itself).
   */
  private stop(status: number | Promise<number>, closeWithinMs?: number): void {
    const s = this.current;
    if (stoppingOrDone(s)) return;
    const program = programOf(s);
    const led = program !== undefined || (s.kind === 'queued' && s.led);
    this.enter({ kind: 'stopping', program, led });
    this.shutDown(program, led, status, closeWithinMs).then(
      (code) => this.exit.resolve(code),
      (err: unknown) => this.exit.reject(err),
    );
  }

  private async shutDown(
    program: Program | undefined,
    led: boolean,
    status: number | Promise<number>,
    closeWithinMs: number | undefined,
  ): Promise<number> {
    for (const t of this.timers) this.ports.clock.clearTimeout(t);
    // Release only after the program's whole group is gone, so a standby never overlaps with it.
    await program?.gone;
    const code = await status;
    await this.ports.release(closeWithinMs);
    const { name } = this.plan;
    this.say(led ? `released '${name}'; exiting with status ${code}` : `left the queue for '${name}'; exiting with status ${code}`);
    this.enter({ kind: 'done', code });
    return code;
  }
}
