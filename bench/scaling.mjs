// How Vigil's costs grow with the number of sessions (issue 13): for 1,000, 10,000 and 19,900 sessions (the
// per-process limit of open files here is 20,000), over plaintext PLAIN and over STARTTLS, the neutral
// harness's idle.js on a fresh server each: logins/s, RSS per idle session, and server CPU per 60 s while the
// sessions idle and the watchdog pings each every 20 s.
//   node bench/scaling.mjs [sizes=1000,10000,19900] [holdSeconds=30] [transports=plain,tls]
import { requireHarness, runJson, targetArgs } from './lib/harness.mjs';
import { startServer } from './lib/server.mjs';

const SIZES = (process.argv[2] ?? '1000,10000,19900').split(',').map(Number);
const HOLD = Number(process.argv[3] ?? 30);
const TRANSPORTS = (process.argv[4] ?? 'plain,tls').split(',');
if (!(SIZES.every((n) => n > 0 && n <= 19900) && HOLD > 0 && HOLD <= 300 && TRANSPORTS.every((t) => t === 'plain' || t === 'tls'))) {
  console.error('usage: node bench/scaling.mjs [sizes, each 1..19900] [holdSeconds 1..300] [plain,tls]');
  process.exit(2);
}
requireHarness('scaling.mjs');

const rows = [];
for (const transport of TRANSPORTS) {
  for (const n of SIZES) {
    const tls = transport === 'tls';
    const server = await startServer({ users: n, config: { watchdog: { c2s: { probeAfter: '20s' } } }, ...(tls ? { tls: 'ec' } : {}) });
    try {
      const t = { port: server.port, domain: 'localhost', userPattern: 'u%d', password: 'bench-secret', pid: server.pid };
      const r = await runJson('idle.js', [...(tls ? ['--tls'] : []), ...targetArgs(t), '--n', n, '--hold', HOLD, '--rate', 100000, '--concurrency', 200, '--max-time', HOLD + 600], { timeoutMs: (HOLD + 630) * 1000 });
      const row = { transport, sessions: n, loggedIn: r.ok, loginsPerSecond: Math.round(r.loginRate), rssPerSessionKiB: r.perSessionKiB, cpuSecondsPer60s: +((r.idleCpuS * 60) / r.holdSeconds).toFixed(2), pingsAnswered: r.pingsAnsweredDuringHold };
      rows.push(row);
      console.error(JSON.stringify(row));
    } finally {
      await server.stop();
    }
  }
}
console.log('| transport | sessions | logins/s | RSS KiB/session | CPU s per 60 s (pings every 20 s) | CPU per session-minute |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.transport} | ${r.sessions} | ${r.loginsPerSecond} | ${r.rssPerSessionKiB} | ${r.cpuSecondsPer60s} | ${((r.cpuSecondsPer60s / r.sessions) * 1e6).toFixed(0)} µs |`);
console.log(JSON.stringify({ bench: 'scaling', holdSeconds: HOLD, rows }));
