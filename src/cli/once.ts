// `locked once NAME -- CMD` on every host: the library's run-once job with a program as
// fn. One host at a time runs CMD; a non-zero exit or a lost host is a failed attempt
// (counted in etcd before it starts, fenced), and every host exits with the outcome.
import { constants, hostname } from 'node:os';
import type { OnceContext } from '../index.js';
import { Child, programEnv } from './child.js';
import { programLocker } from './client.js';
import type { Connection } from './connection.js';
import { EXIT } from './exit.js';
import { authFailure } from './failures.js';
import { checkName, count, duration, ttlFlag } from './flags.js';
import { EtcdError, UsageError, clean, describe, say } from './messages.js';
import { flagLabel, type Parsed } from './parse.js';

export interface OncePlan {
  name: string;
  command: string;
  args: string[];
  ttl: number;
  graceMs: number;
  id: string;
  maxAttempts: number;
  /** --record-ttl: seconds the outcome stays in etcd (undefined: until deleted). */
  recordTtl: number | undefined;
  json: boolean;
}

/** --record-ttl: whole seconds ≥ 1, as etcd leases count. */
function recordTtlFlag(value: string | undefined, label: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = duration(label, value, 0, 'once', 1_000);
  if (ms % 1000 !== 0) throw new UsageError(`${label} must be whole seconds ≥ 1 (etcd leases count in seconds), got '${value}'`, 'once');
  return ms / 1000;
}

export function planOnce(parsed: Parsed): OncePlan {
  const { positionals, rest, values } = parsed;
  if (positionals.length === 0) throw new UsageError('missing NAME', 'once');
  const [name, ...more] = positionals;
  checkName(name, 'once');
  if (rest !== undefined && more.length > 0) throw new UsageError(`unexpected '${more[0]}' before '--'`, 'once');
  const cmd = rest ?? more;
  if (cmd.length === 0) throw new UsageError(`missing the command to run: locked once ${name} -- CMD [ARGS...]`, 'once');
  const label = (flag: string): string => flagLabel(parsed, flag);
  return {
    name,
    command: cmd[0]!,
    args: cmd.slice(1),
    ttl: ttlFlag(values.ttl, 'once', label('ttl')),
    graceMs: duration(label('grace'), values.grace, 10_000, 'once'),
    id: values.id ?? `${hostname()}-${process.pid}`,
    maxAttempts: count(label('max-attempts'), values['max-attempts'], 3, 'once'),
    recordTtl: recordTtlFlag(values['record-ttl'], label('record-ttl')),
    json: values.json === true,
  };
}

/** What happens here: no attempt, an attempt running here, or leaving on a signal (with the attempt still running, if one was). */
type OnceState =
  | { readonly kind: 'asking' }
  | { readonly kind: 'attempt'; readonly program: Child }
  | { readonly kind: 'leaving'; readonly signal: NodeJS.Signals; readonly program: Child | undefined };

/** One `locked once`: the attempts run here, the signals that end it and how etcd trouble is said. */
class OnceRun {
  private state: OnceState = { kind: 'asking' };
  /** Attempts started here. */
  private ranHere = 0;
  /** Whether etcd trouble was said (once: the locker retries on its own). */
  private troubleSaid = false;
  /** Aborted to leave: by a signal, a user etcd refuses, or --timeout. */
  readonly leave = new AbortController();

  constructor(
    private readonly plan: OncePlan,
    private readonly conn: Connection,
  ) {}

  get attemptsHere(): number {
    return this.ranHere;
  }

  /** The signal that ended this run, if one did. */
  get signalled(): NodeJS.Signals | undefined {
    return this.state.kind === 'leaving' ? this.state.signal : undefined;
  }

  etcdError(err: Error): void {
    // A user or a prefix etcd refuses stays refused: leave (a running attempt is stopped) and exit 125.
    const refused = authFailure(err, this.conn);
    if (refused) {
      if (!this.leave.signal.aborted) this.leave.abort(refused);
      return;
    }
    if (this.troubleSaid) return;
    this.troubleSaid = true;
    say(`etcd trouble at ${this.conn.endpoints}: ${clean(err.message)} (retrying)`);
  }

