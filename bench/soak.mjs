// Soak: N sessions chat and reconnect at random for SECONDS; reports server RSS over time, the event-loop
// delay p99 from /metrics, sessions lost and messages lost (both must be 0), and messages received twice
// (the no-stream-management heuristic repeats what a client may not have read). Uses the neutral
// harness's client engine (../shared/harness/lib/xmpp.js, or VIGIL_HARNESS_DIR). Loopback only, bounded.
//   node bench/soak.mjs [sessions=5000] [seconds=600]
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { sleep, startServer } from './lib/server.mjs';

const N = Number(process.argv[2] ?? 5000);
const SECONDS = Number(process.argv[3] ?? 600);
if (!(N >= 10 && N <= 19000 && SECONDS > 0 && SECONDS <= 3600)) {
  console.error('usage: node bench/soak.mjs [sessions 10..19000] [seconds 1..3600]');
  process.exit(2);
}
const dir = process.env.VIGIL_HARNESS_DIR ?? fileURLToPath(new URL('../../shared/harness/', import.meta.url));
if (!existsSync(`${dir}/lib/xmpp.js`)) {
  console.error(`soak.mjs skipped: no harness at ${dir} (set VIGIL_HARNESS_DIR)`);
  process.exit(0);
}
const { Session } = createRequire(import.meta.url)(`${dir}/lib/xmpp.js`);

const server = await startServer({ users: N, config: { watchdog: { c2s: { probeAfter: '60s', probeTimeout: '20s' } } } });
const rssMiB = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))[1]) / 1024);
const loopP99 = async () => {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const m = /^vigil_event_loop_delay_seconds\{quantile="0.99"\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : NaN;
};

const sent = new Map(); // id -> recipient index
const received = new Map(); // id -> times
const clients = new Array(N);
let reconnects = 0;
let failedLogins = 0;

function open(i) {
  const s = new Session({ host: '127.0.0.1', port: server.port, domain: 'localhost', user: `u${i}`, password: 'bench-secret', resource: 'soak', session: 'offered', timeoutMs: 30_000 });
  s.onMessage = (stanza) => {
    const m = /<body>soak:(\d+)<\/body>/.exec(stanza);
    if (m) received.set(m[1], (received.get(m[1]) ?? 0) + 1);
  };
  clients[i] = s;
  return s.start().catch(() => {
    failedLogins++;
  });
}

const t0 = Date.now();
for (let i = 0; i < N; i += 500) await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => open(i + k)));
console.error(`${N} sessions up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const samples = [];
let seq = 0;
const end = Date.now() + SECONDS * 1000;
let nextSample = Date.now();
while (Date.now() < end) {
  // About 1 % of the sessions send a message each 100 ms, and 0.1 % reconnect.
  for (let k = 0; k < Math.ceil(N / 100); k++) {
    const from = clients[Math.floor(Math.random() * N)];
    const to = Math.floor(Math.random() * N);
    if (from.state !== 'ready' || from.closed) continue;
    const id = String(++seq);
    sent.set(id, to);
    from.message(`u${to}@localhost`, `soak:${id}`, `s${id}`);
  }
  for (let k = 0; k < Math.ceil(N / 1000); k++) {
    const i = Math.floor(Math.random() * N);
    if (clients[i].state !== 'ready') continue;
    reconnects++;
    clients[i].close();
    setTimeout(() => void open(i), 200 + Math.random() * 1000);
  }
  if (Date.now() >= nextSample) {
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rssMiB: rssMiB(), loopP99ms: Math.round((await loopP99()) * 1e4) / 10 });
    console.error(JSON.stringify(samples[samples.length - 1]));
    nextSample += 10_000;
  }
  await sleep(100);
}
// Everyone online again, then let offline messages arrive.
await sleep(3000);
for (let i = 0; i < N; i++) if (clients[i].closed || clients[i].state !== 'ready') await open(i);
await sleep(5000);

let lost = 0;
let twice = 0;
for (const id of sent.keys()) {
  const n = received.get(id) ?? 0;
  if (n === 0) lost++;
  else if (n > 1) twice++;
}
const live = (await server.measure()).sessions;
for (const c of clients) c.destroy();
await server.stop();
const warm = samples.filter((s) => s.t >= 60);
console.log(JSON.stringify({
  bench: 'soak', sessions: N, seconds: SECONDS, messages: sent.size, messagesLost: lost, messagesTwice: twice, reconnects, failedLogins,
  sessionsLost: N - live, rssMiB: { first: samples[0]?.rssMiB, warmMin: Math.min(...warm.map((s) => s.rssMiB)), warmMax: Math.max(...warm.map((s) => s.rssMiB)), last: samples.at(-1)?.rssMiB },
  loopDelayP99ms: { median: warm.map((s) => s.loopP99ms).sort((a, b) => a - b)[Math.floor(warm.length / 2)], max: Math.max(...samples.map((s) => s.loopP99ms)) },
}));
process.exit(0);
