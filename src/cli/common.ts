// What every subcommand shares: flag definitions, help texts, the connection options
// (endpoints, prefix, TLS, auth) and how failures become messages and exit codes.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ExponentialBackoff } from 'cockatiel';
import type { IOptions } from 'etcd3';
import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { describe } from '../errors.js';
import { applyEnvironment } from './env.js';

export const EXIT = {
  ok: 0,
  /** `leader`: nobody leads; `failover`: nothing to fail over. */
  none: 1,
  usage: 2,
  /** etcd unreachable, refused the request, or did not answer in time. */
  etcd: 3,
  /** `run --try`: another host leads; `run --wait`: not elected in time (EX_TEMPFAIL). */
  busy: 75,
  /** `drain`, `undrain`, `failover --to`: no live host has that node id (EX_NOHOST). */
  notFound: 68,
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
  'password-file': { type: 'string' },
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
    options: {
      ...COMMON,
      ...GENERAL,
      ...PROGRAM,
      try: { type: 'boolean' },
      wait: { type: 'string' },
      sighup: { type: 'string' },
      listen: { type: 'string' },
      check: { type: 'string' },
      'check-interval': { type: 'string' },
    },
  },
  once: {
    options: {
      ...COMMON,
      ...GENERAL,
      ...PROGRAM,
      'max-attempts': { type: 'string' },
      'record-ttl': { type: 'string' },
      json: { type: 'boolean' },
    },
  },
  status: {
    options: {
      ...COMMON,
      ...GENERAL,
      json: { type: 'boolean' },
      watch: { type: 'boolean', short: 'w' },
      hosts: { type: 'boolean' },
      members: { type: 'boolean' },
    },
  },
  leader: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' } } },
  failover: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' }, to: { type: 'string' }, force: { type: 'boolean' } } },
  drain: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' }, force: { type: 'boolean' } } },
  undrain: { options: { ...COMMON, ...GENERAL, json: { type: 'boolean' }, force: { type: 'boolean' } } },
} as const;

/** Commands that are about `locked` itself: no flags of their own, no etcd. */
export const META_COMMANDS = ['help', 'completion'] as const;

