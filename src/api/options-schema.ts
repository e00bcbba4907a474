// The one validator of every option bag (options.ts declares the bags). A bag is a schema:
// key → Field, checked in declaration order, so a field's default and range may depend on
// the fields before it (renewDeadlineMs on ttl and keepaliveIntervalMs). Every bag fails
// the same way:
//   - an unknown key: TypeError naming it, the nearest valid key and the valid keys;
//   - a wrong type: TypeError naming the key, the expected type and the value;
//   - a number out of its range: RangeError naming the key, the range and the value;
//   - a malformed string (an empty id, a prefix without '/'): TypeError, as a wrong type.
// `undefined` is an absent key (its default applies); `null` is a wrong type.
// A renamed key keeps working under its old name: the value is converted to the new unit
// and a DeprecationWarning with the old name's own code is emitted once per process.
import { describeValue } from '../core/errors.js';

/** 'string[]': an array of strings (each checked against the field's `format`, when it has one). */
export type TypeName = 'string' | 'string[]' | 'number' | 'boolean' | 'function' | 'object' | 'AbortSignal';

/** Values already resolved, by canonical key, for fields that depend on earlier ones. */
export type Values = Readonly<Record<string, unknown>>;

/** How an error speaks of durations: in the unit and names of the key the caller wrote. */
export interface Units {
  /** True when the key in error was given by its deprecated name in seconds. */
  readonly seconds: boolean;
  /** 'seconds' or 'milliseconds'. */
  readonly unit: string;
  /** `key` as the caller spoke: its deprecated name when the key in error was given by one. */
  name(key: string): string;
  /** A duration held in ms, in `unit`, rounded to 3 decimals. */
  ms(ms: number): number;
}

/** A constraint beyond the type; `says` completes "options.x must …" (e.g. "be ≥ 1"). */
export interface Constraint<T> {
  readonly ok: (v: T, o: Values) => boolean;
  readonly says: (o: Values, u: Units, v: T) => string;
}

export interface Field {
  readonly type: TypeName | readonly TypeName[];
  /** What the value means, in its unit (one line; the interface's TSDoc says more). */
  readonly doc: string;
  /** The default: a value, or computed from the fields before it. Absent: stays undefined. */
  readonly default?: { readonly value: unknown } | { readonly from: (o: Values) => unknown };
  /** A number's range (finite is always required): RangeError. */
  readonly range?: Constraint<number>;
  /** A string's form: TypeError. */
  readonly format?: Constraint<string>;
  /** The deprecated old name of this key; its value × scale is this key's value. */
  readonly deprecatedAlias?: { readonly name: string; readonly code: string; readonly scale: 1 | 1000; readonly unit: string };
}

export type Schema = Readonly<Record<string, Field>>;

/** Where a bag is given: `path` 'options' (or 'options.balance'), `subject` the call ("lock('x')"). */
export interface Where {
  readonly path?: string;
  readonly subject?: string;
}

const warned = new Set<string>();

/**
 * Checks `options` against `schema` and returns every field by its canonical key (values
 * converted from deprecated names, defaults applied). Throws as the top of this file says.
 */
