// Idle probing in the steady state: N sessions log in (the neutral harness's idle.js), then the server's CPU
// is read over a window that starts once the garbage of the logins is collected: at least `skip` seconds
// after the last login, and after a major collection since then (V8's memory reducer, or the old
// generation's limit: 30-90 s after the logins here) with none for 5 s. The harness's own idle figure starts
// at the last login and includes that collection. Also prints the window's CPU split between the main thread
// and the others (the GC's helpers above all), and the collections in it. With --profile, also where the main
// thread's time went in the window, per ping round trip (a V8 CPU profile, whose sampling adds to the CPU
// figures of that run: compare profiles with profiles).
//   node bench/idle-steady.mjs [sessions=10000] [skipSeconds=20] [windowSeconds=60] [--tls] [--profile]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { harnessDir, requireHarness, targetArgs } from './lib/harness.mjs';
import { startServer } from './lib/server.mjs';
import { summarize } from './lib/profile.mjs';

const tls = process.argv.includes('--tls');
const profiling = process.argv.includes('--profile');
const [n = 10000, skip = 20, window = 60] = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number);
if (!(n > 0 && n <= 19900 && skip >= 0 && skip <= 600 && window > 0 && window <= 600)) {
  console.error('usage: node bench/idle-steady.mjs [sessions 1..19900] [skipSeconds 0..600] [windowSeconds 1..600] [--tls] [--profile]');
  process.exit(2);
}
requireHarness('idle-steady.mjs');

const TICKS = 100;
const PROBE_AFTER = 20;
const SETTLE_MAX = 180;
const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));
const server = await startServer({ config: { watchdog: { c2s: { probeAfter: `${PROBE_AFTER}s` } } }, users: n, ...(tls ? { tls: 'ec' } : {}) });
const cpu = () => {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { user: Number(fields[11]) / TICKS, system: Number(fields[12]) / TICKS };
};
const target = { userPattern: 'u%d', password: 'bench-secret', port: server.port, domain: 'localhost', pid: server.pid };
const hold = skip + SETTLE_MAX + window + 30; // ended by us once the window is over
const client = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, `${harnessDir}/idle.js`, ...(tls ? ['--tls'] : []), ...targetArgs(target), '--n', n, '--hold', hold, '--rate', 100000, '--concurrency', 200, '--max-time', hold + 600].map(String), { stdio: ['ignore', 'ignore', 'pipe'] });
const killer = setTimeout(() => client.kill('SIGKILL'), (hold + 660) * 1000);
const loggedIn = new Promise((resolve) => createInterface({ input: client.stderr }).on('line', (l) => /^opened /.test(l) && resolve()));
// The client may end early (a failed login run): every wait below then ends with it.
const closed = new Promise((resolve) => client.once('close', resolve));
await Promise.race([loggedIn, closed]);
if (client.exitCode !== null || client.signalCode !== null) {
  console.error(`idle-steady.mjs: the client ended before every session logged in (${client.exitCode ?? client.signalCode})`);
  await server.stop();
  process.exit(1);
}
const majorAtLogin = (await server.gcStats()).major.count;
await sleep(skip);
let settle = skip;
for (let last = (await server.gcStats()).major.count, quiet = 0; settle < skip + SETTLE_MAX; settle++) {
  if (last > majorAtLogin && quiet >= 5) break;
  await sleep(1);
  const major = (await server.gcStats()).major.count;
  quiet = major === last ? quiet + 1 : 0;
  last = major;
}
const before = cpu();
const threadsBefore = server.threadCpuSeconds();
const gcBefore = await server.gcStats();
if (profiling) await server.profileStart();
await sleep(window);
const profile = profiling ? await server.profileStop() : undefined;
const after = cpu();
const threadsAfter = server.threadCpuSeconds();
const gcAfter = await server.gcStats();
const { sessions: alive } = await server.measure();
client.kill('SIGKILL');
await closed;
clearTimeout(killer);
await server.stop();
if (alive !== n) {
  console.error(`idle-steady.mjs: ${alive} of ${n} sessions alive at the window's end`);
  process.exit(1);
}
const per60 = (s) => +((s * 60) / window).toFixed(2);
console.log(JSON.stringify({
  bench: 'idle-steady', tls, sessions: n, probeAfterSeconds: PROBE_AFTER, windowStartSeconds: settle, windowSeconds: window,
  cpuPer60s: per60(after.user + after.system - before.user - before.system), userPer60s: per60(after.user - before.user), systemPer60s: per60(after.system - before.system),
  mainThreadPer60s: per60(threadsAfter.main - threadsBefore.main), otherThreadsPer60s: per60(threadsAfter.others - threadsBefore.others),
  gc: Object.fromEntries(['minor', 'major'].map((k) => [k, { count: gcAfter[k].count - gcBefore[k].count, ms: Math.round(gcAfter[k].ms - gcBefore[k].ms) }])),
  pingsPer60s: Math.round((n * 60) / PROBE_AFTER), alive,
  ...(profile ? { profile: summarize(profile, (n * window) / PROBE_AFTER) } : {}),
}));
