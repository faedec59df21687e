import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { Metrics } from '../../src/metrics/metrics';

/**
 * deploy/grafana/vigil-dashboard.json and deploy/prometheus/vigil-alerts.yaml: they parse, every vigil_*
 * metric they query is one Vigil exports, and promtool (Debian package `prometheus`) checks the PromQL
 * and runs the alerting rules' unit tests in deploy/prometheus/vigil-alerts.test.yaml.
 */

const root = path.resolve(__dirname, '../..');
const DASHBOARD = 'deploy/grafana/vigil-dashboard.json';
const ALERTS = 'deploy/prometheus/vigil-alerts.yaml';
const ALERT_TESTS = 'deploy/prometheus/vigil-alerts.test.yaml';
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Target {
  expr?: string;
  format?: string;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: unknown;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}
interface Dashboard {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query?: string | { query: string }; definition?: string }[] };
}
interface Rule {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Every metric name a fresh registry exports, with the series names a histogram adds. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new Metrics({ sessions: () => [], sendQueueBytes: () => 0, bytes: () => [], smSessions: () => ({ active: 0, hibernated: 0 }) });
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
  }
  return names;
}

const vigilNames = (expr: string) => [...expr.matchAll(/\bvigil_[a-z0-9_]+/g)].map((m) => m[0]);

const dashboard = JSON.parse(read(DASHBOARD)) as Dashboard;
const dashboardExprs = [
  ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')),
  ...dashboard.templating.list.map((v) => (typeof v.query === 'object' ? v.query.query : (v.query ?? ''))),
].filter((e) => e.length > 0);
const rules = (parseYaml(read(ALERTS)) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

/** promtool from Debian's `prometheus` package; CI installs it, and its absence is a failure, not a skip. */
function promtool(args: string[]): { status: number; output: string } {
  const run = spawnSync('promtool', args, { cwd: root, encoding: 'utf8' });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is not installed: apt-get install prometheus (Debian ships promtool in it); .ci/run installs it');
  }
  return { status: run.status ?? -1, output: `${run.stdout}${run.stderr}` };
}

describe(DASHBOARD, () => {
  it('is a dashboard: title, uid, panels with unique ids and a place on the grid', () => {
    expect(dashboard.title).toBe('Vigil');
    expect(dashboard.uid).toMatch(/^[a-z0-9-]+$/);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect({ title: p.title, gridPos: p.gridPos && Object.keys(p.gridPos).sort() }).toEqual({ title: p.title, gridPos: ['h', 'w', 'x', 'y'] });
      expect(p.gridPos!.x + p.gridPos!.w).toBeLessThanOrEqual(24);
      if (p.type !== 'row') {
        expect({ title: p.title, datasource: p.datasource }).toEqual({ title: p.title, datasource: { type: 'prometheus', uid: '${datasource}' } });
        expect({ title: p.title, targets: (p.targets ?? []).length > 0 }).toEqual({ title: p.title, targets: true });
      }
    }
  });

  it('shows what the issue asks for', () => {
    const has = (pattern: RegExp) => dashboard.panels.some((p) => (p.targets ?? []).some((t) => pattern.test(t.expr ?? '')));
    expect(has(/sum by \(kind, state\) \(vigil_sessions\{/)).toBe(true);
    expect(has(/sum by \(kind, reason\) \(rate\(vigil_sessions_closed_total\{/)).toBe(true);
    expect(has(/histogram_quantile\(0\.99, sum by \(le, kind\) \(rate\(vigil_watchdog_probe_rtt_seconds_bucket/)).toBe(true);
    expect(has(/histogram_quantile\(0\.99, sum by \(le\) \(rate\(vigil_watchdog_tick_seconds_bucket/)).toBe(true);
    expect(has(/vigil_send_queue_bytes/)).toBe(true);
    expect(has(/vigil_messages_salvaged_total/)).toBe(true);
    const heatmap = dashboard.panels.find((p) => p.type === 'heatmap');
    expect(heatmap?.targets?.[0]).toMatchObject({ format: 'heatmap', expr: expect.stringContaining('vigil_dead_session_lifetime_seconds_bucket') });
  });

  it('queries only metrics Vigil exports', async () => {
    const names = await exportedNames();
    const used = [...new Set(dashboardExprs.flatMap(vigilNames))].sort();
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((n) => !names.has(n))).toEqual([]);
  });

  it('every query is valid PromQL (promtool, with the Grafana variables filled in)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-deploy-'));
    try {
      // label_values(m, l) is Grafana's, not PromQL: promtool checks its selector m.
      const filled = dashboardExprs.map((e) => e.replace(/\$__rate_interval/g, '5m').replace(/\$instance/g, '.*').replace(/^label_values\((.+),\s*\w+\)$/, '$1'));
      const asRules = { groups: [{ name: 'dashboard', rules: filled.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] };
      const file = path.join(dir, 'dashboard-queries.yaml');
      writeFileSync(file, stringifyYaml(asRules));
      const { status, output } = promtool(['check', 'rules', file]);
      expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(ALERTS, () => {
  it('has the alerts the issue asks for, each with expr, for, severity and a summary', () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining(['VigilDown', 'VigilWriteStallClosesSurging', 'VigilProbeTimeoutClosesSurging', 'VigilWatchdogTickSlow', 'VigilSessionsDroppedToZero']),
    );
    for (const r of rules) {
      expect({ alert: r.alert, ok: Boolean(r.alert && r.expr && r.for && r.annotations?.summary && r.annotations.description) }).toEqual({ alert: r.alert, ok: true });
      expect({ alert: r.alert, severity: r.labels?.severity }).toEqual({ alert: r.alert, severity: expect.stringMatching(/^(critical|warning)$/) });
    }
    expect(rules.find((r) => r.alert === 'VigilDown')?.expr).toMatch(/\bup\b.*== 0/);
  });

  it('queries only metrics Vigil exports (in its rules and in their unit tests)', async () => {
    const names = await exportedNames();
    const used = [...new Set([...rules.flatMap((r) => vigilNames(r.expr ?? '')), ...vigilNames(read(ALERT_TESTS))])].sort();
    expect(used).toEqual(expect.arrayContaining(['vigil_sessions', 'vigil_sessions_closed_total', 'vigil_watchdog_tick_seconds_bucket']));
    expect(used.filter((n) => !names.has(n))).toEqual([]);
  });

  it('passes promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', ALERTS]);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining(`SUCCESS: ${rules.length} rules found`) });
  });

  it('fires when it should and not otherwise (promtool test rules)', () => {
    const { status, output } = promtool(['test', 'rules', ALERT_TESTS]);
    expect({ status, output }).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });
});
