// XEP-0198 figures, each on a fresh server, with the neutral harness's raw client (../shared/harness/lib,
// or VIGIL_HARNESS_LIB):
//   throughput  messages/s and p99 latency with stream management off, then on (receivers ack every <r/>),
//               PAIRS sender/receiver pairs windowed by receipts as in ../shared/harness/throughput.js
//   resume      time from a new TCP connection to <resumed/> (auth included) against a fresh login to bind
//   hibernated  RSS per hibernated session: SESSIONS clients enable SM, each gets 5 unacked messages, and vanish
//   node bench/sm.mjs [pairs=50] [seconds=20] [sessions=5000]
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { median, startServer } from './lib/server.mjs';

const PAIRS = Number(process.argv[2] ?? 50);
const SECONDS = Number(process.argv[3] ?? 20);
const SESSIONS = Number(process.argv[4] ?? 5000);
if (!(PAIRS > 0 && PAIRS <= 500 && SECONDS > 0 && SECONDS <= 120 && SESSIONS > 0 && SESSIONS <= 20000)) {
  console.error('usage: node bench/sm.mjs [pairs 1..500] [seconds 1..120] [sessions 1..20000]');
  process.exit(2);
}
const lib = process.env.VIGIL_HARNESS_LIB ?? fileURLToPath(new URL('../../shared/harness/lib/', import.meta.url));
if (!existsSync(`${lib}/xmpp.js`)) {
  console.error(`sm.mjs skipped: no harness client at ${lib} (set VIGIL_HARNESS_LIB)`);
  process.exit(0);
}
const { Session, attr, now } = createRequire(import.meta.url)(`${lib}/xmpp.js`);
const SM = 'urn:xmpp:sm:3';
const PASSWORD = 'bench-secret';
const deadline = Date.now() + 20 * 60_000;
setTimeout(() => {
  console.error('sm.mjs: 20 minutes passed, giving up');
  process.exit(3);
}, 20 * 60_000).unref();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function client(port, user, resource) {
  return new Session({ host: '127.0.0.1', port, domain: 'localhost', user, password: PASSWORD, resource, timeoutMs: 30_000 });
}

/** Logged in clients u{first}..; `sm`: enabled and resumable, answering every <r/>; resolves with their ids. */
async function open(port, first, count, sm, concurrency = 100) {
  const out = new Array(count);
  let next = 0;
  const one = async () => {
    while (next < count) {
      const i = next++;
      const s = client(port, `u${first + i}`, 'bench');
      await s.start();
      if (sm) await enableSm(s);
      out[i] = s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, one));
  return out;
}

/** <enable/>, then count what arrives (h) and answer each <r/>. Resolves with the resume id. */
function enableSm(s) {
  s.h = 0;
  return new Promise((resolve, reject) => {
    s.onStanzaHook = (name, st) => {
      if (name === 'enabled') resolve((s.previd = attr(st, 'id')));
      else if (name === 'failed') reject(new Error(`enable failed: ${st}`));
      else if (name === 'message' || name === 'presence' || name === 'iq') s.h++;
      else if (name === 'r') s.send(`<a xmlns='${SM}' h='${s.h}'/>`);
    };
    s.send(`<enable xmlns='${SM}' resume='true'/>`);
  });
}

async function throughput(sm) {
  const server = await startServer({ users: 2 * PAIRS });
  const sessions = await open(server.port, 0, 2 * PAIRS, sm);
  let measuring = false;
  let stopping = false;
  let delivered = 0;
  const lat = [];
  for (let p = 0; p < PAIRS; p++) {
    const [snd, rcv] = [sessions[2 * p], sessions[2 * p + 1]];
    let seq = 0;
    let outstanding = 0;
    const pump = () => {
      while (!stopping && outstanding < 10) {
        outstanding++;
        snd.message(rcv.jid, `t=${now().toFixed(3)} s=${++seq}`, `m${seq}`);
      }
    };
    rcv.onMessage = (st) => {
      const i = st.indexOf('<body>t=');
      if (i < 0) return;
      if (measuring) {
        delivered++;
        lat.push(now() - parseFloat(st.slice(i + 8, st.indexOf(' ', i + 8))));
      }
      const id = attr(st, 'id');
      rcv.message(snd.jid, null, `r${id}`, `<received xmlns='urn:xmpp:receipts' id='${id}'/>`);
    };
    snd.onMessage = (st) => {
      if (st.indexOf('urn:xmpp:receipts') < 0) return;
      outstanding--;
      pump();
    };
    pump();
  }
  await sleep(2000);
  const cpu0 = server.cpuSeconds();
  const t0 = now();
  measuring = true;
  await sleep(SECONDS * 1000);
  measuring = false;
  const sec = (now() - t0) / 1000;
  const cpu = server.cpuSeconds() - cpu0;
  stopping = true;
  await sleep(500);
  for (const s of sessions) s.destroy();
  await server.stop();
  lat.sort((a, b) => a - b);
  return { messagesPerSecond: Math.round(delivered / sec), p99LatencyMs: +pct(lat, 99).toFixed(2), serverCpuPercent: +((100 * cpu) / sec).toFixed(1) };
}

