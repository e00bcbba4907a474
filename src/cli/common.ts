// What every subcommand shares: flag definitions, help texts, the connection options
// (endpoints, prefix, TLS, auth) and how failures become messages and exit codes.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ExponentialBackoff } from 'cockatiel';
import type { IOptions } from 'etcd3';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { describe } from '../errors.js';

export const EXIT = {
  ok: 0,
  /** `leader`: nobody leads; `failover`: nothing to fail over. */
  none: 1,
  usage: 2,
  /** etcd unreachable, refused the request, or did not answer in time. */
  etcd: 3,
  /** `run --try`: another host leads; `run --wait`: not elected in time (EX_TEMPFAIL). */
  busy: 75,
  /** `run` and `once`: their own failure (usage, etcd) before the program started — not a status a program is likely to use. */
  runFailure: 125,
} as const;

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

const COMMON = {
  endpoints: { type: 'string' },
  prefix: { type: 'string' },
  id: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  user: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Every command takes these besides the connection options. */
const GENERAL = {
  timeout: { type: 'string' },
  version: { type: 'boolean', short: 'V' },
} as const;

const PROGRAM = { ttl: { type: 'string' }, grace: { type: 'string' } } as const;

export const COMMANDS = {
  run: {
    options: { ...COMMON, ...GENERAL, ...PROGRAM, try: { type: 'boolean' }, wait: { type: 'string' }, sighup: { type: 'string' }, listen: { type: 'string' } },
  },
  once: { options: { ...COMMON, ...GENERAL, ...PROGRAM, 'max-attempts': { type: 'string' }, json: { type: 'boolean' } } },
  status: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' }, watch: { type: 'boolean', short: 'w' } } },
  leader: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' } } },
  failover: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' } } },
} as const;

const COMMAND_LIST = 'run, once, status, leader or failover';

export type CommandName = keyof typeof COMMANDS;

const COMMON_HELP = `Connection options (every command):
  --endpoints LIST       etcd endpoints, comma-separated
                         (env LOCKED_ENDPOINTS; default 127.0.0.1:2379)
  --prefix PREFIX        key prefix of the elections (env LOCKED_PREFIX; default locked/)
  --id ID                this process's node id (run: default <hostname>-<pid>)
  --cacert FILE          CA certificate: talk TLS to etcd
  --cert FILE --key FILE client certificate and its key for TLS
  --user NAME:PASSWORD   etcd user and password
  -h, --help             this help`;

const GENERAL_HELP = `  --timeout DURATION     how long etcd may take to answer (default: status, leader,
                         failover 9s; run and once wait for etcd until it answers)
  -V, --version          print the version
Durations: 500ms, 10s, 2m, 1h or plain seconds.`;

export const USAGE: Record<CommandName | 'main', string> = {
  main: `Usage: locked <command> [options]

Elected singletons on etcd: run any program on exactly one host at a time, run a job
once across hosts, see who leads what, force a hand-over.

Commands:
  run NAME [--try] [--wait D] -- CMD [ARGS...]
                         campaign for NAME; run CMD while this process leads it
  once NAME [--max-attempts N] -- CMD [ARGS...]
                         run CMD once across every host that asks (a migration, a
                         cron entry on every host); retried elsewhere on failure
  status [--json] [--watch]
                         every name under the prefix: leader, token, candidates
  leader NAME [--json]   print the node id of NAME's leader (exit 1 if none)
  failover NAME [--json] force NAME's leader to hand over to the next candidate

${COMMON_HELP}
${GENERAL_HELP}

'locked <command> --help' describes one command.
Exit status: 0 ok, 1 no leader (leader, failover) or job failed (once), 2 usage
error, 3 etcd unreachable or refused, 75 busy (run --try, run --wait);
'run' exits with the status of its program, and with 125 for its own failures.`,

  run: `Usage: locked run NAME [--ttl D] [--grace D] [--try | --wait D] [--listen HOST:PORT] [options] -- CMD [ARGS...]

Campaigns for NAME and, while this process leads it, runs CMD in a process group of
its own with LOCKED_NAME, LOCKED_ID, LOCKED_TOKEN (fencing token), LOCKED_KEY,
LOCKED_ENDPOINTS and LOCKED_PREFIX in its environment; its stdin is /dev/null.

  Leadership lost (lease, failover): SIGTERM to CMD's process group, SIGKILL after
    --grace — on a lost lease no later than ttl/3 after the SIGTERM, when etcd may
    let a standby in — then campaign again (with --try: exit).
  CMD exits by itself: release NAME at once and exit with CMD's exit status.
  SIGTERM/SIGINT: forward to CMD, wait for its whole process group (SIGKILL after
    --grace), release NAME so a standby starts at once, exit with CMD's status. A
    second signal kills CMD's process group at once.
  SIGHUP: forwarded to CMD, which keeps running (a reload); with --sighup stop it
    stops run like SIGTERM (CMD gets SIGTERM).
  This process killed (SIGKILL, OOM): a watchdog sends CMD's group SIGTERM at once and
    SIGKILL after min(--grace, ttl/3), before etcd can let a standby in.
  etcd unreachable: keep trying (say so once) and start when etcd answers; with
    --timeout, give up with status 125 if etcd has not answered in that time.

  --ttl D                lease TTL, whole seconds ≥ 2 (default 10s): a crashed host is
                         replaced after at most this long
  --grace D              from SIGTERM to SIGKILL (default 10s)
  --try                  if another host leads NAME, exit 75 at once naming it; else
                         run CMD once as the leader (no queueing, never again after)
  --wait D               exit 75 if not elected within D (leaves the queue)
  --sighup forward|stop  what SIGHUP does (default forward)
  --listen HOST:PORT     serve HTTP probes and metrics there (HOST required; port 0
                         picks a free one, printed as 'listening on http://…'):
                         /healthz  200, or 503 while the program still runs past its
                                   lease's TTL (never just because etcd is down)
                         /readyz   200 when a lease is held and the watch is up, else 503
                         /leader   200 while this process's program runs as the
                                   leader, else 503 (route traffic to the leader only)
                         /metrics  Prometheus text format (locked_leader, …)

Exit status: CMD's status; 75 when --try found a leader or --wait ran out; 125 for
run's own failures before CMD started (usage, etcd); 126/127 CMD could not start.

${COMMON_HELP}
${GENERAL_HELP}`,

  once: `Usage: locked once NAME [--max-attempts N] [--json] [options] -- CMD [ARGS...]

A job done once across hosts (a migration at deploy time, a cron entry on every
host): run the same command on every host; exactly one host at a time runs CMD. A
non-zero exit, or a host lost while running it, counts as a failed attempt and
another host tries, until one succeeds or N attempts were made. The outcome is
recorded in etcd at <prefix>NAME: a host that asks after the job was decided gets it
without running CMD. Delete that key (etcdctl del <prefix>NAME) to run the job again.

  --max-attempts N       attempts in total across hosts (default 3; the first host
                         to ask records it)
  --json                 print the outcome record: { name, status, attempts, by, ranHere }
  --ttl D, --grace D     as for run

CMD gets LOCKED_NAME, LOCKED_ID, LOCKED_TOKEN, LOCKED_ATTEMPT, LOCKED_ENDPOINTS and
LOCKED_PREFIX. Exit status: 0 the job is done (by any host), 1 it failed
(attempts used up), 125 once's own failures (usage, etcd).

${COMMON_HELP}
${GENERAL_HELP}`,

  status: `Usage: locked status [--json] [--watch] [options]

Every name under the prefix, read from etcd: leader, fencing token and candidates in
queue order (leader first).

  --json                 JSON: [{ name, leader, token, candidates }]
  -w, --watch            redraw on every change (with --json: one JSON array a line);
                         AGE is how long the leader has led as seen by this watch
                         ('≥' for leaders already in place when it started)

${COMMON_HELP}
${GENERAL_HELP}`,

  leader: `Usage: locked leader NAME [--json] [options]

Prints the node id of NAME's leader; exits 1 when nobody campaigns for NAME.

  --json                 { name, leader, token, candidates } (leader null if none)

${COMMON_HELP}
${GENERAL_HELP}`,

  failover: `Usage: locked failover NAME [--json] [options]

Forces NAME's leader to hand over: deletes its election key, so it stops (its
program gets SIGTERM) and queues again at the back, and the next candidate leads.
Prints who leads now and how long it took; exits 1 when nobody leads NAME.

  --json                 { name, was, leader, ms }

${COMMON_HELP}
${GENERAL_HELP}`,
};

type AnyOption = { [C in CommandName]: keyof (typeof COMMANDS)[C]['options'] }[CommandName];
type BooleanOption = 'help' | 'json' | 'watch' | 'try' | 'version';

export type Values = { [K in AnyOption]?: K extends BooleanOption ? boolean : string };

export interface Parsed {
  command: CommandName;
  values: Values;
  /** Positionals before `--`. */
  positionals: string[];
  /** Positionals after `--` (undefined without `--`). */
  rest: string[] | undefined;
}

/** `--help` or `--version` with no command, or the parsed command line. */
export function parseCommandLine(argv: string[]): Parsed | { help: true } | { version: true } {
  // First pass only finds the command word, wherever common flags put it.
  const all = Object.assign({}, ...Object.values(COMMANDS).map((c) => c.options)) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
  const { tokens } = parseArgs({ args: argv, options: all, allowPositionals: true, strict: false, tokens: true });
  const word = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  const before = (name: string): boolean => tokens.some((t) => t.kind === 'option' && t.name === name && (word === undefined || t.index < word.index));
  if (before('version')) return { version: true };
  if (word?.kind !== 'positional') {
    if (before('help')) return { help: true };
    throw new UsageError(argv.length === 0 ? 'missing command' : `missing command (${COMMAND_LIST})`);
  }
  if (!Object.hasOwn(COMMANDS, word.value)) {
    throw new UsageError(`unknown command '${word.value}' (expected ${COMMAND_LIST})`);
  }
  const command = word.value as CommandName;
  const args = argv.filter((_, i) => i !== word.index);
  let parsed;
  try {
    parsed = parseArgs({ args, options: COMMANDS[command].options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError(describe(err), command);
  }
  const term = parsed.tokens.find((t) => t.kind === 'option-terminator');
  const positionals: string[] = [];
  const rest: string[] = [];
  for (const t of parsed.tokens) {
    if (t.kind !== 'positional') continue;
    (term && t.index > term.index ? rest : positionals).push(t.value);
  }
  return { command, values: parsed.values as Values, positionals, rest: term ? rest : undefined };
}

/** How to reach etcd, from flags, environment and defaults. */
export interface Connection {
  /** As given (for messages and the child's environment). */
  endpoints: string;
  hosts: string[];
  prefix: string;
  etcd: Omit<IOptions, 'hosts'>;
}

export function connection(values: Values, env: NodeJS.ProcessEnv = process.env): Connection {
  const endpoints = values.endpoints ?? env['LOCKED_ENDPOINTS'] ?? '127.0.0.1:2379';
  const list = endpoints
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  if (list.length === 0) throw new UsageError(`--endpoints must name at least one etcd endpoint, got '${endpoints}'`);
  const prefix = values.prefix ?? env['LOCKED_PREFIX'] ?? 'locked/';
  const etcd: Omit<IOptions, 'hosts'> = {
    // etcd3's default watch backoff grows to 30 s: after an outage the locker's watch,
    // and with it every campaign, would come back up to 30 s after etcd did.
    faultHandling: { watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }).next() },
  };
  const tls = values.cacert !== undefined || values.cert !== undefined || values.key !== undefined;
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError(`--cert and --key go together, got only ${values.cert !== undefined ? '--cert' : '--key'}`);
  }
  if (tls) {
    etcd.credentials = {
      rootCertificate: values.cacert !== undefined ? readFlagFile('--cacert', values.cacert) : undefined,
      privateKey: values.key !== undefined ? readFlagFile('--key', values.key) : undefined,
      certChain: values.cert !== undefined ? readFlagFile('--cert', values.cert) : undefined,
    } as NonNullable<IOptions['credentials']>;
  }
  if (values.user !== undefined) {
    const i = values.user.indexOf(':');
    if (i <= 0) throw new UsageError(`--user must be NAME:PASSWORD, got '${values.user.slice(0, 40)}' (no ':' after a name)`);
    etcd.auth = { username: values.user.slice(0, i), password: values.user.slice(i + 1) };
  }
  // etcd3 chooses TLS by scheme: bare host:port means https once TLS files are given.
  const hosts = list.map((h) => (/^https?:\/\//.test(h) ? h : `${tls ? 'https' : 'http'}://${h}`));
  return { endpoints: list.join(','), hosts, prefix, etcd };
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${flag} file '${path}': ${describe(err)}`);
  }
}

/** Turns an etcd failure into a sentence that names the endpoints; other errors pass through. */
export function etcdFailure(err: unknown, conn: Connection): EtcdError {
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause instanceof GRPCUnavailableError)) cause = cause.cause;
  const unreachable =
    cause instanceof GRPCUnavailableError || cause instanceof GRPCDeadlineExceededError || /UNAVAILABLE|deadline|timed out|ECONNREFUSED/i.test(describe(cause));
  const why = clean(describe(cause));
  return new EtcdError(unreachable ? `cannot reach etcd at ${conn.endpoints}: ${why}` : `etcd at ${conn.endpoints} failed the request: ${why}`);
}

/** grpc-js appends an empty "Resolution note:" to connection errors. */
export const clean = (message: string): string => message.replace(/\s*Resolution note:\s*$/, '').trim();

export const say = (msg: string): void => void process.stderr.write(`locked: ${msg}\n`);
