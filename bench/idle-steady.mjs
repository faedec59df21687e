// Idle probing in the steady state: N sessions log in (the neutral harness's idle.js), then the server's CPU
// is read over a window that starts `skip` seconds after the last login, once the garbage of the logins is
// collected (V8's memory reducer runs its last collections some 30 s after the logins stop: a shorter skip
// counts them). The harness's own idle figure starts at the last login and includes that collection. Also
// prints the window's CPU split between the main thread and the others (the GC's helpers above all), and
// the collections in it, which explain much of the spread between runs.
//   node bench/idle-steady.mjs [sessions=10000] [skipSeconds=60] [windowSeconds=60] [--tls]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { harnessDir, requireHarness, targetArgs } from './lib/harness.mjs';
import { startServer } from './lib/server.mjs';

const tls = process.argv.includes('--tls');
const [n = 10000, skip = 60, window = 60] = process.argv.slice(2).filter((a) => a !== '--tls').map(Number);
if (!(n > 0 && n <= 19900 && skip >= 0 && skip <= 600 && window > 0 && window <= 600)) {
  console.error('usage: node bench/idle-steady.mjs [sessions 1..19900] [skipSeconds 0..600] [windowSeconds 1..600] [--tls]');
  process.exit(2);
}
requireHarness('idle-steady.mjs');

const TICKS = 100;
const PROBE_AFTER = 20;
const server = await startServer({ config: { watchdog: { c2s: { probeAfter: `${PROBE_AFTER}s` } } }, users: n, ...(tls ? { tls: 'ec' } : {}) });
const cpu = () => {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS };
};
const target = { userPattern: 'u%d', password: 'bench-secret', port: server.port, domain: 'localhost', pid: server.pid };
const hold = skip + window + 5;
const client = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, `${harnessDir}/idle.js`, ...(tls ? ['--tls'] : []), ...targetArgs(target), '--n', n, '--hold', hold, '--rate', 100000, '--concurrency', 200, '--max-time', hold + 600].map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
const killer = setTimeout(() => client.kill('SIGKILL'), (hold + 660) * 1000);
let result;
createInterface({ input: client.stdout }).on('line', (l) => {
  if (l.startsWith('{')) result = JSON.parse(l);
});
const loggedIn = new Promise((resolve) => createInterface({ input: client.stderr }).on('line', (l) => /^opened /.test(l) && resolve()));
// The client may end early (a failed login run): every wait below then ends with it.
const closed = new Promise((resolve) => client.once('close', resolve));
await Promise.race([loggedIn, closed]);
await new Promise((r) => setTimeout(r, skip * 1000));
const before = cpu();
const threadsBefore = server.threadCpuSeconds();
const gcBefore = await server.gcStats();
await new Promise((r) => setTimeout(r, window * 1000));
const after = cpu();
const threadsAfter = server.threadCpuSeconds();
const gcAfter = await server.gcStats();
await closed;
clearTimeout(killer);
await server.stop();
if (!result || result.ok !== n) {
  console.error(`idle-steady.mjs: ${result?.ok ?? 0} of ${n} sessions logged in`);
  process.exit(1);
}
const per60 = (s) => +((s * 60) / window).toFixed(2);
console.log(JSON.stringify({
  bench: 'idle-steady', tls, sessions: n, probeAfterSeconds: PROBE_AFTER, skipSeconds: skip, windowSeconds: window,
  cpuPer60s: per60(after.user + after.system - before.user - before.system), userPer60s: per60(after.user - before.user), systemPer60s: per60(after.system - before.system),
  mainThreadPer60s: per60(threadsAfter.main - threadsBefore.main), otherThreadsPer60s: per60(threadsAfter.others - threadsBefore.others),
  gc: Object.fromEntries(['minor', 'major'].map((k) => [k, { count: gcAfter[k].count - gcBefore[k].count, ms: Math.round(gcAfter[k].ms - gcBefore[k].ms) }])),
  pingsPer60s: Math.round((n * 60) / PROBE_AFTER), harnessIdleCpuPer60s: +((result.idleCpuS * 60) / result.holdSeconds).toFixed(2), alive: result.sessionsAliveAfterHold,
}));
