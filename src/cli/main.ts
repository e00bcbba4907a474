#!/usr/bin/env node
// The `locked` command: a thin client of the public API (../index.js; see USAGE in help.ts).
import { DEFAULT_COMMAND_DEADLINE_MS, viewLocker } from './client.js';
import type { CommandName } from './commands.js';
import { completionScript } from './completion.js';
import { connection } from './connection.js';
import { EXIT } from './exit.js';
import { checkEndpoints, duration, packageVersion } from './flags.js';
import { drainCommand, failoverCommand } from './handover.js';
import { USAGE, helpText } from './help.js';
import { EtcdError, UsageError, say } from './messages.js';
import { onceCommand, planOnce } from './once.js';
import { flagLabel, parseCommandLine } from './parse.js';
import { planRun, runCommand } from './run.js';
import { leaderCommand, statusCommand } from './status.js';

// grpc-js passes an IP endpoint (10.0.0.1:2379) as the TLS server name, which Node
// reports as deprecated (DEP0123) on every TLS connection to an IP: noise the user can do
// nothing about. Every other warning is printed as usual.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
  const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
  if (code === 'DEP0123') return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

/** `run` and `once` exit with their program's status: their own failures get 125, which programs rarely use. */
const runsAProgram = (c: CommandName | undefined): boolean => c === 'run' || c === 'once';

async function main(argv: string[]): Promise<number> {
  let command: CommandName | undefined;
  try {
    const parsed = parseCommandLine(argv);
    if ('version' in parsed || ('values' in parsed && parsed.values.version)) {
      process.stdout.write(`${packageVersion()}\n`);
      return EXIT.ok;
    }
    if ('help' in parsed) {
      process.stdout.write(`${helpText(parsed.topic)}\n`);
      return EXIT.ok;
    }
    if ('completion' in parsed) {
      process.stdout.write(completionScript(parsed.completion));
      return EXIT.ok;
    }
    command = parsed.command;
    const { values } = parsed;
    if (values.help) {
      process.stdout.write(`${USAGE[command]}\n`);
      return EXIT.ok;
    }
    const endpoints = values.endpoints ?? process.env['LOCKED_ENDPOINTS'];
    if (endpoints !== undefined) checkEndpoints(endpoints, command);
    // Every flag is checked before anything connects: a bad value is a usage error, not a hang.
    // run and once wait for etcd as long as it takes unless --timeout says otherwise.
    const timeout = values.timeout === undefined ? undefined : duration(flagLabel(parsed, 'timeout'), values.timeout, 0, command, 1);
    if (command === 'run') {
      const plan = planRun(parsed);
      return await runCommand(plan, connection(values), timeout);
    }
    if (command === 'once') {
      const plan = planOnce(parsed);
      return await onceCommand(plan, connection(values), timeout);
    }
    const conn = connection(values);
    const locker = viewLocker(conn, values.id);
    // A drain waits for every leadership of the host to move, each after its work stopped.
    const ctx = {
      locker,
      conn,
      timeoutMs: timeout ?? (command === 'drain' ? 120_000 : DEFAULT_COMMAND_DEADLINE_MS),
      json: values.json === true,
    };
    try {
      switch (command) {
        case 'status':
          return await statusCommand(ctx, parsed.positionals, values.watch === true, values.hosts === true, values.members === true);
        case 'leader':
          return await leaderCommand(ctx, parsed.positionals);
        case 'failover':
          return await failoverCommand(ctx, parsed.positionals, {
            ...(values.to !== undefined ? { to: values.to } : {}),
            force: values.force === true,
          });
        case 'drain':
          return await drainCommand(ctx, parsed.positionals, true, values.force === true);
        case 'undrain':
          return await drainCommand(ctx, parsed.positionals, false, values.force === true);
      }
    } finally {
      // Bounded: an unreachable etcd must not turn an answered question into a hang.
      await Promise.race([locker.close(), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
  } catch (err) {
    const own = runsAProgram(command) ? EXIT.runFailure : undefined;
    if (err instanceof UsageError) {
      say(err.message);
      process.stderr.write(`\n${USAGE[err.command ?? command ?? 'main']}\n`);
      return own ?? EXIT.usage;
    }
    if (err instanceof EtcdError) {
      say(err.message);
      return own ?? EXIT.etcd;
    }
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    return own ?? EXIT.etcd;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(EXIT.etcd);
  },
);
