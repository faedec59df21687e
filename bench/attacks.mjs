// Issue 12's attacks, each on a fresh server, while a healthy pair of users ping-pong messages: the server's
// peak RSS, the healthy pair's worst round trip, and how the attacker ended. Loopback only, every loop
// bounded. Uses the neutral harness's client engine (../shared/harness/lib/xmpp.js, or VIGIL_HARNESS_DIR).
//   node bench/attacks.mjs [attack=all] [--limit-loopback]
// --limit-loopback sets limits.exemptLoopback false, so the per-session rates apply to these loopback clients.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { sleep, startServer } from './lib/server.mjs';

const args = process.argv.slice(2);
const only = args.find((a) => !a.startsWith('--')) ?? 'all';
const limitLoopback = args.includes('--limit-loopback');
const dir = process.env.VIGIL_HARNESS_DIR ?? fileURLToPath(new URL('../../shared/harness/', import.meta.url));
if (!existsSync(`${dir}/lib/xmpp.js`)) {
  console.error(`attacks.mjs skipped: no harness at ${dir} (set VIGIL_HARNESS_DIR)`);
  process.exit(0);
}
const { Session } = createRequire(import.meta.url)(`${dir}/lib/xmpp.js`);
const PASSWORD = 'bench-secret';

async function login(server, user, resource = 'r', presence = true) {
  const s = new Session({ host: '127.0.0.1', port: server.port, domain: 'localhost', user, password: PASSWORD, resource, session: 'offered', timeoutMs: 30_000, presence });
  await s.start();
  return s;
}

/** A ping-pong of messages between u0 and u1, one in flight, 20 ms apart; the worst round trip is what users feel. */
async function healthyPair(server) {
  const a = await login(server, 'u0');
  const b = await login(server, 'u1');
  b.onMessage = (st) => {
    const m = /<body>hp:(\d+)<\/body>/.exec(st);
    if (m) b.message(a.jid, `hp:${m[1]}`, `r${m[1]}`);
  };
  const state = { worstMs: 0, rounds: 0, stopped: false };
  let sentAt = 0;
  let seq = 0;
  const next = () => {
    if (state.stopped) return;
    sentAt = performance.now();
    a.message(b.jid, `hp:${++seq}`, `p${seq}`);
  };
  a.onMessage = (st) => {
    if (!/<body>hp:/.test(st)) return;
    state.rounds++;
    state.worstMs = Math.max(state.worstMs, performance.now() - sentAt);
    setTimeout(next, 20);
  };
  next();
  // A round that never comes back counts too.
  const watch = setInterval(() => (state.worstMs = Math.max(state.worstMs, performance.now() - sentAt)), 50);
  return {
    state,
    stop() {
      state.stopped = true;
      clearInterval(watch);
      a.destroy();
      b.destroy();
    },
  };
}

function rssSampler(pid) {
  let peak = 0;
  const read = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  const base = read();
  const timer = setInterval(() => (peak = Math.max(peak, read())), 50);
  return { base, stop: () => (clearInterval(timer), Math.round(Math.max(peak, read()) / 1048576)) };
}

async function metric(server, name, labels = '') {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}` : ''}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** Run one attack on a fresh server; `attack` returns what to report about the attacker. */
async function run(name, config, attack, seconds) {
  const server = await startServer({ users: 10, prefix: 'u', password: PASSWORD, config: { ...config, ...(limitLoopback ? { limits: { exemptLoopback: false } } : {}) } });
  const pair = await healthyPair(server);
  await sleep(500);
  const rss = rssSampler(server.pid);
  const outcome = await attack(server);
  await sleep(seconds * 1000);
  const peakMiB = rss.stop();
  pair.stop();
  const closed = {};
  for (const reason of ['send-queue-overflow', 'write-stall', 'policy-violation', 'peer-closed']) closed[reason] = await metric(server, 'vigil_sessions_closed_total', `kind="c2s",reason="${reason}"`);
  await server.stop();
  const result = { bench: 'attack', attack: name, limitLoopback, rssBaseMiB: Math.round(rss.base / 1048576), rssPeakMiB: peakMiB, healthyWorstRttMs: Math.round(pair.state.worstMs), healthyRounds: pair.state.rounds, ...(await outcome), closed };
  console.log(JSON.stringify(result));
}

const attacks = {
  // 1. 1,000 roster items of 2 KB, 600 pipelined roster gets in one write, never read.
  roster: () => run('roster-amplification', {}, async (server) => {
    const s = await login(server, 'u2', 'r', false);
    const name = 'n'.repeat(1000); // names and groups are at most 1023 bytes each: 2 KB an item with one group
    for (let i = 0; i < 1000; i += 50) {
      let batch = '';
      for (let k = i; k < i + 50; k++) batch += `<iq type='set' id='s${k}'><query xmlns='jabber:iq:roster'><item jid='c${k}@example.org' name='${name}'><group>${name}</group></item></query></iq>`;
      s.send(batch);
      await sleep(50);
    }
    await sleep(1000);
    s.sock.pause();
    let gets = '';
    for (let i = 0; i < 600; i++) gets += `<iq type='get' id='g${i}'><query xmlns='jabber:iq:roster'/></iq>`;
    s.send(gets);
    return {};
  }, 15),
  // 2. 200 KB messages to a receiver that does not read.
  sendQueue: () => run('send-queue', {}, async (server) => {
    const receiver = await login(server, 'u3');
    const sender = await login(server, 'u4');
    receiver.sock.pause();
    const body = 'x'.repeat(200 * 1024);
    for (let i = 0; i < 300; i++) {
      sender.send(`<message to='${receiver.jid}' type='chat'><body>${body}</body></message>`);
      if (i % 20 === 0) await sleep(10);
    }
    return {};
  }, 10),
  // 3. 1,000 messages of 250 KB stored offline for a victim, who then logs in.
  offline: () => run('offline-poison', {}, async (server) => {
    const sender = await login(server, 'u5');
    const body = 'x'.repeat(250 * 1024);
    let refused = 0;
    sender.onStanzaHook = (name, st) => name === 'message' && /type=['"]error/.test(st) && refused++;
    for (let i = 0; i < 1000; i++) {
      sender.send(`<message to='u6@localhost' type='chat'><body>${i} ${body}</body></message>`);
      if (i % 10 === 0) await sleep(20);
    }
    await sleep(3000);
    const victim = await login(server, 'u6');
    // What was stored, about 250 KB a message, reaches the victim, however its client splits it.
    const owed = (1000 - refused) * 250 * 1024;
    for (let i = 0; i < 300 && victim.bytesIn < owed && !victim.closed; i++) await sleep(100);
    return { refused, victimReceivedMiB: Math.round(victim.bytesIn / 1048576), owedMiB: Math.round(owed / 1048576), victimClosed: victim.closed };
  }, 2),
  // 6. A flood of 200,000 messages from one client to a receiver that reads.
  flood: () => run('flood', {}, async (server) => {
    const receiver = await login(server, 'u7');
    const sender = await login(server, 'u8');
    let got = 0;
    receiver.onMessage = () => got++;
    for (let i = 0; i < 200_000; i += 1000) {
      let batch = '';
      for (let k = i; k < i + 1000; k++) batch += `<message to='${receiver.jid}' type='chat'><body>${k}</body></message>`;
      sender.send(batch);
      await sleep(1);
    }
    return { get receiverGot() { return got; } };
  }, 10),
};

for (const [key, attack] of Object.entries(attacks)) if (only === 'all' || only === key) await attack();
process.exit(0);
