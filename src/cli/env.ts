// Every flag from the environment, etcdctl's way: --check-interval is LOCKED_CHECK_INTERVAL.
// The flag wins over the variable; a variable for a flag the command does not have is
// ignored (LOCKED_TRY means nothing to `locked status`), as etcdctl ignores its own.
import { COMMANDS, type CommandName } from './commands.js';
import { UsageError } from './messages.js';

/** The variable that sets `--flag`: upper case, dashes → underscores. */
export const envName = (flag: string): string => `LOCKED_${flag.toUpperCase().replaceAll('-', '_')}`;

/**
 * Not read from the environment. help and version are actions, not settings:
 * LOCKED_HELP=1 would turn every command into its help. force overrides a safety check
 * for one command: left in an environment (a profile, a CI job, a manifest), LOCKED_FORCE
 * would make every `failover` delete the leader's key instead of asking it to hand over,
 * and every drain of a mistyped id succeed silently — the very mistake the check is for.
 */
const ACTIONS: ReadonlySet<string> = new Set(['help', 'version', 'force']);

/**
 * Read by connection() itself, with rules of their own: an empty LOCKED_CACERT counts as
 * unset, LOCKED_USER is a name as it stands (only the flag takes NAME:PASSWORD), and its
 * messages name the variable a bad file came from.
 */
export const CONNECTION_FLAGS: ReadonlySet<string> = new Set(['endpoints', 'prefix', 'cacert', 'cert', 'key', 'user', 'password-file']);

/**
 * The variable that `run` and `once` export to their program as LOCKED_ID, and which would
 * make every `locked run` that program starts a second candidate with the parent's node
 * id. A program of `run`/`once` is recognised by LOCKED_TOKEN, which they always export
 * and a user has no reason to set: there, LOCKED_ID is the parent's and is not read as
 * --id (a nested `locked run` gets its own <hostname>-<pid>, or --id). LOCKED_ENDPOINTS
 * and LOCKED_PREFIX are inherited deliberately: a nested `locked status` or `locked once`
 * talks to the same cluster under the same prefix.
 */
export const PARENT_MARK = 'LOCKED_TOKEN';

export interface FlagFromEnv {
  flag: string;
  variable: string;
  type: 'string' | 'boolean';
  /** The commands that have the flag, in table order. */
  commands: CommandName[];
}

/** Every flag that a variable can set, in the order the commands list them. */
export function environmentFlags(): FlagFromEnv[] {
  const out = new Map<string, FlagFromEnv>();
  for (const [command, { options }] of Object.entries(COMMANDS) as [CommandName, (typeof COMMANDS)[CommandName]][]) {
    for (const [flag, spec] of Object.entries(options) as [string, { type: 'string' | 'boolean' }][]) {
      if (ACTIONS.has(flag)) continue;
      const known = out.get(flag);
      if (known) known.commands.push(command);
      else out.set(flag, { flag, variable: envName(flag), type: spec.type, commands: [command] });
    }
  }
  return [...out.values()];
}

/** Parsed as booleans: what shells and manifests write. */
const BOOLEAN: Record<string, boolean> = { true: true, '1': true, false: false, '0': false };

/**
 * Fills `values` with what the environment sets for the flags of `command` that the
 * command line left out; returns, for each flag so set, the variable's name (messages
 * about a bad value name it instead of the flag). Empty variables count as unset.
 */
export function applyEnvironment(
  command: CommandName,
  values: Record<string, string | boolean | undefined>,
  env: NodeJS.ProcessEnv,
): Record<string, string> {
  const from: Record<string, string> = {};
  const options = COMMANDS[command].options as Record<string, { type: 'string' | 'boolean' }>;
  for (const [flag, spec] of Object.entries(options)) {
    if (ACTIONS.has(flag) || CONNECTION_FLAGS.has(flag) || values[flag] !== undefined) continue;
    const variable = envName(flag);
    if (flag === 'id' && env[PARENT_MARK] !== undefined) continue;
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    if (spec.type === 'boolean') {
      const b = BOOLEAN[raw.trim().toLowerCase()];
      if (b === undefined) throw new UsageError(`${variable} must be true, false, 1 or 0 (it sets --${flag}), got '${raw}'`, command);
      values[flag] = b;
    } else {
      values[flag] = raw;
    }
    from[flag] = variable;
  }
  return from;
}
