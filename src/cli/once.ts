// `locked once NAME -- CMD` on every host: the library's run-once job with a program as
// fn. One host at a time runs CMD; a non-zero exit or a lost host is a failed attempt
// (counted in etcd before it starts, fenced), and every host exits with the outcome.
import { constants, hostname } from 'node:os';
import { locked, type Locker } from '../locker.js';
import type { OnceContext, OnceOutcome } from '../once.js';
import { describe } from '../errors.js';
import { validateName } from '../keys.js';
import { Child } from './child.js';
import { EXIT, EtcdError, UsageError, authFailure, clean, flagLabel, say, type Connection, type Parsed } from './common.js';
import { count, duration } from './flags.js';
import { ttlFlag } from './run.js';

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
  try {
    validateName(name);
  } catch (err) {
    throw new UsageError((err as Error).message, 'once');
  }
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

/** Resolves with 0 when the job is done (by any host), 1 when it failed, 128+n after signal n. */
export async function onceCommand(plan: OncePlan, conn: Connection, timeoutMs?: number): Promise<number> {
  const { name, id, graceMs } = plan;
  const lossMarginMs = (plan.ttl * 1000) / 3;
  let locker: Locker;
  try {
    locker = locked(conn.hosts, {
      id,
      prefix: conn.prefix,
      ttl: plan.ttl,
      handleSignals: false,
      stopTimeout: graceMs / 1000 + 1,
      etcd: conn.etcd,
    });
  } catch (err) {
    throw new UsageError(describe(err), 'once');
  }
  let reported = false;
  // Declared before the listener below, which may abort it.
  const stop = new AbortController();
  locker.on('error', (err) => {
    // A user or a prefix etcd refuses stays refused: leave (a running attempt is stopped) and exit 125.
    const refused = authFailure(err, conn);
    if (refused) {
      if (!stop.signal.aborted) stop.abort(refused);
      return;
    }
    if (reported) return;
    reported = true;
    say(`etcd trouble at ${conn.endpoints}: ${clean(err.message)} (retrying)`);
  });

  let child: Child | undefined;
  let ranHere = 0;
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      say(`${sig} again: SIGKILL to process group ${child?.pid ?? '-'}`);
      child?.signal('SIGKILL');
      return;
    }
    signalled = sig;
    say(`${sig}: ${child ? `forwarding to process group ${child.pid}, ` : ''}leaving '${name}' (a running attempt counts as failed)`);
    child?.terminate(sig, graceMs);
    stop.abort(new Error(`stopped by ${sig}`));
  };
  for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(s, onSignal);

  const fn = async (ctx: OnceContext): Promise<void> => {
    ranHere++;
    const c = new Child({
      command: plan.command,
      args: plan.args,
      env: {
        ...process.env,
        LOCKED_NAME: name,
        LOCKED_ID: id,
        LOCKED_TOKEN: ctx.token,
        LOCKED_ATTEMPT: String(ctx.attempt),
        LOCKED_ENDPOINTS: conn.endpoints,
        LOCKED_PREFIX: conn.prefix,
      },
      orphanKillMs: Math.min(graceMs, lossMarginMs),
    });
    child = c;
    say(`attempt ${ctx.attempt} of '${name}' here (token ${ctx.token}): started ${plan.command} (pid ${c.pid ?? '?'})`);
    const onAbort = (): void => {
      // Lost leadership: a standby may start the next attempt ttl/3 after our step-down.
      if (!signalled) say(`leadership of '${name}' ended: SIGTERM to process group ${c.pid}`);
      if (!signalled) c.signal('SIGTERM');
      c.killBy(Math.min(graceMs, lossMarginMs), 'the leadership ended');
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const result = await c.exited;
    await c.gone; // the attempt lasts until the whole group is gone
    ctx.signal.removeEventListener('abort', onAbort);
    child = undefined;
    say(`attempt ${ctx.attempt}: ${plan.command} ${result.how}`);
    if (result.code !== 0) throw new Error(`${plan.command} ${result.how}`);
  };

  let timer: NodeJS.Timeout | undefined;
  if (timeoutMs !== undefined) {
    timer = setTimeout(
      () => stop.abort(new EtcdError(`etcd at ${conn.endpoints} did not answer within ${timeoutMs / 1000} s (--timeout)`)),
      timeoutMs,
    );
  }
  // Connect at once, whatever runOnce waits for: its first step, a watch, retries a
  // refused login silently for ever, while the session's failures reach 'error' above.
  locker.ready().then(
    () => clearTimeout(timer),
    () => {},
  );
  let outcome: OnceOutcome | undefined;
  let failure: unknown;
  try {
    outcome = await locker.runOnce(name, fn, {
      maxAttempts: plan.maxAttempts,
      ...(plan.recordTtl !== undefined ? { recordTtl: plan.recordTtl } : {}),
      signal: stop.signal,
    });
  } catch (err) {
    failure = err;
  } finally {
    clearTimeout(timer);
    await locker.close();
  }
  if (outcome) {
    const record = { name, ...outcome, ranHere: ranHere > 0 };
    const line = plan.json
      ? JSON.stringify(record)
      : `'${name}' ${outcome.status === 'done' ? 'done' : 'failed'}: ${outcome.attempts} attempt${outcome.attempts === 1 ? '' : 's'}, last by ${outcome.by}${ranHere ? ` (${ranHere} here)` : ''}`;
    process.stdout.write(`${line}\n`);
    return outcome.status === 'done' ? EXIT.ok : EXIT.none;
  }
  if (signalled) return 128 + (constants.signals[signalled] ?? 0);
  if (failure instanceof EtcdError || failure instanceof UsageError) throw failure;
  const refused = authFailure(failure, conn);
  if (refused) throw refused;
  throw new EtcdError(`job '${name}': ${clean(describe(failure))}`);
}
