// The read-mostly commands: status, leader, failover. They never campaign, so they
// hold no lease: a locker here is just an etcd client with the prefix.
import { performance } from 'node:perf_hooks';
import type { IWatchResponse } from 'etcd3';
import type { NameStatus } from '../cluster.js';
import { isHandOverError, isHostNotFoundError, type HostNotFoundError } from '../errors.js';
import type { HostStatus } from '../placement.js';
import { locked, type Locker, type MembersHealth } from '../locker.js';
import { validateName } from '../keys.js';
import { EXIT, UsageError, etcdFailure, say, type Connection } from './common.js';

/**
 * etcd3 retries a call up to three times across endpoints, each bounded by the
 * locker's request timeout (2 s with ttl 3); this caps the whole command so an
 * unreachable etcd is reported within ~10 s whatever the retries do (--timeout).
 */
export const DEFAULT_COMMAND_DEADLINE_MS = 9_000;

/** What a read-mostly command works with. */
export interface ViewContext {
  locker: Locker;
  conn: Connection;
  /** The whole command's deadline for etcd's answers. */
  timeoutMs: number;
  json: boolean;
}

export function viewLocker(conn: Connection, id: string | undefined): Locker {
  // ttl only sets the request timeout here (max(⅔ ttl, 2 s)); no lease is ever granted.
  return locked(conn.hosts, { prefix: conn.prefix, ttl: 3, handleSignals: false, etcd: conn.etcd, ...(id ? { id } : {}) });
}

