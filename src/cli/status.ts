// `locked status` (names, --hosts, --members, --watch) and `locked leader`: read-only.
import type { NameStatus } from '../index.js';
import { DEFAULT_COMMAND_DEADLINE_MS, ask, type ViewContext } from './client.js';
import { EXIT } from './exit.js';
import { etcdFailure } from './failures.js';
import { nameProblem, oneArg } from './flags.js';
import { UsageError, say } from './messages.js';
import { age, allHealthy, hostTable, memberTable, shares, table } from './view.js';

export async function leaderCommand(ctx: ViewContext, positionals: string[]): Promise<number> {
  const name = oneArg(positionals, 'leader', 'NAME', nameProblem);
  if (ctx.json) {
    const all = await ask(ctx, ctx.locker.status());
    const s = all.find((x) => x.name === name);
    const out = { name, leader: s?.leader ?? null, token: s?.token ?? null, candidates: s?.candidates ?? [] };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return out.leader === null ? EXIT.none : EXIT.ok;
  }
  const id = await ask(ctx, ctx.locker.leader(name));
  if (id === undefined) {
    say(`nobody leads '${name}' (prefix '${ctx.conn.prefix}')`);
    return EXIT.none;
  }
  process.stdout.write(`${id}\n`);
  return EXIT.ok;
}

export async function statusCommand(
  ctx: ViewContext,
  positionals: string[],
  watch: boolean,
  hosts = false,
  members = false,
): Promise<number> {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`, 'status');
  if (members) {
    if (watch || hosts) throw new UsageError(`--members cannot be combined with ${watch ? '--watch' : '--hosts'}`, 'status');
    // Each member is asked for 1 s at most unless --timeout says otherwise: a frozen member
    // must not hold up the view of the others (they are asked at the same time).
    const timeoutMs = ctx.timeoutMs === DEFAULT_COMMAND_DEADLINE_MS ? 1000 : ctx.timeoutMs;
    const h = await ask({ ...ctx, timeoutMs: timeoutMs + 2_000 }, ctx.locker.health({ members: true, timeoutMs }));
    process.stdout.write(ctx.json ? `${JSON.stringify({ members: h.members, quorum: h.quorum }, null, 2)}\n` : memberTable(h));
    return allHealthy(h) ? EXIT.ok : EXIT.none;
  }
  if (hosts) {
    if (watch) throw new UsageError('--hosts cannot be combined with --watch', 'status');
    const list = await ask(ctx, ctx.locker.status({ hosts: true }));
    process.stdout.write(ctx.json ? `${JSON.stringify(list, null, 2)}\n` : hostTable(list));
    return EXIT.ok;
  }
  if (!watch) {
    const status = await ask(ctx, ctx.locker.status());
    if (ctx.json) {
      process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      return EXIT.ok;
    }
    const list = await ask(ctx, ctx.locker.status({ hosts: true }));
    process.stdout.write(table(status) + (list.length > 0 && status.length > 0 ? `\n${shares(list)}` : ''));
    return EXIT.ok;
  }
  return watchStatus(ctx);
}

/** Redraws on every change under the prefix until SIGINT/SIGTERM. */
async function watchStatus(ctx: ViewContext): Promise<number> {
  const { locker, conn, json } = ctx;
  const tty = process.stdout.isTTY === true && !json;
  const started = Date.now();
  const since = new Map<string, { token: string | undefined; at: number; exact: boolean }>();
  let latest: NameStatus[] = [];
  let first = true;
  let trouble: string | undefined;

  let printed: string | undefined;
  const draw = (): void => {
    // Piped output gets a new table only when something changed (a reconnect re-reads).
    const state = JSON.stringify(latest);
    if (!tty && state === printed) return;
    printed = state;
    if (json) {
      process.stdout.write(`${state}\n`);
      return;
    }
    const ages = new Map([...since].map(([n, s]) => [n, `${s.exact ? '' : '≥'}${age(Date.now() - s.at)}`]));
    const footer = `${trouble ? `etcd: ${trouble} (retrying)\n` : ''}watching ${conn.endpoints} prefix '${conn.prefix}' since ${new Date(started).toLocaleTimeString()}\n`;
    process.stdout.write(tty ? `\x1b[H\x1b[2J${table(latest, ages)}\n${footer}` : `${table(latest, ages)}\n`);
  };

  const read = async (): Promise<void> => {
    latest = await locker.status();
    const now = Date.now();
    for (const s of latest) {
      const seen = since.get(s.name);
      if (!seen || seen.token !== s.token) since.set(s.name, { token: s.token, at: first ? started : now, exact: !first });
    }
    for (const n of since.keys()) if (!latest.some((s) => s.name === n)) since.delete(n);
    first = false;
  };

  // Watch first, read second: a change after the watch connected triggers another read.
  const watcher = locker.client.watch().prefix(conn.prefix).watcher();
  let running = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  const refresh = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    read()
      .then(
        () => {
          trouble = undefined;
          draw();
        },
        (err: unknown) => {
          trouble = etcdFailure(err, conn).message;
          if (tty) draw();
          else say(trouble);
        },
      )
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  };
  // Changes come in bursts (a failover is a delete and, soon after, a re-campaign).
  const schedule = (): void => {
    if (!timer) timer = setTimeout(() => ((timer = undefined), refresh()), 25);
  };
  watcher.on('data', (r: { events?: readonly unknown[] }) => r.events?.length && schedule());
  watcher.on('connected', schedule);
  watcher.on('disconnected', () => {
    trouble = `disconnected from ${conn.endpoints}`;
    if (tty) draw();
  });
  watcher.on('error', () => schedule());

  await ask(ctx, read());
  draw();
  const ticker = tty ? setInterval(draw, 1000) : undefined;
  await new Promise<void>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve());
  });
  if (ticker) clearInterval(ticker);
  await Promise.race([watcher.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
  return EXIT.ok;
}
