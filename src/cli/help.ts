// `locked help [COMMAND|env]` and `locked COMMAND --help`: the usage texts, and the
// table of LOCKED_* variables generated from the flag table the parser uses so it cannot
// miss a flag (test/unit/cli-docs.test.ts checks every flag of COMMANDS is in its usage).
import { COMMANDS, SHELLS, type CommandName } from './commands.js';
import { environmentFlags, PARENT_MARK } from './env.js';

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
  --weight N             this host's share of the leaderships relative to the others
                         (default 1; 0 = standby only: leads only while no other can)
  --zone Z               this host's failure domain: each name's first standby is
                         kept in another zone than its leader where one queues
  --prefer IDS           hosts (their --id) that should lead NAME, best first,
                         separated by commas: a preferred host that is up leads it
  --prefer-hold-down D   a preferred host must be up this long before NAME moves
                         back to it (default 15s): a flapping host gets nothing
  --respread-delay D     after a host disappears, balancing holds still this long
                         (default 0): a restart within it moves nothing twice
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
                         how far it is from it, draining or joining or not
  --members              every etcd member instead, as this process sees it (each
                         asked for 1 s at most, or --timeout): raft role, leader,
                         term, revision, applied index, round trip, whether it
                         serves linearizable reads, last error; then how many
                         more members may fail before quorum is lost. Exit 1
                         while any member is not healthy (no leader, no
                         linearizable read): a rolling restart waits for 0

  --json                 JSON: [{ name, leader, token, candidates }]; with --hosts:
                         [{ id, lease, leads, queued, draining, joining, share, offBy }]; with
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

const COMPLETION_HELP = `Usage: locked completion ${SHELLS.join('|')}

Prints a completion script for the shell, generated from the commands and flags of
this version of locked: commands, each command's flags, --sighup's values and
help's topics complete; file names complete where a flag takes a file.

  bash   in ~/.bashrc:   source <(locked completion bash)
  zsh    in ~/.zshrc:    source <(locked completion zsh)   (after compinit)
  fish   once:           locked completion fish > ~/.config/fish/completions/locked.fish`;

const HELP_HELP = `Usage: locked help [COMMAND|env]

Prints the usage of locked, of one command (as 'locked COMMAND --help' does), or with
'env' the LOCKED_* variables that set flags.`;

/** The table of variables: every flag but --help, --version and --force (env.ts says why), and the commands that take it. */
export function environmentHelp(): string {
  const every = Object.keys(COMMANDS).length;
  const rows = environmentFlags().map((f) => [
    f.variable,
    `--${f.flag}`,
    f.commands.length === every ? 'every command' : f.commands.join(', '),
  ]);
  const head = ['VARIABLE', 'FLAG', 'COMMANDS'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `Every flag but --help, --version and --force can be set from the environment as
LOCKED_<FLAG>: upper case, dashes as underscores. A flag on the command line wins
over its variable; an empty variable counts as unset; a flag without a value takes
true, false, 1 or 0. A variable for a flag the command does not have is ignored.

${[head, ...rows].map(line).join('\n')}

Also read: LOCKED_PASSWORD, the password of --user (removed from the environment once
read, so the program of run and once never sees it).

run and once export LOCKED_NAME, LOCKED_ID, LOCKED_TOKEN, LOCKED_ELECTION_KEY (run),
LOCKED_ATTEMPT (once), LOCKED_ENDPOINTS and LOCKED_PREFIX to their program. A locked
command that program starts inherits LOCKED_ENDPOINTS and LOCKED_PREFIX on purpose
(same cluster, same prefix), but not the id: where ${PARENT_MARK} is set, LOCKED_ID is
the parent's and is not read as --id, so a nested 'locked run' is a candidate of its
own (<hostname>-<pid>, or --id).`;
}

/** The text `locked help TOPIC` prints; no topic: the main usage. */
export function helpText(topic?: string): string {
  if (topic === undefined) return USAGE.main;
  if (topic === 'env') return environmentHelp();
  if (topic === 'completion') return COMPLETION_HELP;
  if (topic === 'help') return HELP_HELP;
  return USAGE[topic as CommandName];
}
