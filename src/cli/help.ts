// `locked help [COMMAND|env]`: the usage texts, and the table of LOCKED_* variables,
// generated from the flag table the parser uses so it cannot miss a flag.
import { COMMANDS, SHELLS, USAGE, type CommandName } from './common.js';
import { environmentFlags, PARENT_MARK } from './env.js';

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
