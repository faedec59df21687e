// Issue 2 and 4 figures: login rate (PLAIN over plaintext, to bound; first logins and reconnects), server RSS per idle authenticated
// session at N sessions, and server CPU while N sessions idle. Server and clients in separate processes;
// loopback only; every loop bounded.   node bench/login-idle.mjs [sessions=1000] [idleSeconds=0] [runs=3]
import { median, sleep, startClients, startServer } from './lib/server.mjs';

const N = Number(process.argv[2] ?? 1000);
const IDLE = Number(process.argv[3] ?? 0);
const RUNS = Number(process.argv[4] ?? 3);
if (!(N > 0 && N <= 20000 && IDLE >= 0 && IDLE <= 600 && RUNS > 0 && RUNS <= 9)) {
  console.error('usage: node bench/login-idle.mjs [sessions 1..20000] [idleSeconds 0..600] [runs 1..9]');
  process.exit(2);
}

const runs = [];
for (let r = 0; r < RUNS; r++) {
  const server = await startServer({ users: N });
  const base = await server.measure();
  const clients = await startClients({ port: server.port, count: N });
  await sleep(1000);
  const loaded = await server.measure();
  const run = {
    sessions: loaded.sessions,
    loginsPerSecond: Math.round((N / clients.ms) * 1000),
    rssPerSessionKiB: Math.round((loaded.rss - base.rss) / N / 102.4) / 10,
    rssMiB: Math.round(loaded.rss / 1048576),
  };
  if (IDLE > 0) {
    const cpu0 = server.cpuSeconds();
    await sleep(IDLE * 1000);
    run.idleCpuPercent = Math.round(((server.cpuSeconds() - cpu0) / IDLE) * 1000) / 10;
  }
  clients.kill();
  // Everyone reconnects at once (every login started together), as after a network blip: passwords already
  // verified are cheap to check.
  for (let i = 0; i < 100 && (await server.measure()).sessions > 0; i++) await sleep(100);
  const again = await startClients({ port: server.port, count: N, concurrency: N });
  run.reconnectLoginsPerSecond = Math.round((N / again.ms) * 1000);
  again.kill();
  await server.stop();
  runs.push(run);
  console.error(JSON.stringify(run));
}
const pick = (k) => (runs[0][k] === undefined ? undefined : median(runs.map((x) => x[k])));
console.log(JSON.stringify({ bench: 'login-idle', sessions: N, runs: RUNS, loginsPerSecond: pick('loginsPerSecond'), reconnectLoginsPerSecond: pick('reconnectLoginsPerSecond'), rssPerSessionKiB: pick('rssPerSessionKiB'), idleSeconds: IDLE, idleCpuPercent: pick('idleCpuPercent') }));
