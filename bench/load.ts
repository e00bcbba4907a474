// How busy the machine was during a measurement: on 2 cores shared with other work, a
// figure taken while 12 processes wanted the CPU means something else than one taken idle.
// Linux only (/proc); elsewhere the figures are NaN.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface LoadFigures {
  /** 1-minute load average at the start and at the end (it lags: a short burst shows little). */
  loadavg1: [number, number];
  /** Runnable tasks on the machine (/proc/loadavg, sampled every SAMPLE_MS): mean and max. */
  runnableMean: number;
  runnableMax: number;
  /** CPU busy over the window, as a share of all cores (1 = every core busy all the time). */
  cpuBusy: number;
  cores: number;
}

const SAMPLE_MS = 250;
const round2 = (v: number): number => Math.round(v * 100) / 100;

function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0); // idle + iowait
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (counted in user)
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

function runnable(): number | undefined {
  try {
    // "0.52 0.58 0.59 3/457 12345": the 4th field is runnable / all tasks, this reader included.
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[0]) - 1;
  } catch {
    return undefined;
  }
}

export class LoadSampler {
  private readonly l0 = os.loadavg()[0]!;
  private readonly c0 = cpuTimes();
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.timer = setInterval(() => {
      const r = runnable();
      if (r !== undefined) this.samples.push(r);
    }, SAMPLE_MS);
  }

  stop(): LoadFigures {
    clearInterval(this.timer);
    const c1 = cpuTimes();
    const cores = os.cpus().length;
    const s = this.samples;
    return {
      loadavg1: [round2(this.l0), round2(os.loadavg()[0]!)],
      runnableMean: s.length ? round2(s.reduce((a, b) => a + b, 0) / s.length) : NaN,
      runnableMax: s.length ? Math.max(...s) : NaN,
      cpuBusy: this.c0 && c1 && c1.total > this.c0.total ? round2((c1.busy - this.c0.busy) / (c1.total - this.c0.total)) : NaN,
      cores,
    };
  }
}

export const describeLoad = (l: LoadFigures): string =>
  `load ${l.loadavg1[0]}→${l.loadavg1[1]}, runnable ${l.runnableMean} (max ${l.runnableMax}) on ${l.cores} cores, CPU ${Math.round(l.cpuBusy * 100)} % busy`;
