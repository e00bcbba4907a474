// The layers of src/, as rules a change cannot break without this test saying so:
//
//   core/      the election core: session, view, queues, release gate, the per-name machine
//   etcd/      the Store interface and its etcd3 implementation, members, watch, key layout
//   features/  built on the core: placement and the mover, run-once, cluster view, health
//              checks, metrics, diagnostics, signals
//   api/       the public face: locked(), Locker, the Singleton handle, options, errors
//   cli/       the `locked` command, a client of the public face
//
// Rules: etcd3 is imported only in etcd/; core/, features/ and api/ read time only through
// the Clock (core/clock.ts) — no Date.now, setTimeout, setInterval or `new Date` — so the
// simulation can drive them; imports point down the list (core never imports features, api
// or cli; features never api or cli; nothing but cli imports cli); no import circle — but
// for the known debts listed in KNOWN below.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to .build/test/unit/: the sources are three levels up.
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');
const LAYERS = ['core', 'etcd', 'features', 'api', 'cli'] as const;
type Layer = (typeof LAYERS)[number] | 'root';

const files = readdirSync(SRC, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts'))
  .map((e) => relative(SRC, join(e.parentPath, e.name)));

const layerOf = (file: string): Layer => {
  const top = file.split('/')[0]!;
  return (LAYERS as readonly string[]).includes(top) ? (top as Layer) : 'root';
};
const text = (file: string): string => readFileSync(join(SRC, file), 'utf8');
/** Code without comments, so a comment that names setTimeout does not count. */
const code = (file: string): string =>
  text(file)
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
const importsOf = (file: string): string[] =>
  [...code(file).matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) =>
    relative(SRC, resolve(SRC, dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
  );

/**
 * Known debts, each one a step of issue #23 still to take. A test fails when an entry is no
 * longer true as well as when a new one appears, so this list only ever shrinks, and stays true.
 */
const KNOWN = {
  etcd3: [] as string[],
  clock: [] as string[],
  upward: [] as string[],
  circles: [] as string[],
};

test('src/ holds only the layer folders and index.ts', () => {
  const top = new Set(files.map((f) => f.split('/')[0]!));
  assert.deepEqual([...top].sort(), [...LAYERS, 'index.ts'].sort());
});

test('etcd3 is imported only in etcd/', () => {
  const offenders = files.filter((f) => layerOf(f) !== 'etcd' && /from\s+['"]etcd3['"]/.test(code(f)));
  assert.deepEqual(offenders.sort(), [...KNOWN.etcd3].sort());
});

test('core/, features/ and api/ read time only through the Clock', () => {
  const offenders = files
    .filter((f) => ['core', 'features', 'api'].includes(layerOf(f)) && f !== 'core/clock.ts')
    .flatMap((f) =>
      [...code(f).matchAll(/(?<![.\w$'"])(Date\.now|setTimeout|setInterval)\b|\bnew Date\(\)/g)].map(
        (m) => `${f}: ${m[1] ?? 'new Date()'}`,
      ),
    );
  assert.deepEqual(offenders.sort(), [...KNOWN.clock].sort());
});

test('imports point down the layers', () => {
  const rank: Record<Layer, number> = { core: 0, etcd: 0, features: 1, api: 2, root: 3, cli: 4 };
  const offenders: string[] = [];
  for (const f of files) {
    const from = layerOf(f);
    for (const target of importsOf(f)) {
      const to = layerOf(target);
      // core and etcd are the same height: the core needs the Store interface and the key
      // layout; etcd needs the core's clock and queue types. Neither imports features or up.
      if (rank[to] > rank[from]) offenders.push(`${f} → ${target}`);
      if (to === 'cli' && from !== 'cli') offenders.push(`${f} → ${target}`);
    }
  }
  assert.deepEqual([...new Set(offenders)].sort(), [...KNOWN.upward].sort());
});

test('no import circle', () => {
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));
  const state = new Map<string, 'open' | 'done'>();
  const circles: string[] = [];
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      circles.push([...path.slice(path.indexOf(f)), f].join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(circles.sort(), [...KNOWN.circles].sort());
});
