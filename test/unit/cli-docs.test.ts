// docs/cli.md against the tool: every command, every flag that --help prints, every
// LOCKED_* variable and every exit status is in the page, each flag under its command,
// and every flag the parser knows is in its command's --help. Adding a flag without
// documenting it fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { COMMANDS, META_COMMANDS, SHELLS, type CommandName } from '../../src/cli/commands.js';
import { EXIT } from '../../src/cli/exit.js';
import { environmentFlags } from '../../src/cli/env.js';
import { USAGE, helpText } from '../../src/cli/help.js';

const DOC = readFileSync(fileURLToPath(new URL('../../../docs/cli.md', import.meta.url)), 'utf8');
const commands = Object.keys(COMMANDS) as CommandName[];

/** The flags a text names: --flag, not the `--` before a program. */
const flagsIn = (text: string): Set<string> => new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z-]*[a-z])/g)].map((m) => m[1]!));

/** The part of the page under `heading` (up to the next heading of the same or a higher level). */
function section(heading: string): string {
  const level = /^#+/.exec(heading)![0].length;
  const start = DOC.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/cli.md has a section '${heading}'`);
  const rest = DOC.slice(start + heading.length + 2);
  const next = new RegExp(`^#{1,${level}} `, 'm').exec(rest);
  return next ? rest.slice(0, next.index) : rest;
}

test("every flag the parser knows is in its command's --help", () => {
  for (const c of commands) {
    const printed = flagsIn(USAGE[c]);
    for (const flag of Object.keys(COMMANDS[c].options)) assert.ok(printed.has(flag), `locked ${c} --help names --${flag}`);
  }
});

test('every command has a section; every flag a help text prints is on the page', () => {
  for (const c of [...commands, ...META_COMMANDS]) section(`### \`locked ${c}\``);
  const texts = [USAGE.main, ...commands.map((c) => USAGE[c]), helpText('env'), helpText('completion'), helpText('help')];
  const onPage = flagsIn(DOC);
  for (const text of texts) for (const flag of flagsIn(text)) assert.ok(onPage.has(flag), `docs/cli.md names --${flag}`);
  for (const shell of SHELLS) assert.match(section('### `locked completion`'), new RegExp(`locked completion ${shell}`));
});

test("each command's own flags are in its section, the flags of every command in 'Flags every command takes'", () => {
  const everyCommand = Object.keys(COMMANDS.run.options).filter((f) => commands.every((c) => Object.hasOwn(COMMANDS[c].options, f)));
  const common = flagsIn(section('## Flags every command takes'));
  for (const flag of everyCommand) assert.ok(common.has(flag), `--${flag} is among the flags every command takes`);
  for (const c of commands) {
    const mine = flagsIn(section(`### \`locked ${c}\``));
    for (const flag of Object.keys(COMMANDS[c].options)) {
      if (!everyCommand.includes(flag)) assert.ok(mine.has(flag), `--${flag} is in the section of locked ${c}`);
    }
  }
});

test('the variable table has a row for every flag a variable can set, with its flag', () => {
  const table = section('## Flags from the environment');
  for (const v of environmentFlags()) {
    assert.match(table, new RegExp(`^\\| \`${v.variable}\` \\| \`--${v.flag}\` \\|`, 'm'), `a row for ${v.variable}`);
  }
  const rows = [...table.matchAll(/^\| `(LOCKED_[A-Z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(
    rows,
    environmentFlags().map((v) => v.variable),
    'no row for a variable that sets nothing, in the order of locked help env',
  );
});

test('every exit status is in the table', () => {
  const table = section('## Exit status');
  for (const [what, code] of Object.entries(EXIT))
    assert.match(table, new RegExp(`^\\| ${code} \\|`, 'm'), `exit status ${code} (${what})`);
});
