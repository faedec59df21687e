// Issue 11 figures, WebSocket beside TCP in one sitting, each kind on a fresh server: logins per second
// (PLAIN, first logins), server RSS per idle authenticated session at N, and server CPU while the N idle
// (WebSocket: a ping frame every watchdog.websocket.keepaliveAfter, 25 s by default, each answered by a pong).
//   node bench/websocket.mjs [sessions=10000] [idleSeconds=60]
import { sleep, startClients, startServer } from './lib/server.mjs';

const N = Number(process.argv[2] ?? 10000);
const IDLE = Number(process.argv[3] ?? 60);
if (!(N > 0 && N <= 19000 && IDLE >= 0 && IDLE <= 600)) {
  console.error('usage: node bench/websocket.mjs [sessions 1..19000] [idleSeconds 0..600]');
  process.exit(2);
}

const result = { bench: 'websocket', sessions: N, idleSeconds: IDLE };
for (const kind of ['c2s', 'websocket']) {
  const server = await startServer({ users: N });
  const base = await server.measure();
  const websocket = kind === 'websocket';
  const clients = await startClients({ port: websocket ? server.wsPort : server.port, count: N, websocket });
  await sleep(1000);
  const loaded = await server.measure();
  const run = {
    sessions: loaded.sessions,
    loginsPerSecond: Math.round((N / clients.ms) * 1000),
    rssPerSessionKiB: Math.round((loaded.rss - base.rss) / N / 102.4) / 10,
  };
  if (IDLE > 0) {
    const cpu0 = server.cpuSeconds();
    await sleep(IDLE * 1000);
    run.idleCpuSecondsPerMinute = Math.round(((server.cpuSeconds() - cpu0) / IDLE) * 60 * 100) / 100;
    run.sessionsAfterIdle = (await server.measure()).sessions;
  }
  clients.kill();
  await server.stop();
  result[kind] = run;
  console.error(JSON.stringify({ kind, ...run }));
}
console.log(JSON.stringify(result));
