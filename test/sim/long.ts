// `npm run chaos -- --sim [--seconds N] [--seed S]`: the seeded simulation for a set
// time, in batches on every core, alternating the small and medium shapes; prints a table.
import { MEDIUM, SMALL, describeSummary, merge, runParallel } from './run.js';
import type { SimSummary } from './worker.js';

export async function longSimulation(argv: string[]): Promise<number> {
  let seconds = 60;
  let seed = Math.floor(Math.random() * 2 ** 30);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(seconds|seed)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new Error(`unknown argument '${argv[i]}' (with --sim: --seconds N, --seed N)`);
    const v = Number(m[2] ?? argv[++i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${m[1]} needs a number`);
    if (m[1] === 'seconds') seconds = v;
    else seed = v;
  }
  const t0 = performance.now();
  const small: SimSummary[] = [];
  const medium: SimSummary[] = [];
  let next = seed;
  while (performance.now() - t0 < seconds * 1000) {
    small.push(await runParallel(next, 20_000, SMALL));
    next += 20_000;
    medium.push(await runParallel(next, 4_000, MEDIUM));
    next += 4_000;
    const done = [...small, ...medium].reduce((n, s) => n + s.schedules, 0);
    process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(0)} s: ${done} schedules\n`);
    if (small.some((s) => s.failures.length) || medium.some((s) => s.failures.length)) break;
  }
  const a = merge(small);
  const b = merge(medium);
  const lines = [
    `simulation: seeds ${seed}…${next - 1}, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
    describeSummary('small (2 hosts, 1 name, ttl 2, 4 faults)', a),
    describeSummary('medium (3 hosts, 3 names, ttl 3, 8 faults)', b),
  ];
  for (const f of [...a.failures, ...b.failures]) lines.push(`seed ${f.seed}:\n  ${f.violations.join('\n  ')}\n${f.trace.join('\n')}`);
  lines.push(a.failures.length + b.failures.length === 0 ? 'result: PASS' : 'result: FAIL');
  process.stdout.write(`${lines.join('\n')}\n`);
  return a.failures.length + b.failures.length === 0 ? 0 : 1;
}