export function validate(schema: Schema, options: unknown, where: Where = {}): Record<string, unknown> {
  const path = where.path ?? 'options';
  const of = where.subject ? ` of ${where.subject}` : '';
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${path}${of} must be an object, got ${describeTyped(options)}`);
  }
  const given = options as Record<string, unknown>;
  const aliases = new Map<string, string>();
  for (const [key, f] of Object.entries(schema)) if (f.deprecatedAlias) aliases.set(f.deprecatedAlias.name, key);
  const canonical = Object.keys(schema);
  for (const key of Object.keys(given)) {
    if (key in schema || aliases.has(key)) continue;
    const near = nearest(key, [...canonical, ...aliases.keys()]);
    const suggest = near === undefined ? '' : ` (did you mean '${aliases.get(near) ?? near}'?)`;
    const inside = path === 'options' ? of : ` in ${path}${of}`;
    throw new TypeError(`unknown option '${key}'${inside}${suggest}; valid options: ${canonical.join(', ')}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(schema)) {
    const alias = f.deprecatedAlias;
    let raw = given[key];
    let name = key;
    if (alias && given[alias.name] !== undefined) {
      if (raw !== undefined) {
        throw new TypeError(
          `${path}.${alias.name} and ${path}.${key}${of} are the same option (${alias.name} is its deprecated name, in ${alias.unit}): give only ${key}`,
        );
      }
      raw = given[alias.name];
      name = alias.name;
      deprecated(`${path}.${alias.name}`, key, alias);
    }
    const label = `${path}.${name}${of}`;
    const u = units(schema, name !== key && alias?.scale === 1000, name !== key);
    if (raw === undefined) {
      const d = f.default;
      out[key] = d === undefined ? undefined : 'value' in d ? d.value : d.from(out);
      continue;
    }
    const types = typeof f.type === 'string' ? [f.type] : f.type;
    if (!types.some((t) => hasType(raw, t))) {
      throw new TypeError(`${label} must be ${types.map(article).join(' or ')}, got ${describeTyped(raw)}`);
    }
    if (typeof raw === 'number') {
      const v = raw * (name === key ? 1 : alias!.scale);
      if (!Number.isFinite(v) || (f.range && !f.range.ok(v, out))) {
        throw new RangeError(`${label} must ${f.range ? f.range.says(out, u, v) : 'be a finite number'}, got ${describeValue(raw)}`);
      }
      out[key] = v;
      continue;
    }
    if (typeof raw === 'string' && f.format && !f.format.ok(raw, out)) {
      throw new TypeError(`${label} must ${f.format.says(out, u, raw)}, got ${describeValue(raw)}`);
    }
    if (Array.isArray(raw)) {
      const list = raw as string[];
      list.forEach((x, i) => {
        if (f.format && !f.format.ok(x, out))
          throw new TypeError(`${label}[${i}] must ${f.format.says(out, u, x)}, got ${describeValue(x)}`);
      });
      out[key] = Object.freeze([...list]); // a copy: the caller's array may change later
      continue;
    }
    out[key] = raw;
  }
  return out;
}

function units(schema: Schema, seconds: boolean, oldNames: boolean): Units {
  return {
    seconds,
    unit: seconds ? 'seconds' : 'milliseconds',
    name: (key) => (oldNames ? (schema[key]?.deprecatedAlias?.name ?? key) : key),
    ms: (ms) => round(seconds ? ms / 1000 : ms),
  };
}

function deprecated(old: string, key: string, alias: NonNullable<Field['deprecatedAlias']>): void {
  if (warned.has(alias.code)) return;
  warned.add(alias.code);
  const convert = alias.scale === 1 ? 'the same value' : `its value × ${alias.scale} (${alias.unit} → milliseconds)`;
  process.emitWarning(`locked: ${old} is deprecated: use ${key}, ${convert}`, { type: 'DeprecationWarning', code: alias.code });
}

function hasType(v: unknown, t: TypeName): boolean {
  if (t === 'AbortSignal') return v instanceof AbortSignal;
  if (t === 'object') return typeof v === 'object' && v !== null && !Array.isArray(v);
  if (t === 'string[]') return Array.isArray(v) && v.every((x) => typeof x === 'string');
  return typeof v === t;
}

const article = (t: TypeName): string =>
  t === 'string[]' ? 'an array of strings' : t === 'object' || t === 'AbortSignal' ? `an ${t}` : `a ${t}`;

const round = (n: number): number => Math.round(n * 1000) / 1000;

/** The known key closest to `key` (edit distance ≤ 2), for "did you mean". */
export function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = distance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The value with its type, for wrong-type errors: "string ('10')", "null", "an array [1]". */
export function describeTyped(v: unknown): string {
  if (v === null || v === undefined || typeof v === 'function' || typeof v === 'object') {
    return Array.isArray(v) ? `an array ${describeValue(v)}` : describeValue(v);
  }
  return `${typeof v} (${describeValue(v)})`;
}
