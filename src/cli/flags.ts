// Values of flags and arguments that are more than a string: durations (--ttl among
// them), counts, endpoints, node names, and the package version for --version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandName } from './commands.js';
import { UsageError } from './messages.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** One `<number><unit>` of Go's form; a compound duration is several in a row (1h2m3.5s). */
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;

/**
 * Milliseconds in `text`: Go's time.ParseDuration form, which etcdctl and consul users
 * type (`500ms`, `10s`, `1m30s`, `1h2m3.5s`, `1.5h`), or plain seconds (`10`, `2.5`).
 * NaN for anything else: a sign (no flag takes a negative time), `0x10`, `1e3`, `10 s`,
 * `1d` (Go has no day unit either), a unit without a number.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(t)) return Number(t) * 1000;
  if (t === '') return NaN;
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < t.length) {
    const m = PART.exec(t);
    if (!m) return NaN;
    ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return ms;
}

/**
 * A duration flag (see parseDuration) in milliseconds, `fallbackMs` when not given.
 * A bad value, or one under `minMs`, is a usage error naming the flag (or the variable
 * that set it) and the value.
 */
export function duration(flag: string, value: string | undefined, fallbackMs: number, command: CommandName, minMs = 0): number {
  if (value === undefined) return fallbackMs;
  const ms = parseDuration(value);
  if (!Number.isFinite(ms) || ms < minMs) {
    const min = minMs > 0 ? ` ≥ ${minMs % 1000 === 0 ? `${minMs / 1000}s` : `${minMs}ms`}` : '';
    throw new UsageError(`${flag} must be a duration${min} such as 500ms, 10s, 1m30s or plain seconds, got '${value}'`, command);
  }
  return ms;
}

/** --ttl: whole seconds ≥ 2 (etcd leases have second granularity). `label` names where the value came from. */
export function ttlFlag(value: string | undefined, command: 'run' | 'once', label = '--ttl'): number {
  const ms = duration(label, value, 10_000, command, 2_000);
  if (ms % 1000 !== 0) throw new UsageError(`${label} must be whole seconds ≥ 2 (etcd leases count in seconds), got '${value}'`, command);
  return ms / 1000;
}

/** A whole number ≥ min, in decimal digits only. */
export function count(flag: string, value: string | undefined, fallback: number, command: CommandName, min = 1): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number ≥ ${min}, got '${value}'`, command);
  return n;
}

/** The longest name the library takes (MAX_NAME_LENGTH of its keys.ts; test/unit/cli-names.test.ts keeps them equal). */
const MAX_NAME_LENGTH = 256;

/**
 * Why the library would refuse `name`, in its words, or undefined. Checked here so that a
 * bad NAME is a usage error before anything connects; the library's own check is not part
 * of its public API, and test/unit/cli-names.test.ts keeps this one equal to it.
 */
export function nameProblem(name: string): string | undefined {
  if (name.length === 0) return 'name must not be empty';
  if (name.length > MAX_NAME_LENGTH)
    return `name must be at most ${MAX_NAME_LENGTH} characters, got ${name.length} ('${name.slice(0, 40)}…')`;
  // A '/' would put this name's keys inside another name's range.
  if (name.includes('/')) return `name must not contain '/', got '${name}'`;
  return undefined;
}

/** NAME of `run` and `once`: a usage error unless the library would take it. */
export function checkName(name: string, command: CommandName): void {
  const problem = nameProblem(name);
  if (problem !== undefined) throw new UsageError(problem, command);
}

/** The one positional argument of `leader`, `failover`, `drain` and `undrain`, checked by `problem`. */
export function oneArg(positionals: string[], command: CommandName, what: string, problem: (v: string) => string | undefined): string {
  if (positionals.length === 0) throw new UsageError(`missing ${what}`, command);
  if (positionals.length > 1) throw new UsageError(`expected one ${what}, got ${positionals.length}: ${positionals.join(' ')}`, command);
  const value = positionals[0]!;
  const why = problem(value);
  if (why !== undefined) throw new UsageError(why, command);
  return value;
}

// host:port, with an optional http(s):// scheme; host a name, IPv4 or [IPv6].
const ENDPOINT = /^(?:https?:\/\/)?(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})\/?$/;

/** Each endpoint must be host:port (etcd has no default port worth guessing); a bad one is a usage error. */
export function checkEndpoints(list: string, command: CommandName): void {
  const parts = list.split(',').map((h) => h.trim());
  for (const e of parts) {
    if (e === '' && parts.length > 1) throw new UsageError(`--endpoints has an empty entry: '${list}'`, command);
    const m = ENDPOINT.exec(e);
    const port = m ? Number(m[1]) : 0;
    if (e !== '' && (!m || port < 1 || port > 65535)) {
      throw new UsageError(`--endpoints: '${e}' is not HOST:PORT (optionally with http:// or https://), in '${list}'`, command);
    }
  }
}

/** This package's version, from the package.json found above this file (dist/ or a test build). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'locked-etcd' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  return 'unknown';
}
