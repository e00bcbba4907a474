// The command line of `locked`: the command word wherever the flags put it, the flags of
// COMMANDS (strictly), positionals before and after `--`, then the LOCKED_* variables
// for the flags the command line left out.
import { parseArgs } from 'node:util';
import { COMMANDS, COMMAND_LIST, META_COMMANDS, SHELLS, type CommandName, type Shell, type Values } from './commands.js';
import { applyEnvironment } from './env.js';
import { UsageError, describe } from './messages.js';

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
