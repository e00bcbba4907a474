// The stop reasons agree everywhere they are listed: the StopReason type and its TSDoc
// (src/core/leadership-types.ts), STOP_REASONS (the code's list, checked against the type by the
// compiler), the `reason` label values renderPrometheus writes, and docs/monitoring.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderPrometheus, STOP_REASONS, type MetricsSnapshot, type NameMetrics } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

test('STOP_REASONS has each reason once', () => {
  assert.ok(STOP_REASONS.length >= 7, `STOP_REASONS: ${STOP_REASONS.join(', ')}`);
  assert.equal(new Set(STOP_REASONS).size, STOP_REASONS.length);
  assert.ok(Object.isFrozen(STOP_REASONS));
});

test('the StopReason type lists exactly STOP_REASONS, each member with its TSDoc', () => {
  const src = readFileSync(join(ROOT, 'src/core/leadership-types.ts'), 'utf8');
  // Up to the first `'…';` (the comments may hold semicolons).
  const m = /\/\*\*[^]*?\*\/\s*export type StopReason =([^]*?'[a-z]+');/.exec(src);
  assert.ok(m, 'src/core/leadership-types.ts declares `export type StopReason = …;` with a TSDoc comment');
  const body = m[1]!;
  const members = [...body.matchAll(/\|\s*'([a-z]+)'/g)].map((x) => x[1]!);
  assert.deepEqual(sorted(members), sorted(STOP_REASONS), 'the union members are STOP_REASONS');
  // Each member is preceded by its own /** … */ comment.
  const documented = [...body.matchAll(/\/\*\*((?:(?!\*\/)[^])+)\*\/\s*\|\s*'([a-z]+)'/g)].map((x) => x[2]!);
  assert.deepEqual(sorted(documented), sorted(STOP_REASONS), 'every member has a TSDoc comment of its own');
});

test('docs/monitoring.md lists exactly STOP_REASONS in its stop-reason table', () => {
  const doc = readFileSync(join(ROOT, 'docs/monitoring.md'), 'utf8');
  const section = /^## Stop reasons\n([^]*?)(?=^## )/m.exec(doc);
  assert.ok(section, 'docs/monitoring.md has a "## Stop reasons" section followed by another section');
  const rows = [...section[1]!.matchAll(/^\| `([a-z]+)` \|/gm)].map((x) => x[1]!);
  assert.equal(new Set(rows).size, rows.length, `no reason listed twice: ${rows.join(', ')}`);
  assert.deepEqual(sorted(rows), sorted(STOP_REASONS));
  // The metrics table names the label too.
  assert.match(doc, /^\| `locked_leaderships_stopped_total` \| counter \| `name`, `reason` \|/m);
});

test('renderPrometheus writes one stopped counter per reason, with and without per-name series', () => {
  const stops = Object.fromEntries(STOP_REASONS.map((r) => [r, 0])) as NameMetrics['leadershipsStopped'];
  const snap: MetricsSnapshot = {
    id: 'x',
    names: { job: { registered: true, leader: false, queuePosition: 1, leadershipsStarted: 0, leadershipsStopped: stops } },
    leaseLosses: 0,
    keepaliveRtt: { buckets: [1], counts: [0], sum: 0, count: 0 },
    ready: true,
    live: true,
    timing: { ttl: 10, renewDeadline: 20 / 3, keepaliveInterval: 10 / 3, keepaliveTimeout: 5 / 3 },
  };
  for (const perName of [true, false]) {
    const text = renderPrometheus(snap, {}, { perName });
    const reasons = [...text.matchAll(/^locked_leaderships_stopped_total\{[^}]*reason="([^"]*)"\} 0$/gm)].map((x) => x[1]!);
    assert.deepEqual(reasons, [...STOP_REASONS], `perName ${perName}`);
  }
});
