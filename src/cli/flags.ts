// Values of flags and arguments that are more than a string: durations, counts,
// endpoints, and the package version for --version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type CommandName } from './common.js';

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

/** A whole number ≥ min, in decimal digits only. */
export function count(flag: string, value: string | undefined, fallback: number, command: CommandName, min = 1): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be a whole number ≥ ${min}, got '${value}'`, command);
  return n;
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
