/**
 * The metric names and label names a PromQL expression refers to, read without a PromQL
 * parser — enough for the expressions of examples/prometheus and examples/grafana: strings
 * and Grafana variables are dropped, label matchers `{…}` give label names, grouping
 * clauses `by (…)`, `on (…)`… give label names, ranges `[…]` are dropped, and an
 * identifier that is not a keyword, a function or an aggregation is a metric name.
 */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'atan2',
  'inf',
  'nan',
]);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)/g;

export interface PromqlRefs {
  metrics: Set<string>;
  labels: Set<string>;
}

export function promqlRefs(expr: string): PromqlRefs {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  // Label matchers: `{name="x", reason=~"…"}` (strings are empty by now).
  e = e.replace(/\{([^{}]*)\}/g, (_m, inner: string) => {
    for (const part of inner.split(',')) {
      const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/.exec(part);
      if (m) labels.add(m[1]!);
      else if (part.trim() !== '') throw new Error(`cannot read the label matcher '${part.trim()}' in: ${expr}`);
    }
    return ' ';
  });
  e = e.replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(GROUPING, (_m, _kw: string, list: string) => {
    for (const l of list
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean))
      labels.add(l);
    return ' ';
  });
  // Numbers and durations (1e3, 0.5, 5m) first, so their letters are not read as names.
  const TOKEN = /\$[a-zA-Z_][a-zA-Z0-9_]*|\d[a-zA-Z0-9_.]*|\.\d+|([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g;
  for (const m of e.matchAll(TOKEN)) {
    const name = m[1];
    if (name === undefined || m[2] !== undefined) continue; // not an identifier, or a function call
    if (KEYWORDS.has(name.toLowerCase())) continue;
    metrics.add(name);
  }
  return { metrics, labels };
}
