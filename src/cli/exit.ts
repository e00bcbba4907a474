// The exit statuses of `locked`: docs/cli.md's table lists every one (a test checks it).
export const EXIT = {
  ok: 0,
  /** `leader`: nobody leads; `failover`: nothing to fail over. */
  none: 1,
  usage: 2,
  /** etcd unreachable, refused the request, or did not answer in time. */
  etcd: 3,
  /** `run --try`: another host leads; `run --wait`: not elected in time (EX_TEMPFAIL). */
  busy: 75,
  /** `drain`, `undrain`, `failover --to`: no live host has that node id (EX_NOHOST). */
  notFound: 68,
  /** `run` and `once`: their own failure (usage, etcd) before the program started — not a status a program is likely to use. */
  runFailure: 125,
} as const;
