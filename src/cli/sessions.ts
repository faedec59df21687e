import type { Config } from '../config/types.js';
import type { SessionInfo, SessionsReport } from '../metrics/admin.js';
import { getFromServer, httpBase } from './admin-client.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export type SortKey = 'idle' | 'jid';

/**
 * `vigil sessions [--sort idle|jid] [--json]`: the live sessions of the running server, read from its
 * GET /admin/sessions. Most idle first by default: the ones the watchdog will look at next.
 */
export async function sessionsCommand(config: Config, options: { sort?: string; json?: boolean }, io: Io): Promise<number> {
  const sort = options.sort ?? 'idle';
  if (sort !== 'idle' && sort !== 'jid') {
    io.err(`--sort ${sort}: expected idle or jid`);
    return 64;
  }
  const where = `${httpBase(config)}/admin/sessions`;
  const got = await getFromServer(config, '/admin/sessions');
  if (!got.ok) {
    io.err(`no Vigil answers on ${where} (${got.error}): is the server running with this configuration (listeners.http)? Start it with \`vigil start\`.`);
    return 1;
  }
  if (got.status === 403) {
    io.err(`${where} refused the request (403): run this on the server's host, or set admin.token in the configuration this command reads to the server's token.`);
    return 1;
  }
  if (got.status !== 200) {
    io.err(`${where} answered ${got.status}: is that a Vigil server? ${got.body.trim().slice(0, 200)}`);
    return 1;
  }
  const report = JSON.parse(got.body) as SessionsReport;
  const sessions = sortSessions(report.sessions, sort);
  if (options.json) {
    io.out(JSON.stringify({ ...report, sessions }, null, 2));
    return 0;
  }
  for (const line of formatTable(sessions)) io.out(line);
  return 0;
}

export function sortSessions(sessions: SessionInfo[], by: SortKey): SessionInfo[] {
  const list = [...sessions];
  if (by === 'jid') {
    // Unbound sessions (no JID yet) last, then by idle time.
    list.sort((a, b) => (a.jid === null ? 1 : 0) - (b.jid === null ? 1 : 0) || (a.jid ?? '').localeCompare(b.jid ?? '') || b.idleSeconds - a.idleSeconds);
  } else {
    list.sort((a, b) => b.idleSeconds - a.idleSeconds);
  }
  return list;
}

const COLUMNS = ['JID', 'KIND', 'REMOTE', 'IDLE', 'PROBE', 'QUEUE', 'STATE'] as const;

/** Aligned columns, one session a line, and a count at the end. */
export function formatTable(sessions: SessionInfo[]): string[] {
  const rows = sessions.map((s) => [
    s.jid ?? s.domain ?? `(${s.authenticated ? 'binding' : 'not authenticated'})`,
    s.kind,
    remote(s.remoteAddress, s.remotePort),
    `${s.idleSeconds.toFixed(1)}s`,
    s.probePendingSeconds === null ? 'none' : `pending ${s.probePendingSeconds.toFixed(1)}s`,
    s.sm ? `${s.sendQueueBytes}B, ${s.sm.unacked} unacked` : `${s.sendQueueBytes}B`,
    s.sm?.resumeLeftSeconds != null ? `hibernated, resumable for ${s.sm.resumeLeftSeconds.toFixed(1)}s` : s.state,
  ]);
  const widths = COLUMNS.map((title, i) => Math.max(title.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(COLUMNS), ...rows.map(line), `${sessions.length} session${sessions.length === 1 ? '' : 's'}`];
}

function remote(address: string, port: number): string {
  if (address === '') return '-'; // hibernated: no connection
  const host = address.startsWith('::ffff:') ? address.slice(7) : address;
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
