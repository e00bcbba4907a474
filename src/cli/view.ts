// How `locked status` shows what it read: the tables of names, hosts and etcd members
// (the probe server's /members uses the last one too).
import type { HostStatus, MembersHealth, NameStatus } from '../index.js';

/** An AGE cell: 59s, 3m, 5h, 2d. */
export function age(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  return s < 172_800 ? `${Math.floor(s / 3600)}h` : `${Math.floor(s / 86_400)}d`;
}

/** A plain table; `ages` adds an AGE column (only --watch can know it: etcd keeps no timestamps). */
export function table(status: NameStatus[], ages?: Map<string, string>): string {
  if (status.length === 0) return 'no names under this prefix\n';
  const head = ['NAME', 'LEADER', 'TOKEN', 'CANDIDATES', ...(ages ? ['AGE'] : [])];
  const rows = status.map((s) => [
    s.name,
    s.leader ?? '-',
    s.token ?? '-',
    candidates(s.candidates),
    ...(ages ? [ages.get(s.name) ?? '-'] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

function candidates(ids: string[]): string {
  const shown = ids.slice(0, 5).join(',');
  return ids.length > 5 ? `${shown},… (${ids.length})` : `${shown} (${ids.length})`;
}

/** `status --hosts`: one row per host. */
export function hostTable(hosts: HostStatus[]): string {
  if (hosts.length === 0) return 'no hosts under this prefix\n';
  const head = ['HOST', 'ZONE', 'WEIGHT', 'LEADS', 'NEXT', 'QUEUED', 'SHARE', 'OFF', 'DRAINING', 'JOINING', 'NAMES LED'];
  const rows = hosts.map((h) => [
    h.id,
    h.zone ?? '-',
    String(h.weight),
    String(h.leads.length),
    String(h.next),
    String(h.queued.length),
    h.share.toFixed(1),
    h.offBy > 0 ? `+${h.offBy}` : String(h.offBy),
    h.draining ? 'yes' : 'no',
    h.joining ? 'yes' : 'no',
    h.leads.length > 5 ? `${h.leads.slice(0, 5).join(',')},…` : h.leads.join(',') || '-',
  ]);
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/** The footer of plain `status`: each host's leaderships against its fair share. */
export function shares(hosts: HostStatus[]): string {
  const parts = hosts.map((h) => `${h.id} ${h.leads.length}/${h.share.toFixed(1)}${h.draining ? ' (draining)' : ''}`);
  return `leaderships/fair share: ${parts.join(', ')}\n`;
}

/** True when every member has a raft leader and serves linearizable reads (no fault, no rejoin under way). */
export function allHealthy(h: MembersHealth): boolean {
  return h.quorum.healthy === h.quorum.members;
}

/**
 * `status --members` (and the probe server's /members): one row per member as this
 * process sees it, then the quorum margin. USED appears only for a process that uses the
 * members (a running host: keepalives, the watch); a one-off `locked status` uses none.
 */
export function memberTable(h: MembersHealth): string {
  const used = h.members.some((m) => m.keepalive || m.watch);
  const head = [
    'ENDPOINT',
    'ROLE',
    'ID',
    'LEADER',
    'TERM',
    'REVISION',
    'APPLIED',
    'RTT',
    'LINEARIZABLE',
    ...(used ? ['USED'] : []),
    'NOTE',
    'LAST ERROR',
  ];
  const dash = (v: string | number | undefined): string => (v === undefined ? '-' : String(v));
  const rows = h.members.map((m) => {
    const s = m.status;
    const note = [
      ...(m.skipped ? [`breaker ${m.breaker ?? 'open'}: skipped`] : m.breaker === 'half-open' ? ['breaker half-open'] : []),
      ...(s.staleTerm ? ['old raft term: rejoining'] : []),
      ...(s.behind !== undefined && s.behind > 0 ? [`behind ${s.behind}`] : []),
      ...(m.pending > 0 && (m.oldestPendingMs ?? 0) >= 1000
        ? [`${m.pending} call(s) waiting ${(m.oldestPendingMs! / 1000).toFixed(1)}s`]
        : []),
      ...s.alarms.map((a) => `alarm ${a}`),
    ];
    const rtt = s.statusMs ?? m.lastRttMs;
    const error = s.error ?? (m.failuresInARow > 0 ? m.lastError : undefined);
    return [
      m.endpoint,
      s.role,
      dash(s.memberId),
      dash(s.leaderId),
      dash(s.raftTerm),
      dash(s.revision),
      dash(s.raftAppliedIndex),
      rtt === undefined ? '-' : `${rtt}ms`,
      s.linearizable ? `yes (${s.readMs}ms)` : 'no',
      ...(used ? [[...(m.keepalive ? ['keepalive'] : []), ...(m.watch ? ['watch'] : [])].join(',') || '-'] : []),
      note.join('; ') || '-',
      error ?? '-',
    ];
  });
  const widths = head.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[head, ...rows].map(line).join('\n')}\n${quorumLine(h)}\n`;
}

/** The footer of `status --members`: how many more member failures the cluster survives, as seen from here. */
function quorumLine(h: MembersHealth): string {
  const q = h.quorum;
  const leader = q.leader ? `raft leader ${q.leader}` : q.agreed ? 'no raft leader answered' : 'members name different raft leaders';
  const margin =
    q.tolerates < 0
      ? 'NO QUORUM as seen from here'
      : q.tolerates === 0
        ? q.members === 1
          ? 'a single member: its failure stops etcd'
          : 'tolerates NO more failures: the next one loses quorum'
        : `tolerates ${q.tolerates} more failure${q.tolerates === 1 ? '' : 's'}`;
  const rejoin =
    q.healthy < q.members && q.tolerates >= 0 ? `; ${q.members - q.healthy} member(s) not serving (down, cut off or rejoining)` : '';
  return `quorum: ${q.healthy}/${q.members} members healthy, ${q.quorum} needed: ${margin}; ${leader}${rejoin}`;
}
