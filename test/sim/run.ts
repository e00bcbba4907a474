// Runs seeded schedules on worker threads (one per core) and adds up what they saw.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { SimJob, SimSummary } from './worker.js';

export const SMALL: SimJob['shape'] = { hosts: 2, names: 1, horizonMs: 6_000, ttl: 2, faults: 4 };
// Three names on three hosts: after the quiet period each host leads exactly one (balancing's ⌊N/H⌋..⌈N/H⌉).
export const MEDIUM: SimJob['shape'] = { hosts: 3, names: 3, horizonMs: 15_000, ttl: 3, faults: 8 };
// A small fleet: enough names that a balancing wave moves several at once, so hand-overs,
// stand-asides and their batched deletes (one transaction, one revision) race the faults.
export const FLEET: SimJob['shape'] = { hosts: 4, names: 12, horizonMs: 15_000, ttl: 3, faults: 8 };

export async function runParallel(
  from: number,
  count: number,
  shape: SimJob['shape'],
  threads = Math.min(2, availableParallelism()),
): Promise<SimSummary> {
  const per = Math.ceil(count / threads);
  const jobs: Promise<SimSummary>[] = [];
  for (let i = 0; i < threads; i++) {
    const n = Math.min(per, count - i * per);
    if (n <= 0) break;
    const job: SimJob = { from: from + i * per, count: n, shape };
    jobs.push(
      new Promise((resolve, reject) => {
        const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: job });
        w.once('message', (s: SimSummary) => {
          resolve(s);
          void w.terminate();
        });
        w.once('error', reject);
      }),
    );
  }
  return merge(await Promise.all(jobs));
}

export function merge(parts: SimSummary[]): SimSummary {
  const out: SimSummary = { schedules: 0, steps: 0, leaderships: 0, excused: 0, faults: {}, failures: [], ms: 0 };
  for (const p of parts) {
    out.schedules += p.schedules;
    out.steps += p.steps;
    out.leaderships += p.leaderships;
    out.excused += p.excused;
    out.ms = Math.max(out.ms, p.ms);
    for (const [k, v] of Object.entries(p.faults)) out.faults[k] = (out.faults[k] ?? 0) + v;
    out.failures.push(...p.failures);
  }
  return out;
}

export function describeSummary(label: string, s: SimSummary): string {
  const faults = Object.entries(s.faults)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `${label}: ${s.schedules} schedules, ${s.steps} steps, ${s.leaderships} leaderships, ${s.excused} overlaps excused (operator delete or wake), ${s.failures.length ? 'VIOLATIONS' : '0 violations'}, ${(s.ms / 1000).toFixed(1)} s; faults: ${faults}`;
}