  signal(sig: NodeJS.Signals): void {
    const s = this.state;
    if (s.kind === 'leaving') {
      say(`${sig} again: SIGKILL to process group ${s.program?.pid ?? '-'}`);
      s.program?.signal('SIGKILL');
      return;
    }
    const program = s.kind === 'attempt' ? s.program : undefined;
    this.state = { kind: 'leaving', signal: sig, program };
    say(
      `${sig}: ${program ? `forwarding to process group ${program.pid}, ` : ''}leaving '${this.plan.name}' (a running attempt counts as failed)`,
    );
    program?.terminate(sig, this.plan.graceMs);
    this.leave.abort(new Error(`stopped by ${sig}`));
  }

  /** The job's fn: one attempt, failed unless the program exits 0. */
  readonly attempt = async (ctx: OnceContext): Promise<void> => {
    const { plan, conn } = this;
    const lossMarginMs = (plan.ttl * 1000) / 3;
    this.ranHere++;
    const program = new Child({
      command: plan.command,
      args: plan.args,
      env: programEnv(plan, conn, ctx.token, { LOCKED_ATTEMPT: String(ctx.attempt) }),
      orphanKillMs: Math.min(plan.graceMs, lossMarginMs),
    });
    const before = this.state;
    this.state = before.kind === 'leaving' ? { ...before, program } : { kind: 'attempt', program };
    say(`attempt ${ctx.attempt} of '${plan.name}' here (token ${ctx.token}): started ${plan.command} (pid ${program.pid ?? '?'})`);
    const onAbort = (): void => {
      // Lost leadership: a standby may start the next attempt ttl/3 after our step-down.
      if (this.state.kind !== 'leaving') {
        say(`leadership of '${plan.name}' ended: SIGTERM to process group ${program.pid}`);
        program.signal('SIGTERM');
      }
      program.killBy(Math.min(plan.graceMs, lossMarginMs), 'the leadership ended');
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const result = await program.exited;
    await program.gone; // the attempt lasts until the whole group is gone
    ctx.signal.removeEventListener('abort', onAbort);
    const after = this.state;
    this.state = after.kind === 'leaving' ? { ...after, program: undefined } : { kind: 'asking' };
    say(`attempt ${ctx.attempt}: ${plan.command} ${result.how}`);
    if (result.code !== 0) throw new Error(`${plan.command} ${result.how}`);
  };
}

/** Resolves with 0 when the job is done (by any host), 1 when it failed, 128+n after signal n. */
export async function onceCommand(plan: OncePlan, conn: Connection, timeoutMs?: number): Promise<number> {
  const { name } = plan;
  const locker = programLocker(conn, plan, 'once');
  const run = new OnceRun(plan, conn);
  locker.on('error', (err) => run.etcdError(err));
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, (sig: NodeJS.Signals) => run.signal(sig));

  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => run.leave.abort(new EtcdError(`etcd at ${conn.endpoints} did not answer within ${timeoutMs / 1000} s (--timeout)`)),
          timeoutMs,
        );
  // Connect at once, whatever runOnce waits for: its first step, a watch, retries a
  // refused login silently for ever, while the session's failures reach 'error' above.
  locker.ready().then(
    () => clearTimeout(timer),
    () => {},
  );
  const result = await locker
    .runOnce(name, run.attempt, {
      maxAttempts: plan.maxAttempts,
      ...(plan.recordTtl !== undefined ? { recordTtl: plan.recordTtl } : {}),
      signal: run.leave.signal,
    })
    .then(
      (outcome) => ({ outcome }),
      (failure: unknown) => ({ failure }),
    )
    .finally(async () => {
      clearTimeout(timer);
      await locker.close();
    });
  if ('outcome' in result) {
    const { outcome } = result;
    const ranHere = run.attemptsHere;
    const record = { name, ...outcome, ranHere: ranHere > 0 };
    const line = plan.json
      ? JSON.stringify(record)
      : `'${name}' ${outcome.status === 'done' ? 'done' : 'failed'}: ${outcome.attempts} attempt${outcome.attempts === 1 ? '' : 's'}, last by ${outcome.by}${ranHere ? ` (${ranHere} here)` : ''}`;
    process.stdout.write(`${line}\n`);
    return outcome.status === 'done' ? EXIT.ok : EXIT.none;
  }
  const { failure } = result;
  if (run.signalled) return 128 + (constants.signals[run.signalled] ?? 0);
  if (failure instanceof EtcdError || failure instanceof UsageError) throw failure;
  const refused = authFailure(failure, conn);
  if (refused) throw refused;
  throw new EtcdError(`job '${name}': ${clean(describe(failure))}`);
}
