/**
 * etcd authentication for tests: a root user, users whose role may only read and
 * write one key prefix, then `etcdctl auth enable`.
 *
 *   const auth = await enableAuth(cluster, { users: [{ name: 'app', password: 'pw', prefix: 'app/' }] });
 *   await auth.etcdctl(['get', 'app/', '--prefix']);   // as root
 *
 * Once auth is on, cluster.etcdctl() and the helpers built on it (keys, get, put,
 * leases) are refused: use the returned etcdctl, which passes --user root:….
 */
import type { EtcdCluster, EtcdctlOptions, EtcdctlResult } from './etcd.js';

export interface AuthUser {
  name: string;
  password: string;
  /** The user's role gets readwrite on this key prefix (the range [prefix, prefix+1)) and nothing else. */
  prefix: string;
}

export interface EtcdAuth {
  /** `root:<password>`, for etcdctl's --user. */
  readonly root: string;
  /** cluster.etcdctl as root. */
  etcdctl(args: string[], opts?: EtcdctlOptions): Promise<EtcdctlResult>;
}

export async function enableAuth(cluster: EtcdCluster, opts: { rootPassword?: string; users: AuthUser[] }): Promise<EtcdAuth> {
  const rootPassword = opts.rootPassword ?? 'root-secret';
  const ok = async (args: string[]): Promise<void> => {
    const r = await cluster.etcdctl(args);
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  };
  await ok(['user', 'add', 'root', `--new-user-password=${rootPassword}`]);
  await ok(['user', 'grant-role', 'root', 'root']);
  for (const u of opts.users) {
    const role = `${u.name}-role`;
    await ok(['role', 'add', role]);
    await ok(['role', 'grant-permission', role, 'readwrite', u.prefix, '--prefix=true']);
    await ok(['user', 'add', u.name, `--new-user-password=${u.password}`]);
    await ok(['user', 'grant-role', u.name, role]);
  }
  await ok(['auth', 'enable']);
  const root = `root:${rootPassword}`;
  return { root, etcdctl: (args, o) => cluster.etcdctl([`--user=${root}`, ...args], o) };
}