/** The shells `locked completion` writes a script for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

const COMMAND_LIST = 'run, once, status, leader, failover, drain, undrain, help or completion';

export type CommandName = keyof typeof COMMANDS;

const COMMON_HELP = `Connection options (every command):
  --endpoints LIST       etcd endpoints, comma-separated
                         (env LOCKED_ENDPOINTS; default 127.0.0.1:2379)
  --prefix PREFIX        key prefix of the elections (env LOCKED_PREFIX; default locked/)
  --id ID                this process's node id (run, once: default <hostname>-<pid>;
                         env LOCKED_ID, except in a program of run and once)
  --cacert FILE          CA certificate: talk TLS to etcd (env LOCKED_CACERT)
  --cert FILE --key FILE client certificate and its key for TLS (env LOCKED_CERT,
                         LOCKED_KEY); with any TLS file, endpoints default to https
  --user NAME            etcd user (env LOCKED_USER); its password from --password-file
                         or LOCKED_PASSWORD (which the program of run and once does not
                         inherit). --user NAME:PASSWORD works too, but ps shows the
                         password to every user of the host (a warning says so)
  --password-file FILE   the user's password: the file's first line
  -h, --help             this help`;

const GENERAL_HELP = `  --timeout DURATION     how long etcd may take to answer (default: status, leader,
                         failover 9s; run and once wait for etcd until it answers)
  -V, --version          print the version
Durations: Go's form — 500ms, 10s, 1m30s, 1h2m3.5s — or plain seconds (10).
Every flag but --help and --version can be set as LOCKED_<FLAG> instead (upper case,
dashes as underscores: LOCKED_TTL=30s, LOCKED_CHECK_INTERVAL=2s; true, false, 1 or 0
for a flag without value); the flag wins. 'locked help env' lists them.`;

export const USAGE: Record<CommandName | 'main', string> = {
  main: `Usage: locked <command> [options]

Elected singletons on etcd: run any program on exactly one host at a time, run a job
once across hosts, see who leads what, force a hand-over.

Commands:
  run NAME [--try] [--wait D] -- CMD [ARGS...]
                         campaign for NAME; run CMD while this process leads it
  once NAME [--max-attempts N] [--record-ttl D] -- CMD [ARGS...]
                         run CMD once across every host that asks (a migration, a
                         cron entry on every host); retried elsewhere on failure
  status [--json] [--watch] [--hosts] [--members]
                         every name under the prefix: leader, token, candidates;
                         --hosts: every host: names led and queued, fair share, drain;
                         --members: every etcd member: raft role, revision, quorum
  leader NAME [--json]   print the node id of NAME's leader (exit 1 if none)
  failover NAME [--to ID] [--force]
                         ask NAME's leader to hand over gracefully (to ID)
  drain ID [--force]     move every leadership of host ID away gracefully, then
                         keep it a standby (until undrain): before a deploy
  undrain ID [--force]   end the drain of host ID
  help [COMMAND|env]     this help, a command's, or the LOCKED_* variables
  completion bash|zsh|fish
                         a completion script for the shell: in ~/.bashrc,
                         source <(locked completion bash)

${COMMON_HELP}
${GENERAL_HELP}

'locked help <command>' or 'locked <command> --help' describes one command.
Exit status: 0 ok, 1 no leader (leader, failover), hand-over refused or late
(failover), job failed (once), 2 usage
error, 3 etcd unreachable or refused, 68 no live host has that id (drain,
undrain, failover --to), 75 busy (run --try, run --wait);
'run' exits with the status of its program, and with 125 for its own failures.`,

  run: `Usage: locked run NAME [--ttl D] [--grace D] [--try | --wait D] [--check CMD] [--listen HOST:PORT] [options] -- CMD [ARGS...]

Campaigns for NAME and, while this process leads it, runs CMD in a process group of
its own with LOCKED_NAME, LOCKED_ID, LOCKED_TOKEN (fencing token),
LOCKED_ELECTION_KEY, LOCKED_ENDPOINTS and LOCKED_PREFIX in its environment (not
LOCKED_PASSWORD); its stdin is /dev/null.

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
  etcd refuses the user or its password, or the prefix to the user's role: exit 125
    at once (a running CMD is stopped first), naming the user.

  --ttl D                lease TTL, whole seconds ≥ 2 (default 10s): a crashed host is
                         replaced after at most this long
  --grace D              from SIGTERM to SIGKILL (default 10s)
  --try                  if another host leads NAME, exit 75 at once naming it; else
                         run CMD once as the leader (no queueing, never again after)
  --wait D               exit 75 if not elected within D (leaves the queue)
  --sighup forward|stop  what SIGHUP does (default forward)
  --check CMD            health check, run with /bin/sh -c every --check-interval
                         (default 5s; exit 0 = healthy, a timeout fails): campaign
                         only while it passes (leave the queue when it fails); a
                         leader whose check fails twice in a row hands over to a
                         queued standby (CMD gets SIGTERM), or keeps leading if
                         nobody else queues, saying so
  --check-interval D     time between checks, and each check's time limit
  --listen HOST:PORT     serve HTTP probes and metrics there (HOST required; port 0
                         picks a free one, printed as 'listening on http://…'):
                         /healthz  200, or 503 while the program still runs past its
                                   lease's TTL (never just because etcd is down)
                         /readyz   200 when a lease is held and the watch is up, else 503
                         /leader   200 while this process's program runs as the
                                   leader, else 503 (route traffic to the leader only)
                         /metrics  Prometheus text format (locked_leader, …)
                         /health   JSON: this host's health, with each etcd member
                                   it uses (keepalive, watch, round trip, errors);
                                   ?members=1 also asks every member (1 s at most)
                         /members  'status --members' as this host sees it: 200
                                   while every member serves, else 503

Exit status: CMD's status; 75 when --try found a leader or --wait ran out; 125 for
run's own failures before CMD started (usage, etcd); 126/127 CMD could not start.

${COMMON_HELP}
${GENERAL_HELP}`,

  once: `Usage: locked once NAME [--max-attempts N] [--record-ttl D] [--json] [options] -- CMD [ARGS...]

A job done once across hosts (a migration at deploy time, a cron entry on every
host): run the same command on every host; exactly one host at a time runs CMD. A
non-zero exit, or a host lost while running it, counts as a failed attempt and
another host tries, until one succeeds or N attempts were made. The outcome is
recorded in etcd at <prefix>NAME: a host that asks after the job was decided gets it
without running CMD. Delete that key (etcdctl del <prefix>NAME) to run the job again.

  --max-attempts N       attempts in total across hosts (default 3; the first host
                         to ask records it)
  --record-ttl D         keep the outcome this long (whole seconds ≥ 1), then the
                         next host to ask runs the job again (default: for ever)
  --json                 print the outcome record: { name, status, attempts, by, ranHere }
  --ttl D, --grace D     as for run

CMD gets LOCKED_NAME, LOCKED_ID, LOCKED_TOKEN, LOCKED_ATTEMPT, LOCKED_ENDPOINTS and
LOCKED_PREFIX (not LOCKED_PASSWORD). Exit status: 0 the job is done (by any host),
1 it failed (attempts used up), 125 once's own failures (usage, etcd, a user or
prefix etcd refuses).

${COMMON_HELP}
${GENERAL_HELP}`,

  status: `Usage: locked status [--json] [--watch] [--hosts | --members] [options]

Every name under the prefix, read from etcd: leader, fencing token and candidates in
queue order (leader first); then every host's leaderships against its fair share.

  --hosts                every host instead: names led and queued, fair share and
                         how far it is from it, draining or not
  --members              every etcd member instead, as this process sees it (each
                         asked for 1 s at most, or --timeout): raft role, leader,
                         term, revision, applied index, round trip, whether it
                         serves linearizable reads, last error; then how many
                         more members may fail before quorum is lost. Exit 1
                         while any member is not healthy (no leader, no
                         linearizable read): a rolling restart waits for 0

  --json                 JSON: [{ name, leader, token, candidates }]; with --hosts:
                         [{ id, lease, leads, queued, draining, share, offBy }]; with
                         --members: { members: [{ endpoint, status: { role, … }, … }],
                         quorum: { members, quorum, healthy, tolerates, leader } }
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

  failover: `Usage: locked failover NAME [--to ID] [--force] [--json] [options]

Asks NAME's leader to hand over gracefully: it stops its work (its program gets
SIGTERM and is waited for), then deletes its election key and queues again at the
back; the next candidate — with --to, host ID — starts only after that. Prints who
leads now and how long it took. Exits 1 when nobody leads NAME, when ID does not
queue for it, or when the leader does not act within --timeout (default 9s; it may
be cut off from etcd); 68 when no live host has the id ID (a typo?), listing
the live ones.

  --to ID                the host that must lead next (it must queue for NAME)
  --force                delete the leader's key instead of asking it: it stops
                         when it sees the delete, the next one starts at the same
                         time (overlap of a few ms; fence writes). The last resort
                         for a leader that does not answer
  --json                 { name, was, leader, ms }

${COMMON_HELP}
${GENERAL_HELP}`,

  drain: `Usage: locked drain ID [--force] [--json] [options]

Drains host ID (its node id, as 'locked status --hosts' lists it): writes a drain
order under the prefix; the host hands every leadership gracefully to another
candidate and from then on takes a name only when no other candidate can. Waits
until ID leads nothing another host could take (--timeout, default 2m), printing
each move. The order holds — across restarts of a host with that id — until
'locked undrain ID'.

Exits 68 when no live host has the id ID (a typo, or not started yet), listing the
live ones: an order for an id nobody holds would move nothing and wait for nothing.

  --force                write the order anyway: for a host about to start, which
                         then never takes a name another host could lead
  --json                 one { name, leader } line per move, then { drained, leads }

${COMMON_HELP}
${GENERAL_HELP}`,

  undrain: `Usage: locked undrain ID [--force] [--json] [options]

Ends the drain of host ID: it campaigns as usual again and balancing gives it its
share of the names. Exits 68 when ID is neither a live host nor drained, listing
the live ones.

  --force                delete the order for ID whether or not it exists
  --json                 { undrained }

${COMMON_HELP}
${GENERAL_HELP}`,
};

type AnyOption = { [C in CommandName]: keyof (typeof COMMANDS)[C]['options'] }[CommandName];
type BooleanOption = 'help' | 'json' | 'watch' | 'try' | 'version' | 'hosts' | 'force' | 'members';

export type Values = { [K in AnyOption]?: K extends BooleanOption ? boolean : string };

export interface Parsed {
  command: CommandName;
  values: Values;
  /** Positionals before `--`. */
  positionals: string[];
  /** Positionals after `--` (undefined without `--`). */
  rest: string[] | undefined;
  /** For each value that came from the environment, not the command line: the variable's name. */
  from: Partial<Record<string, string>>;
}

