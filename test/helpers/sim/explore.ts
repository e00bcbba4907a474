// Exhaustive exploration of small cases: every order of the events that are due at the
// same virtual instant within a window of time, up to a depth of choice points
// (stateless model checking: each run replays a prefix of choices, then takes the first
// option at each later choice point, and the next run changes the last choice it can).
import type { Chooser } from './scheduler.js';
import type { World, WorldResult } from './world.js';

class Replay implements Chooser {
  readonly taken: { c: number; n: number }[] = [];
  constructor(
    private readonly prefix: readonly number[],
    private readonly window: readonly [number, number],
  ) {}
  choose(n: number, now: number): number {
    // Outside the window of interest, the first order; inside, every order.
    if (now < this.window[0] || now > this.window[1]) return 0;
    const i = this.taken.length;
    const c = i < this.prefix.length ? Math.min(this.prefix[i]!, n - 1) : 0;
    this.taken.push({ c, n });
    return c;
  }
  /** The next prefix in depth-first order within the first `depth` choice points, or undefined when done. */
  next(depth: number): number[] | undefined {
    for (let j = Math.min(this.taken.length, depth) - 1; j >= 0; j--) {
      const t = this.taken[j]!;
      if (t.c + 1 < t.n) return [...this.taken.slice(0, j).map((x) => x.c), t.c + 1];
    }
    return undefined;
  }
}

export interface Exploration {
  runs: number;
  /** Every order within the depth bound was run. */
  complete: boolean;
  /** Most choice points met in one run. */
  maxChoicePoints: number;
  failures: WorldResult[];
}

export async function explore(
  make: (chooser: Chooser) => World,
  window: readonly [number, number],
  depth: number,
  maxRuns: number,
): Promise<Exploration> {
  let prefix: number[] | undefined = [];
  let runs = 0;
  let maxChoicePoints = 0;
  const failures: WorldResult[] = [];
  while (prefix && runs < maxRuns) {
    const chooser: Replay = new Replay(prefix, window);
    const r = await make(chooser).run();
    runs++;
    maxChoicePoints = Math.max(maxChoicePoints, chooser.taken.length);
    if (r.violations.length > 0 && failures.length < 3)
      failures.push({ ...r, trace: [`choices: ${chooser.taken.map((t: { c: number }) => t.c).join(',')}`, ...r.trace] });
    prefix = chooser.next(depth);
  }
  return { runs, complete: prefix === undefined, maxChoicePoints, failures };
}
