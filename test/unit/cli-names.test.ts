// The CLI checks NAME itself, before anything connects (the library's check is not part of
// its public API): the same names must pass and fail, with the library's messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_NAME_LENGTH, validateName } from '../../src/etcd/keys.js';
import { nameProblem } from '../../src/cli/flags.js';

const library = (name: string): string | undefined => {
  try {
    validateName(name);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

test("nameProblem refuses exactly the names the library refuses, in the library's words", () => {
  const names = [
    'job',
    'nightly-report',
    'a.b_c:d',
    'ünïcode',
    '',
    '/',
    'a/b',
    'a/',
    ' ',
    'x'.repeat(MAX_NAME_LENGTH),
    'x'.repeat(MAX_NAME_LENGTH + 1),
    'y'.repeat(1000),
  ];
  for (const name of names) assert.equal(nameProblem(name), library(name), `'${name.slice(0, 20)}'`);
  assert.equal(nameProblem('job'), undefined);
  assert.notEqual(nameProblem('a/b'), undefined);
});
