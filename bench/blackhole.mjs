// Issue 4 figure: detection of dead peers. N clients in a network namespace log in and answer pings; then
// the namespace's link is cut (no FIN, no RST) and we time every close. Root and iproute2 needed.
//   node bench/blackhole.mjs [clients=1000] [probeAfter=20] [probeTimeout=10]
import { execFileSync } from 'node:child_process';
import { load } from './lib/dist.mjs';
import { median, sleep, startClients } from './lib/server.mjs';

const N = Number(process.argv[2] ?? 1000);
const PROBE_AFTER = Number(process.argv[3] ?? 20);
const PROBE_TIMEOUT = Number(process.argv[4] ?? 10);
if (!(N > 0 && N <= 5000 && PROBE_AFTER > 0 && PROBE_AFTER <= 120 && PROBE_TIMEOUT > 0 && PROBE_TIMEOUT <= 120)) {
  console.error('usage: node bench/blackhole.mjs [clients 1..5000] [probeAfter s 1..120] [probeTimeout s 1..120]');
  process.exit(2);
}
const { loadConfig } = await load('config/load.js');
const { Server } = await load('server.js');
const { SqliteStorage } = await load('storage/sqlite.js');
const { createLogger } = await load('log.js');
const { makeUserRecord } = await load('c2s/sasl/credentials.js');
const { mkdtempSync, rmSync } = await import('node:fs');
const { tmpdir } = await import('node:os');
const { join } = await import('node:path');

const tag = process.pid % 100000;
const ns = `vigil-bench-${tag}`;
const hostIf = `vbh${tag}a`;
const nsIf = `vbh${tag}b`;
const hostIp = `10.232.${tag % 250}.1`;
const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
const inNs = (...args) => ip('netns', 'exec', ns, ...args);
const cleanup = () => {
  try { ip('netns', 'del', ns); } catch { /* not there */ }
  try { ip('link', 'del', hostIf); } catch { /* gone with the namespace */ }
};

cleanup();
ip('netns', 'add', ns);
ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
ip('link', 'set', nsIf, 'netns', ns);
ip('addr', 'add', `${hostIp}/24`, 'dev', hostIf);
ip('link', 'set', hostIf, 'up');
inNs('ip', 'addr', 'add', `10.232.${tag % 250}.2/24`, 'dev', nsIf);
inNs('ip', 'link', 'set', nsIf, 'up');
inNs('ip', 'link', 'set', 'lo', 'up');

const dir = mkdtempSync(join(tmpdir(), 'vigil-bench-'));
const config = loadConfig({
  env: {},
  overrides: {
    listeners: { c2s: { host: hostIp, port: 0 }, websocket: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } },
    storage: { path: join(dir, 'vigil.sqlite') },
    // A thousand clients from one namespace address: the per-address limits would refuse most of them.
    c2s: { allowPlainWithoutTls: true, rate: { stanzasPerSecond: 0, bytesPerSecond: 0 } },
    limits: { connectionsPerIp: 0, unauthenticatedPerIp: 0 },
    log: { level: 'silent' },
    watchdog: { c2s: { probeAfter: `${PROBE_AFTER}s`, probeTimeout: `${PROBE_TIMEOUT}s` } },
  },
});
const storage = new SqliteStorage(config.storage.path);
const { scram } = makeUserRecord('x', 'bench-secret', config.c2s.scramIterations);
for (let i = 0; i < N; i++) await storage.createUser({ username: `g${i}`, scram });
const server = new Server({ config, log: createLogger('silent'), storage });
await server.start();
const closes = [];
const original = server.sessionClosed.bind(server);
server.sessionClosed = (session, reason, unconfirmed) => {
  closes.push({ at: Date.now(), silent: session.closedAt - session.lastAliveAt, reason });
  original(session, reason, unconfirmed);
};

let clients;
try {
  clients = await startClients({ host: hostIp, port: server.addresses.c2s, count: N, prefix: 'g', netns: ns });
  const cutAt = Date.now();
  inNs('ip', 'link', 'set', nsIf, 'down');
  const deadline = cutAt + (PROBE_AFTER + PROBE_TIMEOUT + 30) * 1000;
  while (closes.length < N && Date.now() < deadline) await sleep(100);
  const sinceCut = closes.map((c) => (c.at - cutAt) / 1000).sort((a, b) => a - b);
  const silence = closes.map((c) => c.silent / 1000);
  await sleep(config.watchdog.c2s.closeTimeout + 1000);
  const lingering = execFileSync('ss', ['-tanH', 'state', 'all', `( sport = :${server.addresses.c2s} )`], { encoding: 'utf8' })
    .split('\n').filter((l) => /ESTAB|FIN-WAIT|CLOSE-WAIT|LAST-ACK|CLOSING/.test(l)).length;
  const bound = PROBE_AFTER + PROBE_TIMEOUT;
  console.log(JSON.stringify({
    bench: 'blackhole', clients: N, loginMs: Math.round(clients.ms), probeAfter: PROBE_AFTER, probeTimeout: PROBE_TIMEOUT,
    closed: closes.length, reasons: [...new Set(closes.map((c) => c.reason))],
    secondsFromCut: { first: sinceCut[0], median: median(sinceCut), last: sinceCut[sinceCut.length - 1] },
    silenceAtClose: { median: median(silence), max: Math.max(...silence) },
    overshootBeyondBoundSeconds: Math.round((Math.max(...silence) - bound) * 1000) / 1000,
    socketsLeftAfterCloseTimeout: lingering,
  }));
} finally {
  clients?.kill();
  await server.stop();
  await storage.close();
  rmSync(dir, { recursive: true, force: true });
  cleanup();
}
