// Every flag from the environment (LOCKED_<FLAG>), the flag winning; LOCKED_ID not read
// inside a program of `locked run`/`once`, whose LOCKED_ID is the parent's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands.js';
import { connection } from '../../src/cli/connection.js';
import { UsageError } from '../../src/cli/messages.js';
import { flagLabel, parseCommandLine, type Parsed } from '../../src/cli/parse.js';
import { envName, environmentFlags } from '../../src/cli/env.js';

const parse = (argv: string[], env: NodeJS.ProcessEnv): Parsed => {
  const p = parseCommandLine(argv, env);
  assert.ok('command' in p, `parsed a command: ${JSON.stringify(p)}`);
  return p;
};

test('the variable of a flag: upper case, dashes as underscores; every flag but --help, --version and --force has one', () => {
  assert.equal(envName('check-interval'), 'LOCKED_CHECK_INTERVAL');
  assert.equal(envName('ttl'), 'LOCKED_TTL');
  const all = new Set(Object.values(COMMANDS).flatMap((c) => Object.keys(c.options)));
  const vars = environmentFlags();
  assert.deepEqual(new Set(vars.map((v) => v.flag)), new Set([...all].filter((f) => f !== 'help' && f !== 'version' && f !== 'force')));
  for (const v of vars) assert.equal(v.variable, envName(v.flag));
  assert.deepEqual(vars.find((v) => v.flag === 'try')?.commands, ['run']);
});

test('LOCKED_FORCE is not read: a forced failover or drain of an unknown id takes --force on the command line', () => {
  assert.equal(parse(['failover', 'job'], { LOCKED_FORCE: '1' }).values.force, undefined);
  assert.equal(parse(['drain', 'h9'], { LOCKED_FORCE: 'true' }).values.force, undefined);
  assert.equal(parse(['drain', 'h9', '--force'], {}).values.force, true);
});

test('a variable sets the flag the command line left out; the flag wins; an empty variable is unset', () => {
  const env = { LOCKED_TTL: '1m', LOCKED_GRACE: '3s', LOCKED_WAIT: '', LOCKED_CHECK_INTERVAL: '2s', LOCKED_ID: 'from-env' };
  const p = parse(['run', 'job', '--grace', '7s', '--', 'true'], env);
  assert.equal(p.values.ttl, '1m');
  assert.equal(p.values.grace, '7s', 'the flag wins');
  assert.equal(p.values.wait, undefined, 'empty is unset');
  assert.equal(p.values['check-interval'], '2s');
  assert.equal(p.values.id, 'from-env');
  assert.equal(flagLabel(p, 'ttl'), 'LOCKED_TTL');
  assert.equal(flagLabel(p, 'grace'), '--grace');
  assert.equal(parse(['run', 'job', '--id', 'flag', '--', 'true'], env).values.id, 'flag');
});

test('a flag without a value takes true, false, 1 or 0 (any case); anything else is a usage error naming the variable and the value', () => {
  for (const [raw, want] of [
    ['1', true],
    ['true', true],
    ['TRUE', true],
    ['0', false],
    ['false', false],
    ['False', false],
  ] as const) {
    assert.equal(parse(['leader', 'job'], { LOCKED_JSON: raw }).values.json, want, raw);
  }
  for (const raw of ['yes', 'on', '2', 'y']) {
    assert.throws(
      () => parseCommandLine(['leader', 'job'], { LOCKED_JSON: raw }),
      (e: unknown) =>
        e instanceof UsageError &&
        e.command === 'leader' &&
        e.message === `LOCKED_JSON must be true, false, 1 or 0 (it sets --json), got '${raw}'`,
    );
  }
  // The flag on the command line wins over a variable saying otherwise.
  assert.equal(parse(['leader', 'job', '--json'], { LOCKED_JSON: '0' }).values.json, true);
});

test('a variable for a flag the command does not have is ignored; LOCKED_HELP and LOCKED_VERSION are not read', () => {
  const p = parse(['status'], { LOCKED_TRY: '1', LOCKED_TO: 'x', LOCKED_HELP: '1', LOCKED_VERSION: '1' });
  assert.deepEqual({ ...p.values }, {});
  assert.deepEqual(p.from, {});
});

test("inside a program of run or once (LOCKED_TOKEN set) LOCKED_ID is the parent's and is not read; the rest is", () => {
  const p = parse(['run', 'inner', '--', 'true'], { LOCKED_TOKEN: '42', LOCKED_ID: 'parent', LOCKED_TTL: '5s' });
  assert.equal(p.values.id, undefined);
  assert.equal(p.values.ttl, '5s');
  assert.equal(parse(['run', 'inner', '--id', 'own', '--', 'true'], { LOCKED_TOKEN: '42', LOCKED_ID: 'parent' }).values.id, 'own');
});

test('connection settings: LOCKED_PASSWORD_FILE gives the password of LOCKED_USER, messages name the variable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'locked-env-'));
  try {
    const file = join(dir, 'pw');
    writeFileSync(file, 'secret\n');
    const env: NodeJS.ProcessEnv = { LOCKED_USER: 'app', LOCKED_PASSWORD_FILE: file, LOCKED_ENDPOINTS: '127.0.0.1:1', LOCKED_PREFIX: 'p/' };
    const c = connection(parse(['status'], env).values, env);
    assert.deepEqual(c.etcd.auth, { username: 'app', password: 'secret' });
    assert.equal(c.prefix, 'p/');
    assert.deepEqual(c.hosts, ['http://127.0.0.1:1']);
    const flagWins = { ...env };
    writeFileSync(join(dir, 'other'), 'other\n');
    assert.deepEqual(connection(parse(['status', '--password-file', join(dir, 'other')], flagWins).values, flagWins).etcd.auth, {
      username: 'app',
      password: 'other',
    });
    const missing = { LOCKED_USER: 'app', LOCKED_PASSWORD_FILE: join(dir, 'nope') };
    assert.throws(() => connection(parse(['status'], missing).values, missing), /cannot read LOCKED_PASSWORD_FILE file '.*nope'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run: --prefer, --prefer-hold-down and --respread-delay (or their variables) reach the plan; bad values are usage errors naming the flag', async () => {
  const { planRun } = await import('../../src/cli/run.js');
  const env = { LOCKED_PREFER: 'db-1, db-2', LOCKED_RESPREAD_DELAY: '30s' };
  const plan = planRun(parse(['run', 'job', '--prefer-hold-down', '1m', '--', 'true'], env));
  assert.deepEqual(plan.prefer, ['db-1', 'db-2']);
  assert.equal(plan.preferHoldDownMs, 60_000);
  assert.equal(plan.respreadDelayMs, 30_000);
  assert.throws(
    () => planRun(parse(['run', 'job', '--prefer', 'a,,b', '--', 'true'], {})),
    (e: unknown) => e instanceof UsageError && /--prefer must be host ids separated by commas/.test(String(e)),
  );
  assert.throws(
    () => planRun(parse(['run', 'job', '--prefer', 'a', '--try', '--', 'true'], {})),
    (e: unknown) => e instanceof UsageError && /--prefer and --try exclude each other/.test(String(e)),
  );
  assert.throws(
    () => planRun(parse(['run', 'job', '--', 'true'], { LOCKED_RESPREAD_DELAY: 'soon' })),
    (e: unknown) => e instanceof UsageError && /LOCKED_RESPREAD_DELAY/.test(String(e)),
  );
});