async function resumeLatency(count = 500) {
  const server = await startServer({ users: 2 * count });
  const fresh = [];
  for (let i = 0; i < count; i++) {
    const s = client(server.port, `u${count + i}`, 'bench');
    await s.start();
    fresh.push(s.tReady - s.tStart);
    s.destroy();
  }
  const sessions = await open(server.port, 0, count, true);
  for (const s of sessions) s.destroy();
  await waitHibernated(server, count);
  const resumed = [];
  for (const old of sessions) {
    const t0 = now();
    const elapsed = await resumeOne(server.port, old);
    resumed.push(elapsed ?? now() - t0);
  }
  await server.stop();
  fresh.sort((a, b) => a - b);
  resumed.sort((a, b) => a - b);
  return {
    sessions: count,
    resumeMs: { p50: +median(resumed).toFixed(2), p99: +pct(resumed, 99).toFixed(2) },
    freshLoginMs: { p50: +median(fresh).toFixed(2), p99: +pct(fresh, 99).toFixed(2) },
  };
}

/** A new connection: stream, PLAIN, then <resume/> instead of bind; ms from connect to <resumed/>. */
function resumeOne(port, old) {
  const s = client(port, old.o.user, 'bench');
  const t0 = now();
  return new Promise((resolve, reject) => {
    const original = s._stanza.bind(s);
    s._stanza = (st) => {
      const name = st.slice(1, st.search(/[\s/>]/));
      if (s.state === 'stream2' && /features/.test(name)) {
        s.state = 'resuming';
        s.send(`<resume xmlns='${SM}' previd='${old.previd}' h='${old.h}'/>`);
        return;
      }
      if (s.state === 'resuming') {
        if (name === 'resumed') {
          resolve(now() - t0);
          s.destroy();
        } else if (name === 'failed') reject(new Error(`resume failed: ${st}`));
        return;
      }
      original(st);
    };
    s.start().catch(reject);
  });
}

async function waitHibernated(server, n) {
  while (Date.now() < deadline) {
    const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
    const m = /^vigil_sm_sessions\{state="hibernated"\} (\d+)/m.exec(text);
    if (m && Number(m[1]) >= n) return;
    await sleep(200);
  }
  throw new Error('sessions never hibernated');
}

async function hibernatedRss() {
  const server = await startServer({ users: SESSIONS + 1 });
  const base = (await server.measure()).rss;
  const sender = (await open(server.port, SESSIONS, 1, false))[0];
  const sessions = await open(server.port, 0, SESSIONS, true);
  // Receivers stop answering <r/> before the messages come: five unacked each.
  for (const s of sessions) s.onStanzaHook = null;
  for (const s of sessions) for (let k = 0; k < 5; k++) sender.message(s.jid, `unacked ${k}`, `x${k}`);
  await new Promise((resolve) => {
    const id = 'done';
    sender._pending.set(id, resolve);
    sender.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
  });
  await sleep(1000);
  const connected = (await server.measure()).rss;
  for (const s of sessions) s.destroy();
  await waitHibernated(server, SESSIONS);
  const hibernated = (await server.measure()).rss;
  sender.destroy();
  await server.stop();
  const kib = (bytes) => +(bytes / 1024 / SESSIONS).toFixed(1);
  return { sessions: SESSIONS, unackedEach: 5, rssPerConnectedSmSessionKiB: kib(connected - base), rssPerHibernatedSessionKiB: kib(hibernated - base) };
}

const off = await throughput(false);
console.error(JSON.stringify({ sm: 'off', ...off }));
const on = await throughput(true);
console.error(JSON.stringify({ sm: 'on', ...on }));
const resume = await resumeLatency();
console.error(JSON.stringify(resume));
const rss = await hibernatedRss();
console.log(JSON.stringify({ bench: 'sm', pairs: PAIRS, seconds: SECONDS, throughputSmOff: off, throughputSmOn: on, resume, hibernated: rss }));
process.exit(0);
