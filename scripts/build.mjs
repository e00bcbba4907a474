#!/usr/bin/env node
// Builds the published files: a clean dist/ from `tsc -p tsconfig.json` (ESM .js, .d.ts,
// source maps pointing at the shipped src/), plus a .d.cts twin of every .d.ts.
//
// Why the .d.cts twins: the package is ESM only; CommonJS consumers load it with Node's
// require(esm) (unflagged since 20.19 and 22.12). TypeScript under `module: node16`
// (and before 5.8 under `nodenext`) refuses to type a require() of an ESM-typed file,
// so the "require" condition points at CommonJS-typed declarations of the same shape:
// the namespace object that require(esm) returns (named exports plus `default`).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });

// './x.js' → './x.cjs' in relative specifiers, so each .d.cts imports its .d.cts siblings.
const relativeJs = /((?:from|import)\s*\(?\s*)(['"])(\.{1,2}\/[^'"]*?)\.js\2/g;
let count = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  const text = readFileSync(file, 'utf8')
    .replace(relativeJs, (_m, head, q, spec) => `${head}${q}${spec}.cjs${q}`)
    // The declaration map describes the .d.ts; the twin has no map of its own.
    .replace(/^\/\/# sourceMappingURL=.*$/m, '');
  writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), text);
  count++;
}
if (count === 0) throw new Error('build: tsc wrote no .d.ts files to dist/');
console.log(`build: dist/ written (${count} declaration files, each with a .d.cts twin)`);
