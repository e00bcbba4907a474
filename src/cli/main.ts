#!/usr/bin/env node
// The `locked` command: a thin client of the public API (see USAGE in common.ts).
import { EXIT, EtcdError, USAGE, UsageError, connection, parseCommandLine, say, type Parsed } from './common.js';
import { planRun, runCommand } from './run.js';
import { failoverCommand, leaderCommand, statusCommand, viewLocker } from './view.js';

async function main(argv: string[]): Promise<number> {
  let parsed: Parsed | { help: true };
  try {
    parsed = parseCommandLine(argv);
    if ('help' in parsed) {
      process.stdout.write(`${USAGE.main}\n`);
      return EXIT.ok;
    }
    if (parsed.values.help) {
      process.stdout.write(`${USAGE[parsed.command]}\n`);
      return EXIT.ok;
    }
    const conn = connection(parsed.values);
    if (parsed.command === 'run') return await runCommand(planRun(parsed), conn);
    const locker = viewLocker(conn, parsed.values.id);
    try {
      switch (parsed.command) {
        case 'status':
          return await statusCommand(locker, conn, parsed.positionals, parsed.values.json === true, parsed.values.watch === true);
        case 'leader':
          return await leaderCommand(locker, conn, parsed.positionals);
        case 'failover':
          return await failoverCommand(locker, conn, parsed.positionals);
      }
    } finally {
      // Bounded: an unreachable etcd must not turn an answered question into a hang.
      await Promise.race([locker.close(), new Promise((r) => setTimeout(r, 1000).unref())]);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      say(err.message);
      process.stderr.write(`\n${USAGE[err.command ?? 'main']}\n`);
      return EXIT.usage;
    }
    if (err instanceof EtcdError) {
      say(err.message);
      return EXIT.etcd;
    }
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.etcd;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(EXIT.etcd);
  },
);
