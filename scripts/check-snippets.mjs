#!/usr/bin/env node
// Type-checks every TypeScript block of the documentation (`npm run check:snippets`).
//
// Every ```ts or ```typescript block of README.md and docs/*.md is written to
// .build-snippets/<file>-<line>.ts as a module of its own (an `export {}` is appended), with
// `import … from 'locked-etcd'` resolving to src/index.ts, and the lot is type-checked with
// the project's TypeScript under the project's compiler options (strict). A failure is
// reported at the Markdown file and line it comes from: `docs/guide.md:42:7: error TS2339: …`.
//
// A block may use, without defining them, the few names of the reader's context declared in
// CONTEXT below (a locker made earlier, an Express-like `app`, prom-client's `client`, …): the
// docs would otherwise repeat `const locker = locked(…)` in every block. A block that defines
// one of them itself shadows it.
//
// A block that is deliberately not a whole program — a signature, a pseudo-code shape — is
// marked ```ts nocheck and skipped. Use it sparingly: a skipped block can drift from the API
// without anyone noticing. The count of skipped blocks is printed.
//
// noUnusedLocals / noUnusedParameters are off for the blocks: an example names parameters it
// does not use (`async (remove, leadership) => …`) so the reader sees what fn receives.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, '.build-snippets');

const CONTEXT = `import type { Locker } from 'locked-etcd';
declare global {
  /** A locker made earlier: \`const locker = locked(…)\`. */
  const locker: Locker;
  /** An Express-like HTTP app. */
  const app: {
    get(path: string, handler: (req: unknown, res: { set(name: string, value: string): void; send(body: string): void }) => unknown): void;
  };
  /** prom-client: \`import client from 'prom-client'\`. */
  const client: { register: { contentType: string; metrics(): Promise<string> } };
  /** An OpenTelemetry meter: \`metrics.getMeter('app')\`. */
  const meter: {
    createObservableGauge(name: string): {
      addCallback(cb: (result: { observe(value: number, attributes?: Record<string, string>) : void }) => void): void;
    };
  };
  /** A pino-like logger. */
  const log: { info(obj: unknown, msg?: string): void; warn(obj: unknown, msg?: string): void; error(obj: unknown, msg?: string): void };
}
export {};
`;

function markdownFiles() {
  const files = ['README.md'];
  const docs = join(root, 'docs');
  if (existsSync(docs)) {
    for (const f of readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(join('docs', f));
  }
  return files;
}

/** Every ```ts / ```typescript block of a Markdown text: { line (1-based, first code line), code, skip }. */
function blocks(text) {
  const found = [];
  const lines = text.split('\n');
  let open = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (open === null) {
      const m = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(line);
      if (!m) continue;
      open = { fence: m[2], indent: m[1].length, lang: m[3].toLowerCase(), info: m[4], line: i + 2, body: [] };
    } else if (line.trim().startsWith(open.fence) && line.trim().replace(/[`~]/g, '') === '') {
      if (open.lang === 'ts' || open.lang === 'typescript') {
        found.push({ line: open.line, code: open.body.join('\n'), skip: /\bnocheck\b/.test(open.info) });
      }
      open = null;
    } else {
      open.body.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
    }
  }
  return found;
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'context.d.ts'), CONTEXT);

const origin = new Map(); // snippet file name → { md, line }
let checked = 0;
let skipped = 0;
for (const md of markdownFiles()) {
  for (const b of blocks(readFileSync(join(root, md), 'utf8'))) {
    if (b.skip) {
      skipped++;
      continue;
    }
    const name = `${md.replace(/[/.]/g, '_')}-${b.line}.ts`;
    writeFileSync(join(out, name), `${b.code}\nexport {};\n`);
    origin.set(name, { md, line: b.line });
    checked++;
  }
}

const project = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'));
writeFileSync(
  join(out, 'tsconfig.json'),
  JSON.stringify(
    {
      compilerOptions: {
        ...project.compilerOptions,
        noEmit: true,
        declaration: false,
        declarationMap: false,
        sourceMap: false,
        rootDir: undefined,
        outDir: undefined,
        noUnusedLocals: false,
        noUnusedParameters: false,
        baseUrl: undefined,
        paths: { 'locked-etcd': [join(root, 'src', 'index.ts')] },
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      include: ['*.ts'],
    },
    null,
    2,
  ),
);

const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
const run = spawnSync(process.execPath, [tsc, '-p', join(out, 'tsconfig.json'), '--pretty', 'false'], {
  cwd: out,
  encoding: 'utf8',
});

let failures = 0;
for (const line of `${run.stdout}${run.stderr}`.split('\n')) {
  if (!line.trim()) continue;
  const m = /^(.*?)\((\d+),(\d+)\): (.*)$/.exec(line);
  const file = m && relative(out, resolve(out, m[1]));
  if (m && origin.has(file)) {
    const o = origin.get(file);
    console.log(`${o.md}:${o.line + Number(m[2]) - 1}:${m[3]}: ${m[4]}`);
    failures++;
  } else {
    console.log(line);
    if (/error TS/.test(line)) failures++;
  }
}
if (run.status !== 0 && failures === 0) failures = 1;
console.log(
  `check-snippets: ${checked} TypeScript block(s) checked, ${skipped} marked nocheck, ` + (failures ? `${failures} error(s)` : 'no errors'),
);
process.exit(failures ? 1 : 0);