/** How messages name where a value came from: `--ttl`, or `LOCKED_TTL` when the variable set it. */
export const flagLabel = (parsed: Pick<Parsed, 'from'>, flag: string): string => parsed.from[flag] ?? `--${flag}`;

/**
 * `--help` or `--version` with no command, `help [TOPIC]`, `completion SHELL`, or the
 * parsed command line with the flags it left out filled from the environment.
 */
export function parseCommandLine(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Parsed | { help: true; topic?: string } | { version: true } | { completion: Shell } {
  // First pass only finds the command word, wherever common flags put it.
  const all = Object.assign({}, ...Object.values(COMMANDS).map((c) => c.options)) as Record<
    string,
    { type: 'string' | 'boolean'; short?: string }
  >;
  const { tokens } = parseArgs({ args: argv, options: all, allowPositionals: true, strict: false, tokens: true });
  const word = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  const before = (name: string): boolean =>
    tokens.some((t) => t.kind === 'option' && t.name === name && (word === undefined || t.index < word.index));
  if (before('version')) return { version: true };
  if (word?.kind !== 'positional') {
    if (before('help')) return { help: true };
    throw new UsageError(argv.length === 0 ? 'missing command' : `missing command (${COMMAND_LIST})`);
  }
  if (word.value === 'help' || word.value === 'completion')
    return meta(
      word.value,
      argv.filter((_, i) => i !== word.index),
    );
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
  const values = parsed.values as Values;
  const from = applyEnvironment(command, values as Record<string, string | boolean | undefined>, env);
  return { command, values, positionals, rest: term ? rest : undefined, from };
}

/** `help [COMMAND|env]` and `completion bash|zsh|fish`: one word after them, no flags but --help. */
function meta(word: 'help' | 'completion', args: string[]): { help: true; topic?: string } | { completion: Shell } {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${word}: ${describe(err)}`);
  }
  const { positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`${word} takes one word, got ${positionals.length}: ${positionals.join(' ')}`);
  const topic = positionals[0];
  if (word === 'help' || parsed.values.help) {
    if (word === 'completion') return { help: true, topic: 'completion' };
    if (topic === undefined) return { help: true };
    if (!Object.hasOwn(COMMANDS, topic) && topic !== 'env' && !(META_COMMANDS as readonly string[]).includes(topic)) {
      throw new UsageError(`no help on '${topic}' (expected a command — ${COMMAND_LIST} — or env)`);
    }
    return { help: true, topic };
  }
  if (topic === undefined) throw new UsageError(`completion needs a shell: ${SHELLS.join(', ')}`);
  if (!(SHELLS as readonly string[]).includes(topic))
    throw new UsageError(`completion: no script for shell '${topic}' (expected ${SHELLS.join(', ')})`);
  return { completion: topic as Shell };
}

/** How to reach etcd, from flags, environment and defaults. */
export interface Connection {
  /** As given (for messages and the child's environment). */
  endpoints: string;
  hosts: string[];
  prefix: string;
  /** The etcd user, if any (for messages). */
  user: string | undefined;
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
  // Each TLS file from its flag, else from the environment; messages name where it came from.
  const file = (flag: 'cacert' | 'cert' | 'key'): { from: string; path: string } | undefined => {
    const fromFlag = values[flag];
    if (fromFlag !== undefined) return { from: `--${flag}`, path: fromFlag };
    const name = `LOCKED_${flag.toUpperCase()}`;
    const fromEnv = env[name];
    return fromEnv !== undefined && fromEnv !== '' ? { from: name, path: fromEnv } : undefined;
  };
  const cacert = file('cacert');
  const cert = file('cert');
  const key = file('key');
  const tls = cacert !== undefined || cert !== undefined || key !== undefined;
  if ((cert === undefined) !== (key === undefined)) {
    const only = (cert ?? key)!.from;
    throw new UsageError(`a client certificate and its key go together (--cert/LOCKED_CERT and --key/LOCKED_KEY), got only ${only}`);
  }
  if (tls) {
    etcd.credentials = {
      rootCertificate: cacert !== undefined ? readFlagFile(cacert.from, cacert.path) : undefined,
      privateKey: key !== undefined ? readFlagFile(key.from, key.path) : undefined,
      certChain: cert !== undefined ? readFlagFile(cert.from, cert.path) : undefined,
    } as NonNullable<IOptions['credentials']>;
  }
  const user = credentials(values, env);
  if (user) etcd.auth = user;
  // etcd3 chooses TLS by scheme: bare host:port means https once TLS files are given.
  const hosts = list.map((h) => (/^https?:\/\//.test(h) ? h : `${tls ? 'https' : 'http'}://${h}`));
  return { endpoints: list.join(','), hosts, prefix, user: user?.username, etcd };
}

/**
 * The etcd user and password: --user NAME or LOCKED_USER names the user; the password
 * comes from --password-file (its first line), else LOCKED_PASSWORD. `--user NAME:PASSWORD`
 * (etcdctl's form) works too, with a warning: every user of the host sees it in ps.
 * LOCKED_PASSWORD is deleted from `env` once read, so the program of `run` and `once`
 * (and anything else started from here) does not inherit it.
 */
function credentials(values: Values, env: NodeJS.ProcessEnv): { username: string; password: string } | undefined {
  const envPassword = env['LOCKED_PASSWORD'];
  delete env['LOCKED_PASSWORD'];
  const envPasswordFile = env['LOCKED_PASSWORD_FILE'];
  const passwordFile = values['password-file'] ?? (envPasswordFile === '' ? undefined : envPasswordFile);
  const passwordFrom = values['password-file'] !== undefined ? '--password-file' : 'LOCKED_PASSWORD_FILE';
  let name = values.user ?? env['LOCKED_USER'];
  if (name === '') name = undefined;
  if (name === undefined) {
    if (passwordFile !== undefined) throw new UsageError(`${passwordFrom} needs a user: --user NAME or LOCKED_USER`);
    if (envPassword !== undefined && envPassword !== '')
      throw new UsageError('LOCKED_PASSWORD is set but no user is given: --user NAME or LOCKED_USER');
    return undefined;
  }
  // Only the flag takes etcdctl's NAME:PASSWORD; LOCKED_USER is a name as it stands.
  const colon = values.user !== undefined ? name.indexOf(':') : -1;
  if (colon === 0) throw new UsageError(`--user must be NAME or NAME:PASSWORD, got an empty NAME in '${name.slice(0, 1)}…'`);
  if (colon > 0) {
    const username = name.slice(0, colon);
    if (passwordFile !== undefined) throw new UsageError(`--user ${username}:… and ${passwordFrom} both give a password: give it once`);
    say(`warning: --user ${username}:PASSWORD shows the password in ps to every user of this host; use LOCKED_PASSWORD or --password-file`);
    return { username, password: name.slice(colon + 1) };
  }
  if (passwordFile !== undefined) {
    const text = readFlagFile(passwordFrom, passwordFile).toString('utf8');
    // The first line: `echo secret > file` leaves a newline that is no part of the password.
    const password = text.replace(/\r?\n[\s\S]*$/, '');
    if (password === '') throw new UsageError(`${passwordFrom} '${passwordFile}' is empty (the password is its first line)`);
    return { username: name, password };
  }
  if (envPassword !== undefined) return { username: name, password: envPassword };
  throw new UsageError(
    `no password for etcd user '${name}': set LOCKED_PASSWORD, give --password-file FILE, or --user ${name}:PASSWORD (shown in ps)`,
  );
}

function readFlagFile(from: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${from} file '${path}': ${describe(err)}`);
  }
}

/**
 * etcd refused who we are (wrong user or password, or no user where etcd requires one)
 * or what we may touch (the user's role does not cover the prefix). Retrying cannot
 * help: `run` and `once` stop (125), the other commands report it (3). Otherwise undefined.
 */
export function authFailure(err: unknown, conn: Connection): EtcdError | undefined {
  let kind: 'authentication' | 'permission' | 'no user' | undefined;
  let detail = '';
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 10; e = e instanceof Error ? e.cause : undefined, depth++) {
    const text = describe(e);
    // Watch errors arrive as plain Errors: "Watcher canceled: rpc error: code = PermissionDenied desc = …".
    if (e instanceof EtcdAuthenticationFailedError || /etcdserver: authentication failed/i.test(text)) kind = 'authentication';
    else if (e instanceof EtcdPermissionDeniedError || /etcdserver: permission denied|code = PermissionDenied/i.test(text))
      kind = 'permission';
    else if (e instanceof GRPCUnauthenticatedError || /etcdserver: user name is empty|code = Unauthenticated/i.test(text)) kind = 'no user';
    else continue;
    detail = clean(text.replace(/^.*?etcdserver: /s, ''));
    break;
  }
  if (kind === undefined) return undefined;
  const at = `etcd at ${conn.endpoints}`;
  if (kind === 'no user' || conn.user === undefined) {
    return new EtcdError(`${at} requires a user: ${detail} (give --user NAME or LOCKED_USER, and LOCKED_PASSWORD or --password-file)`);
  }
  if (kind === 'permission') return new EtcdError(`${at} refused user '${conn.user}' under prefix '${conn.prefix}': ${detail}`);
  return new EtcdError(`${at} refused user '${conn.user}': ${detail}`);
}

/** Turns an etcd failure into a sentence that names the endpoints; other errors pass through. */
export function etcdFailure(err: unknown, conn: Connection): EtcdError {
  const auth = authFailure(err, conn);
  if (auth) return auth;
  let cause: unknown = err;
  while (cause instanceof Error && cause.cause !== undefined && !(cause instanceof GRPCUnavailableError)) cause = cause.cause;
  const unreachable =
    cause instanceof GRPCUnavailableError ||
    cause instanceof GRPCDeadlineExceededError ||
    /UNAVAILABLE|deadline|timed out|ECONNREFUSED/i.test(describe(cause));
  const why = clean(describe(cause));
  return new EtcdError(
    unreachable ? `cannot reach etcd at ${conn.endpoints}: ${why}` : `etcd at ${conn.endpoints} failed the request: ${why}`,
  );
}

/** grpc-js appends an empty "Resolution note:" to connection errors. */
export const clean = (message: string): string => message.replace(/\s*Resolution note:\s*$/, '').trim();

export const say = (msg: string): void => void process.stderr.write(`locked: ${msg}\n`);
