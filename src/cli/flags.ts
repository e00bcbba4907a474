// Values of flags and arguments that are more than a string: durations, counts,
// endpoints, and the package version for --version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, type CommandName } from './common.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration as etcdctl and consul users type it — `500ms`, `10s`, `2m`, `1h`, `1.5s` —
 * or plain seconds (`10`). In milliseconds. Anything else (`0x10`, `1e3`, `10 s`, `-1`)
 * is a usage error naming the flag and the value.
 */
export function duration(flag: string, value: string | undefined, fallbackMs: number, command: CommandName, minMs = 0): number {
  if (value === undefined) return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms < minMs) {
    const min = minMs > 0 ? ` ≥ ${minMs % 1000 === 0 ? `${minMs / 1000}s` : `${minMs}ms`}` : '';
    throw new UsageError(`${flag} must be a duration${min} such as 500ms, 10s, 2m or plain seconds, got '${value}'`, command);
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