async function ask<T>(ctx: ViewContext, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ctx.timeoutMs / 1000} s (timed out)`)), ctx.timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } catch (err) {
    // A hand-over that did not happen as asked, or an unknown host, is an answer, not an etcd failure.
    if (isHandOverError(err) || isHostNotFoundError(err)) throw err;
    throw etcdFailure(err, ctx.conn);
  } finally {
    clearTimeout(timer);
  }
}

function nameArg(positionals: string[], command: 'leader' | 'failover'): string {
  return oneArg(positionals, command, 'NAME', validateName);
}

function oneArg(
  positionals: string[],
  command: 'leader' | 'failover' | 'drain' | 'undrain',
  what: string,
  validate: (v: string) => void,
): string {
  if (positionals.length === 0) throw new UsageError(`missing ${what}`, command);
  if (positionals.length > 1) throw new UsageError(`expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}`, command);
  const value = positionals[0]!;
  try {
    validate(value);
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
  return value;
}

const nodeIdArg = (positionals: string[], command: 'drain' | 'undrain'): string =>
  oneArg(positionals, command, 'ID', (id) => {
    if (id.length === 0) throw new TypeError('ID must not be empty');
  });

export async function leaderCommand(ctx: ViewContext, positionals: string[]): Promise<number> {
  const name = nameArg(positionals, 'leader');
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

export async function failoverCommand(ctx: ViewContext, positionals: string[], options: { to?: string; force?: boolean }): Promise<number> {
  const name = nameArg(positionals, 'failover');
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
  const id = nodeIdArg(positionals, on ? 'drain' : 'undrain');
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
  watcher.on('data', (r: IWatchResponse) => r.events?.length && schedule());
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

function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
}

/** A plain table; `ages` adds an AGE column (only --watch can know it: etcd keeps no timestamps). */
export function table(status: NameStatus[], ages?: Map<string, string>): string {
  if (status.length === 0) return 'no names under this prefix\n';
  const head = ['NAME', 'LEADER', 'TOKEN', 'CANDIDATES', ...(ages ? ['AGE'] : [])];
  const rows = status.map((s) => [
    s.name,
    s.leader ?? '-',
    s.token ?? '-',
    candidates(s.candidates),
    ...(ages ? [ages.get(s.name) ?? '-'] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

function candidates(ids: string[]): string {
  const shown = ids.slice(0, 5).join(',');
  return ids.length > 5 ? `${shown},… (${ids.length})` : `${shown} (${ids.length})`;
}

/** `status --hosts`: one row per host. */
export function hostTable(hosts: HostStatus[]): string {
  if (hosts.length === 0) return 'no hosts under this prefix\n';
  const head = ['HOST', 'LEADS', 'QUEUED', 'SHARE', 'OFF', 'DRAINING', 'NAMES LED'];
  const rows = hosts.map((h) => [
    h.id,
    String(h.leads.length),
    String(h.queued.length),
    h.share.toFixed(1),
    h.offBy > 0 ? `+${h.offBy}` : String(h.offBy),
    h.draining ? 'yes' : 'no',
    h.leads.length > 5 ? `${h.leads.slice(0, 5).join(',')},…` : h.leads.join(',') || '-',
  ]);
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/** The footer of plain `status`: each host's leaderships against its fair share. */
function shares(hosts: HostStatus[]): string {
  const parts = hosts.map((h) => `${h.id} ${h.leads.length}/${h.share.toFixed(1)}${h.draining ? ' (draining)' : ''}`);
  return `leaderships/fair share: ${parts.join(', ')}\n`;
}

/** True when every member has a raft leader and serves linearizable reads (no fault, no rejoin under way). */
export function allHealthy(h: MembersHealth): boolean {
  return h.quorum.healthy === h.quorum.members;
}

/**
 * `status --members` (and the probe server's /members): one row per member as this
 * process sees it, then the quorum margin. USED appears only for a process that uses the
 * members (a running host: keepalives, the watch); a one-off `locked status` uses none.
 */
export function memberTable(h: MembersHealth): string {
  const used = h.members.some((m) => m.keepalive || m.watch);
  const head = [
    'ENDPOINT',
    'ROLE',
    'ID',
    'LEADER',
    'TERM',
    'REVISION',
    'APPLIED',
    'RTT',
    'LINEARIZABLE',
    ...(used ? ['USED'] : []),
    'NOTE',
    'LAST ERROR',
  ];
  const dash = (v: string | number | undefined): string => (v === undefined ? '-' : String(v));
  const rows = h.members.map((m) => {
    const s = m.status;
    const note = [
      ...(m.skipped ? [`breaker ${m.breaker ?? 'open'}: skipped`] : m.breaker === 'half-open' ? ['breaker half-open'] : []),
      ...(s.staleTerm ? ['old raft term: rejoining'] : []),
      ...(s.behind !== undefined && s.behind > 0 ? [`behind ${s.behind}`] : []),
      ...(m.pending > 0 && (m.oldestPendingMs ?? 0) >= 1000
        ? [`${m.pending} call(s) waiting ${(m.oldestPendingMs! / 1000).toFixed(1)}s`]
        : []),
      ...s.alarms.map((a) => `alarm ${a}`),
    ];
    const rtt = s.statusMs ?? m.lastRttMs;
    const error = s.error ?? (m.failuresInARow > 0 ? m.lastError : undefined);
    return [
      m.endpoint,
      s.role,
      dash(s.memberId),
      dash(s.leaderId),
      dash(s.raftTerm),
      dash(s.revision),
      dash(s.raftAppliedIndex),
      rtt === undefined ? '-' : `${rtt}ms`,
      s.linearizable ? `yes (${s.readMs}ms)` : 'no',
      ...(used ? [[...(m.keepalive ? ['keepalive'] : []), ...(m.watch ? ['watch'] : [])].join(',') || '-'] : []),
      note.join('; ') || '-',
      error ?? '-',
    ];
  });
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n${quorumLine(h)}\n`;
}

/** The footer of `status --members`: how many more member failures the cluster survives, as seen from here. */
function quorumLine(h: MembersHealth): string {
  const q = h.quorum;
  const leader = q.leader ? `raft leader ${q.leader}` : q.agreed ? 'no raft leader answered' : 'members name different raft leaders';
  const margin =
    q.tolerates < 0
      ? 'NO QUORUM as seen from here'
      : q.tolerates === 0
        ? q.members === 1
          ? 'a single member: its failure stops etcd'
          : 'tolerates NO more failures: the next one loses quorum'
        : `tolerates ${q.tolerates} more failure${q.tolerates === 1 ? '' : 's'}`;
  const rejoin =
    q.healthy < q.members && q.tolerates >= 0 ? `; ${q.members - q.healthy} member(s) not serving (down, cut off or rejoining)` : '';
  return `quorum: ${q.healthy}/${q.members} members healthy, ${q.quorum} needed: ${margin}; ${leader}${rejoin}`;
}
