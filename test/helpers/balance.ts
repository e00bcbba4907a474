// Shared by the balance tests (integration: in-process lockers; faults: host processes).
import type { HostStatus, Locker } from '../../src/index.js';

export const uniquePrefix = (): string => `b${Math.random().toString(36).slice(2, 8)}/`;
export const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `job${String(i).padStart(3, '0')}`);
/** Every fn start and settle, per name, on one clock: overlaps are visible. */
export interface Span {
  host: string;
  name: string;
  start: bigint;
  end?: bigint;
}
export function register(l: Locker, id: string, list: string[], spans: Span[]): void {
  for (const name of list) {
    l(name, async (_remove, leadership) => {
      const span: Span = { host: id, name, start: process.hrtime.bigint() };
      spans.push(span);
      await new Promise<void>((resolve) => leadership.signal.addEventListener('abort', () => resolve(), { once: true }));
      // A little work after the abort: an overlap would show.
      await new Promise((r) => setTimeout(r, 5));
      span.end = process.hrtime.bigint();
    });
  }
}
export function overlaps(spans: Span[]): string[] {
  const out: string[] = [];
  const by = new Map<string, Span[]>();
  for (const s of spans) by.set(s.name, [...(by.get(s.name) ?? []), s]);
  for (const [name, list] of by) {
    list.sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      if (prev.end === undefined || prev.end > list[i]!.start) out.push(`${name}: ${prev.host} and ${list[i]!.host}`);
    }
  }
  return out;
}
export async function spread(l: Locker): Promise<Map<string, number>> {
  const st: HostStatus[] = await l.status({ hosts: true });
  return new Map(st.map((h) => [h.id, h.leads.length]));
}
export function within(counts: Map<string, number>, ids: string[], n: number): boolean {
  const lo = Math.floor(n / ids.length);
  const hi = Math.ceil(n / ids.length);
  return ids.every((id) => {
    const c = counts.get(id) ?? 0;
    return c >= lo && c <= hi;
  });
}
