// The commands of `locked` and the flags each takes: the one table that the parser, the
// help texts, the LOCKED_* variables and the completion scripts are all made from.

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
      weight: { type: 'string' },
      zone: { type: 'string' },
      prefer: { type: 'string' },
      'prefer-hold-down': { type: 'string' },
      'respread-delay': { type: 'string' },
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

/** For messages: every command word. */
export const COMMAND_LIST = 'run, once, status, leader, failover, drain, undrain, help or completion';

export type CommandName = keyof typeof COMMANDS;

type AnyOption = { [C in CommandName]: keyof (typeof COMMANDS)[C]['options'] }[CommandName];
type BooleanOption = 'help' | 'json' | 'watch' | 'try' | 'version' | 'hosts' | 'force' | 'members';

/** The flags of a command line: strings, or booleans for the flags without a value. */
export type Values = { [K in AnyOption]?: K extends BooleanOption ? boolean : string };
