import { execFileSync } from 'node:child_process';
import type { Config } from '../../config/types.js';
import type { StatusReport } from '../../metrics/admin.js';
import { getFromServer, httpBase } from '../admin-client.js';
import { advice, error, ok, type Finding } from './finding.js';

/** What answers on the configured HTTP listener: nothing, another program, or a Vigil (with its status when the admin endpoint lets us in). */
export type Running = { kind: 'none' } | { kind: 'other'; detail: string } | { kind: 'vigil'; status?: StatusReport; note?: string };

/** Ask GET /healthz (and /admin/status, /metrics) on the configured HTTP port whether a Vigil is there. */
export async function identifyServer(config: Config): Promise<Running> {
  const health = await getFromServer(config, '/healthz', 2000);
  if (!health.ok) return { kind: 'none' };
  if (health.status !== 200 || health.body.trim() !== 'ok') return { kind: 'other', detail: `GET ${httpBase(config)}/healthz answered ${health.status}` };
  const status = await getFromServer(config, '/admin/status', 2000);
  if (status.ok && status.status === 200) {
    try {
      const report = JSON.parse(status.body) as StatusReport;
      if (report.service === 'vigil') return { kind: 'vigil', status: report };
    } catch {
      // not JSON: not ours
    }
  }
  // The admin endpoint refused (another host's token, say): /metrics still tells a Vigil by its metrics.
  const metrics = await getFromServer(config, '/metrics', 2000);
  if (metrics.ok && metrics.status === 200 && metrics.body.includes('vigil_watchdog_ticks_total')) {
    return { kind: 'vigil', note: status.ok && status.status === 403 ? 'its /admin/status refused us: set admin.token to the server\'s' : undefined };
  }
  return { kind: 'other', detail: `${httpBase(config)} answers /healthz but serves no Vigil metrics` };
}

/** TCP state of every socket on a local port, counted (LISTEN left out), from `ss -tanH`. */
export function countStates(ssOutput: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of ssOutput.split('\n')) {
    const state = line.trim().split(/\s+/)[0];
    if (!state || state === 'LISTEN' || state === 'UNCONN') continue;
    counts.set(state, (counts.get(state) ?? 0) + 1);
  }
  return counts;
}

/** CLOSE-WAIT or FIN-WAIT-2 beyond a handful (or 1% of the established ones) is a socket Vigil failed to finish. */
export function socketFindings(counts: Map<string, number>, port: number): Finding[] {
  const established = counts.get('ESTAB') ?? 0;
  const threshold = Math.max(10, Math.ceil(established / 100));
  const summary = [...counts].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${n} ${s}`).join(', ') || 'none';
  const findings: Finding[] = [];
  const closeWait = counts.get('CLOSE-WAIT') ?? 0;
  const finWait2 = counts.get('FIN-WAIT-2') ?? 0;
  if (closeWait > threshold) {
    findings.push(error(`sockets on :${port}: ${closeWait} in CLOSE-WAIT: peers closed and Vigil never closed its side; that is a bug in Vigil: report it with the output of \`ss -tanpo state close-wait '( sport = :${port} )'\`; a restart frees them`));
  }
  if (finWait2 > threshold) {
    findings.push(error(`sockets on :${port}: ${finWait2} in FIN-WAIT-2: Vigil closed and the peers never finished, and closeTimeout should have reset them; that is a bug in Vigil: report it with the output of \`ss -tanpo state fin-wait-2 '( sport = :${port} )'\``));
  }
  if (findings.length === 0) findings.push(ok(`sockets on :${port}: ${summary} (no CLOSE-WAIT or FIN-WAIT-2 piling up)`));
  return findings;
}

/** Run ss for the port; a finding when ss is missing. */
export function socketStates(port: number): Finding[] {
  let out: string;
  try {
    out = execFileSync('ss', ['-tanH', 'state', 'all', `( sport = :${port} )`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return [advice(`sockets on :${port}: cannot run ss (${code ?? (err as Error).message}): install iproute2 to see the server's sockets by TCP state`)];
  }
  return socketFindings(countStates(out), port);
}
