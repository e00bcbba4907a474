// `locked completion bash|zsh|fish`: the bash script loaded into a real bash and asked to
// complete, as bash does on TAB; the zsh and fish scripts checked to carry every command
// and flag of the table the parser uses (no zsh or fish needed on the test machine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../../src/cli/commands.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function script(shell: string): string {
  const r = spawnSync(process.execPath, [MAIN, 'completion', shell], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

let bashScript: string | undefined;

/** What bash offers for the command line `words`, the last word being completed. */
function complete(words: string[]): string[] {
  bashScript ??= script('bash');
  const bashWords = words.map((w) => `'${w.replaceAll("'", "'\\''")}'`).join(' ');
  const program = `source <(printf '%s' "$SCRIPT") || exit 9
complete -p locked >/dev/null || exit 8
COMP_WORDS=(${bashWords}); COMP_CWORD=${words.length - 1}; COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}
_locked locked "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', program], { encoding: 'utf8', env: { ...process.env, SCRIPT: bashScript } });
  assert.equal(r.status, 0, `bash exited ${r.status}: ${r.stderr}`);
  assert.equal(r.stderr, '', 'bash said nothing on stderr');
  return r.stdout.split('\n').filter(Boolean).sort();
}

test("bash: the script loads and completes commands, a command's flags, flag values and help topics", () => {
  assert.deepEqual(complete(['locked', 'dr']), ['drain']);
  assert.deepEqual(complete(['locked', 'un']), ['undrain']);
  assert.deepEqual(complete(['locked', 'c']), ['completion']);
  assert.deepEqual(complete(['locked', 'drain', 'web-1', '--fo']), ['--force']);
  assert.deepEqual(complete(['locked', 'run', 'job', '--check-']), ['--check-interval']);
  assert.deepEqual(complete(['locked', 'once', 'job', '--rec']), ['--record-ttl']);
  // Flags belong to their command: leader has no --force.
  assert.deepEqual(complete(['locked', 'leader', 'job', '--fo']), []);
  // A flag's value is not the command word: status's flags after --endpoints X.
  assert.deepEqual(complete(['locked', '--endpoints', 'h:2379', 'status', '--ho']), ['--hosts']);
  assert.deepEqual(complete(['locked', 'run', 'job', '--sighup', '']), ['forward', 'stop']);
  assert.deepEqual(complete(['locked', 'help', 'fa']), ['failover']);
  assert.deepEqual(complete(['locked', 'completion', '']), ['bash', 'fish', 'zsh']);
  // After '--' the program: a command name, not locked's flags.
  assert.ok(complete(['locked', 'run', 'job', '--', 'ech']).includes('echo'));
  assert.deepEqual(complete(['locked', 'run', 'job', '--', 'echo', '--fo']), []);
});

test('bash: every flag of every command in the table completes after that command', () => {
  for (const [command, { options }] of Object.entries(COMMANDS)) {
    const offered = complete(['locked', command, '--']);
    // '--' as the word being completed is a flag's beginning, not the end of options.
    assert.deepEqual(
      offered,
      Object.keys(options)
        .map((f) => `--${f}`)
        .sort(),
      command,
    );
  }
});

test('zsh and fish: the scripts name every command and every flag of each', () => {
  const zsh = script('zsh');
  const fish = script('fish');
  assert.match(zsh, /^#compdef locked$/m);
  for (const [command, { options }] of Object.entries(COMMANDS)) {
    const zshFlags = new RegExp(`^\\s+${command}\\) flags=\\((.*)\\) ;;$`, 'm').exec(zsh)?.[1]?.split(' ');
    assert.deepEqual(
      zshFlags?.sort(),
      Object.keys(options)
        .map((f) => `--${f}`)
        .sort(),
      `zsh ${command}`,
    );
    assert.match(fish, new RegExp(`-n __fish_use_subcommand -a ${command} -d `));
    for (const flag of Object.keys(options))
      assert.match(fish, new RegExp(`'__fish_seen_subcommand_from ${command}'.* -l ${flag}\\b`), `fish ${command} --${flag}`);
  }
  const bad = spawnSync(process.execPath, [MAIN, 'completion', 'tcsh'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no script for shell 'tcsh' \(expected bash, zsh, fish\)/);
});
