// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): where the samples' time goes,
// by area (this library's files, etcd3, gRPC, protobuf, Node internals, GC, idle) and
// by function.
//
//   node --cpu-prof --cpu-prof-dir=bench .build/bench/bench.js --only=scale10k
//   node .build/bench/profile.js bench/CPU.<...>.cpuprofile
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function area(url: string, fn: string): string {
  if (fn === '(root)') return '(root)';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'V8 / native (program)';
  const lib = /\/\.build\/src\/([^/]+)\.js/.exec(url);
  if (lib) return `locked src/${lib[1]}.ts`;
  if (url.includes('/.build/bench/') || url.includes('/.build/test/')) return 'bench harness';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node internals';
  return url ? url : '(native)';
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: node .build/bench/profile.js <file.cpuprofile> [top]');
  const top = Number(process.argv[3] ?? 25);
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /**
   * The area of the nearest frame (from the sample's leaf up) that is code of a package
   * or of this library: Node internals, natives and builtins count for whoever called them.
   */
  const ownerOf = (id: number): string => {
    const leaf = byId.get(id)!.callFrame;
    const own = area(leaf.url, leaf.functionName);
    if (['GC', 'idle', 'V8 / native (program)'].includes(own)) return own;
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const f = byId.get(x)!.callFrame;
      const a = area(f.url, f.functionName);
      if (a !== 'node internals' && a !== '(native)' && a !== '(root)') return a;
    }
    return own;
  };
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = p.timeDeltas.reduce((a, b) => a + b, 0);
  const byArea = new Map<string, number>();
  const byOwner = new Map<string, number>();
  const byFn = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const a = area(url, functionName);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const o = ownerOf(id);
    byOwner.set(o, (byOwner.get(o) ?? 0) + us);
    const where = url ? `${url.replace(/^.*\/(node_modules|\.build)\//, '')}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'} ${where}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const pctOf = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  const msOf = (us: number): string => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  console.log(`total ${(total / 1000).toFixed(0)} ms sampled\n\nby area (self time):`);
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1])) console.log(`${msOf(us)} ${pctOf(us)}  ${a}`);
  console.log('\nby owner (Node internals and natives counted for the package or file that called them):');
  for (const [a, us] of [...byOwner].sort((x, y) => y[1] - x[1])) console.log(`${msOf(us)} ${pctOf(us)}  ${a}`);
  console.log(`\ntop ${top} functions (self time):`);
  for (const [f, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${msOf(us)} ${pctOf(us)}  ${f}`);
}

main();
