// `locked failover`, `drain` and `undrain`: the operator's hand-overs. Each asks the
// hosts (through records under the prefix) and waits for them to act.
import { performance } from 'node:perf_hooks';
import { isHandOverError, isHostNotFoundError, type HostNotFoundError } from '../index.js';
import { ask, type ViewContext } from './client.js';
import { EXIT } from './exit.js';
import { nameProblem, oneArg } from './flags.js';
import { UsageError, say } from './messages.js';

export async function failoverCommand(ctx: ViewContext, positionals: string[], options: { to?: string; force?: boolean }): Promise<number> {
  const name = oneArg(positionals, 'failover', 'NAME', nameProblem);
  if (options.force && options.to !== undefined)
    throw new UsageError('--to cannot be combined with --force (a forced failover goes to whoever is next)', 'failover');
  const was = await ask(ctx, ctx.locker.leader(name));
  if (was === undefined) {
    if (ctx.json) process.stdout.write(`${JSON.stringify({ name, was: null, leader: null, ms: null })}\n`);
    say(`nobody leads '${name}' (prefix '${ctx.conn.prefix}'): nothing to fail over`);
    return EXIT.none;
  }
  const t0 = performance.now();
  let now: string | undefined;
  try {
    // The leader gets the whole --timeout to stop its work; etcd's answers get a little more.
    const call = ctx.locker.failover(name, {
      ...(options.to !== undefined ? { to: options.to } : {}),
      force: options.force === true,
      timeoutMs: ctx.timeoutMs,
    });
    now = await ask({ ...ctx, timeoutMs: ctx.timeoutMs + 3_000 }, call);
  } catch (err) {
    if (isHandOverError(err)) {
      say(err.message);
      return EXIT.none;
    }
    if (isHostNotFoundError(err)) return notFound(ctx, err, `cannot hand '${name}' to '${err.nodeId}'`, undefined);
    throw err;
  }
  const ms = Math.round(performance.now() - t0);
  const how = options.force ? 'deposed' : 'handed over';
  process.stdout.write(
    ctx.json
      ? `${JSON.stringify({ name, was, leader: now ?? null, ms })}\n`
      : now === undefined
        ? `${was} was deposed from '${name}' in ${ms} ms; no other candidate, so it leads again once it re-queues\n`
        : now === was
          ? `${was} keeps '${name}': nobody else queues for it\n`
          : `${now} leads '${name}' now (was ${was}; ${how} in ${ms} ms)\n`,
  );
  return EXIT.ok;
}

/** No live host has the id asked for: say which ones there are, exit 68. */
function notFound(ctx: ViewContext, err: HostNotFoundError, what: string, force: string | undefined): number {
  const live = err.liveIds.length > 0 ? `live hosts: ${err.liveIds.join(', ')}` : 'no live hosts';
  say(`${what}: no live host has node id '${err.nodeId}' under prefix '${ctx.conn.prefix}' (${live})${force ? `; ${force}` : ''}`);
  return EXIT.notFound;
}

export async function drainCommand(ctx: ViewContext, positionals: string[], on: boolean, force = false): Promise<number> {
  const id = oneArg(positionals, on ? 'drain' : 'undrain', 'ID', (v) => (v.length === 0 ? 'ID must not be empty' : undefined));
  try {
    return await drainOrUndrain(ctx, id, on, force);
  } catch (err) {
    if (!isHostNotFoundError(err)) throw err;
    return on
      ? notFound(
          ctx,
          err,
          `cannot drain '${id}'`,
          `a typo? 'locked drain ${id} --force' writes the order anyway, for a host about to start`,
        )
      : notFound(ctx, err, `cannot undrain '${id}'`, `and no drain order names it`);
  }
}

async function drainOrUndrain(ctx: ViewContext, id: string, on: boolean, force: boolean): Promise<number> {
  if (!on) {
    await ask(ctx, ctx.locker.undrain({ nodeId: id, force }));
    if (ctx.json) process.stdout.write(`${JSON.stringify({ undrained: id })}\n`);
    else say(`'${id}' is no longer draining`);
    return EXIT.ok;
  }
  const t0 = performance.now();
  let moves = 0;
  await ask(
    ctx,
    ctx.locker.drain({
      nodeId: id,
      force,
      onMove: (name, to) => {
        moves++;
        if (ctx.json) process.stdout.write(`${JSON.stringify({ name, leader: to ?? null })}\n`);
        else process.stdout.write(`moved '${name}' to ${to ?? 'nobody'}\n`);
      },
    }),
  );
  const hosts = await ask(ctx, ctx.locker.status({ hosts: true }));
  const leads = hosts.find((h) => h.id === id)?.leads ?? [];
  const ms = Math.round(performance.now() - t0);
  if (ctx.json) process.stdout.write(`${JSON.stringify({ drained: id, moves, ms, leads })}\n`);
  else {
    process.stdout.write(`'${id}' is drained: ${moves} leadership(s) moved in ${ms} ms`);
    process.stdout.write(leads.length ? `; it still leads ${leads.join(', ')} (nobody else queues)\n` : '\n');
  }
  return EXIT.ok;
}
