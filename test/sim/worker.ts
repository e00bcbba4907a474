// One worker thread of the seeded simulation: runs a range of seeds, reports a summary.
import { parentPort, workerData } from 'node:worker_threads';
import { World, type WorldOptions } from '../helpers/sim/world.js';

export interface SimJob {
  from: number;
  count: number;
  shape: Omit<WorldOptions, 'seed'>;
}

export interface SimSummary {
  schedules: number;
  steps: number;
  leaderships: number;
  excused: number;
  faults: Record<string, number>;
  failures: { seed: number; violations: string[]; trace: string[] }[];
  ms: number;
}

export async function runSeeds(job: SimJob): Promise<SimSummary> {
  const t0 = performance.now();
  const out: SimSummary = { schedules: 0, steps: 0, leaderships: 0, excused: 0, faults: {}, failures: [], ms: 0 };
  for (let seed = job.from; seed < job.from + job.count; seed++) {
    const r = await new World({ ...job.shape, seed }).run();
    out.schedules++;
    out.steps += r.steps;
    out.leaderships += r.leaderships;
    out.excused += r.excused;
    for (const [k, v] of Object.entries(r.faults)) out.faults[k] = (out.faults[k] ?? 0) + v;
    if (r.violations.length > 0 && out.failures.length < 3) {
      out.failures.push({ seed, violations: r.violations.map((v) => `${v.at.toFixed(1)} ms: ${v.what}`), trace: r.trace.slice(-80) });
    }
  }
  out.ms = performance.now() - t0;
  return out;
}

if (parentPort && workerData) {
  const port = parentPort;
  void runSeeds(workerData as SimJob).then((s) => port.postMessage(s));
}
