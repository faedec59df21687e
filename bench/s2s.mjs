// Federation figures: Vigil servers on loopback, each its own domain, routed to one another by s2s.routes,
// with the neutral harness's raw client (../shared/harness/lib, or VIGIL_HARNESS_LIB):
//   first       ms from a client on a.test sending a message to a user on a domain a.test has no stream to,
//               until that user has it: the route, TCP, STARTTLS both ways and dialback (the new domain's
//               server connects back to a.test to verify), with self-signed EC certificates; then the same
//               with certificates from a throwaway CA (openssl CLI) and dialback off, so SASL EXTERNAL.
//               One a.test server per mode, warmed by one new domain not counted (reported as coldPairMs:
//               both servers fresh); then a fresh server for each of DOMAINS new domains b1.test, b2.test...
//   throughput  messages/s over one federated link: PAIRS senders on a.test, each to a receiver on b.test,
//               windowed by receipts as in ../shared/harness/throughput.js, until COUNT messages arrived
//               (at most SECONDS); p50/p99 latency, both servers' CPU; beside it the same load on one server.
//               Also each server's RSS after a full GC at the end of the window: what a busy link holds.
//   node bench/s2s.mjs [domains=20] [pairs=50] [count=300000] [seconds=60]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, median, sleep, startServer } from './lib/server.mjs';

const DOMAINS = Number(process.argv[2] ?? 20);
const PAIRS = Number(process.argv[3] ?? 50);
const COUNT = Number(process.argv[4] ?? 300_000);
const SECONDS = Number(process.argv[5] ?? 60);
if (!(DOMAINS > 0 && DOMAINS <= 100 && PAIRS > 0 && PAIRS <= 500 && COUNT > 0 && COUNT <= 1_000_000 && SECONDS > 0 && SECONDS <= 300)) {
  console.error('usage: node bench/s2s.mjs [domains 1..100] [pairs 1..500] [count 1..1000000] [seconds 1..300]');
  process.exit(2);
}
const lib = process.env.VIGIL_HARNESS_LIB ?? fileURLToPath(new URL('../../shared/harness/lib/', import.meta.url));
if (!existsSync(`${lib}/xmpp.js`)) {
  console.error(`s2s.mjs skipped: no harness client at ${lib} (set VIGIL_HARNESS_LIB)`);
  process.exit(0);
}
const { Session, attr, now } = createRequire(import.meta.url)(`${lib}/xmpp.js`);
const { generate } = await import('selfsigned');
const PASSWORD = 'bench-secret';
const WINDOW = 10;
setTimeout(() => {
  console.error('s2s.mjs: 15 minutes passed, giving up');
  process.exit(3);
}, 15 * 60_000).unref();
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (x, d = 1) => +x.toFixed(d);
const work = mkdtempSync(join(tmpdir(), 'vigil-bench-s2s-'));

function client(port, domain, user) {
  return new Session({ host: '127.0.0.1', port, domain, user, password: PASSWORD, resource: 'bench', timeoutMs: 30_000 });
}

/** Logged in clients prefix0.. on one server, `concurrency` logins at a time. */
async function open(port, domain, first, count, concurrency = 100) {
  const out = new Array(count);
  let next = 0;
  const one = async () => {
    while (next < count) {
      const i = next++;
      const s = client(port, domain, `u${first + i}`);
      await s.start();
      out[i] = s;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, one));
  return out;
}

async function metrics(server) {
  return (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
}
function metric(text, name, labels = '') {
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

// Certificates: self-signed EC P-256 ones (as Vigil generates, so peers only accept them through dialback),
// or leaves of a throwaway CA as test/helpers/test-ca.ts makes them with the openssl CLI.

async function selfSigned(domain) {
  const pems = await generate([{ name: 'commonName', value: domain }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: domain }] }] });
  const paths = { cert: join(work, `self-${domain}.crt`), key: join(work, `self-${domain}.key`) };
  writeFileSync(paths.cert, pems.cert);
  writeFileSync(paths.key, pems.private, { mode: 0o600 });
  return paths;
}

function openssl(args) {
  try {
    execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() || err.message}`, { cause: err });
  }
}
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
function makeCa() {
  const caPath = join(work, 'ca.crt');
  const caKey = join(work, 'ca.key');
  openssl(['req', '-x509', '-new', ...EC, '-keyout', caKey, '-out', caPath, '-days', '30', '-subj', '/CN=Vigil Bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return {
    caPath,
    issue(domain) {
      const base = join(work, `ca-${domain}`);
      const paths = { cert: `${base}.crt`, key: `${base}.key` };
      writeFileSync(`${base}.ext`, [`subjectAltName = DNS:${domain}`, 'extendedKeyUsage = serverAuth,clientAuth', 'keyUsage = critical,digitalSignature',
        'basicConstraints = critical,CA:FALSE', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid', ''].join('\n'));
      openssl(['req', '-new', ...EC, '-keyout', paths.key, '-out', `${base}.csr`, '-subj', `/CN=${domain}`]);
      openssl(['x509', '-req', '-in', `${base}.csr`, '-CA', caPath, '-CAkey', caKey, '-set_serial', String(Date.now()), '-days', '30', '-extfile', `${base}.ext`, '-out', paths.cert]);
      return paths;
    },
  };
}

/** A Vigil server for `domain`, federating with its certificate, its s2s listener on `s2sPort`. */
function federated(domain, s2sPort, tls, s2s, users) {
  return startServer({ federate: true, users, config: { domain, listeners: { s2s: { port: s2sPort } }, tls, s2s } });
}

/** The first message from `from` to `to`, sent now; resolves with ms until `to` has it (an error bounced back rejects). */
function deliverFirst(from, to, id) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id}: not delivered within 30 s`)), 30_000);
    to.onMessage = (st) => {
      if (st.indexOf(`<body>first ${id}</body>`) < 0) return;
      clearTimeout(timer);
      resolve(now() - t0);
    };
    from.onMessage = (st) => {
      if (attr(st, 'type') !== 'error') return;
      clearTimeout(timer);
      const text = /<text[^>]*>([^<]*)<\/text>/.exec(st)?.[1];
      reject(new Error(`${id} bounced${text ? `: ${text}` : `: ${st.slice(0, 400)}`}`));
    };
    const t0 = now();
    from.message(to.jid, `first ${id}`, id);
  });
}

/**
 * `external` false: self-signed certificates, dialback on (the default). True: CA certificates, s2s.ca
 * trusting the CA, dialback off, so nothing but SASL EXTERNAL can authenticate either stream.
 */
async function firstDelivery(external) {
  const ca = external ? makeCa() : undefined;
  const certificate = (domain) => (ca ? ca.issue(domain) : selfSigned(domain));
  const aPort = await freePort();
  const ports = [];
  for (let i = 0; i <= DOMAINS; i++) ports.push(await freePort());
  const routes = [`a.test=127.0.0.1:${aPort}`, ...ports.map((p, i) => `b${i}.test=127.0.0.1:${p}`)].join(', ');
  // A stanza that cannot get through bounces after 10 s (not 60) with the reason: the report can say why.
  const queue = { timeout: '10s' };
  const s2s = external ? { routes, ca: ca.caPath, dialback: false, queue } : { routes, queue };
  const a = await federated('a.test', aPort, await certificate('a.test'), s2s, 1);
  const [alice] = await open(a.port, 'a.test', 0, 1);
  const times = [];
  let cold = 0;
  let connectBacks = 0;
  let failure;
  for (let i = 0; i <= DOMAINS && !failure; i++) {
    const domain = `b${i}.test`;
    const b = await federated(domain, ports[i], await certificate(domain), s2s, 1);
    const [bob] = await open(b.port, domain, 0, 1);
    const before = metric(await metrics(a), 'vigil_connections_accepted_total', '{kind="s2sIn"}');
    try {
      const ms = await deliverFirst(alice, bob, `f${i}`);
      // Dialback: b's server connected back to a.test (to verify, and for its own stream) before delivering.
      connectBacks += metric(await metrics(a), 'vigil_connections_accepted_total', '{kind="s2sIn"}') - before;
      if (i === 0) cold = ms;
      else times.push(ms);
    } catch (err) {
      failure = err.message;
    }
    bob.destroy();
    await b.stop();
  }
  const text = await metrics(a);
  const connects = metric(text, 'vigil_s2s_connect_seconds_count');
  const serverConnectMs = connects ? (1000 * metric(text, 'vigil_s2s_connect_seconds_sum')) / connects : null;
  alice.destroy();
  await a.stop();
  const auth = external ? 'sasl-external' : 'dialback';
  if (failure) return { auth, domains: DOMAINS, failed: failure };
  times.sort((x, y) => x - y);
  return {
    auth,
    domains: DOMAINS,
    firstDeliveryMs: { p50: round(median(times)), p90: round(pct(times, 90)), min: round(times[0]), max: round(times[times.length - 1]) },
    coldPairMs: round(cold),
    // a.test's own view (vigil_s2s_connect_seconds): first stanza for the domain to its stream being ready, warm-up included.
    serverConnectMsMean: serverConnectMs === null ? null : round(serverConnectMs),
    connectBacksPerDomain: round(connectBacks / (DOMAINS + 1), 2),
  };
}

/**
 * PAIRS sender -> receiver pairs, each windowed by receipts (at most WINDOW unacknowledged), as in
 * ../shared/harness/throughput.js; measured from 2 s after the start until COUNT messages arrived or
 * SECONDS passed. `federated`: senders on a.test, receivers on b.test; else both on one server.
 */
async function throughput(federatedLink) {
  let servers;
  let senders;
  let receivers;
  if (federatedLink) {
    const [aPort, bPort] = [await freePort(), await freePort()];
    const s2s = { routes: `a.test=127.0.0.1:${aPort}, b.test=127.0.0.1:${bPort}` };
    const a = await federated('a.test', aPort, await selfSigned('a.test'), s2s, PAIRS);
    const b = await federated('b.test', bPort, await selfSigned('b.test'), s2s, PAIRS);
    servers = [a, b];
    senders = await open(a.port, 'a.test', 0, PAIRS);
    receivers = await open(b.port, 'b.test', 0, PAIRS);
    // The link first (both streams up), so that what is measured is the link and not its setup.
    await deliverFirst(senders[0], receivers[0], 'link');
  } else {
    const a = await startServer({ users: 2 * PAIRS, config: { domain: 'a.test' } });
    servers = [a];
    senders = await open(a.port, 'a.test', 0, PAIRS);
    receivers = await open(a.port, 'a.test', PAIRS, PAIRS);
  }
  let measuring = false;
  let stopping = false;
  let delivered = 0;
  let deliveredTotal = 0;
  let sent = 0;
  let errors = 0;
  const lat = new Float64Array(COUNT);
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  for (let p = 0; p < PAIRS; p++) {
    const [snd, rcv] = [senders[p], receivers[p]];
    let seq = 0;
    let outstanding = 0;
    const pump = () => {
      while (!stopping && outstanding < WINDOW) {
        outstanding++;
        sent++;
        snd.message(rcv.jid, `t=${now().toFixed(3)} s=${++seq}`, `m${seq}`);
      }
    };
    rcv.onMessage = (st) => {
      const i = st.indexOf('<body>t=');
      if (i < 0) return;
      deliveredTotal++;
      if (measuring) {
        lat[delivered++] = now() - parseFloat(st.slice(i + 8, st.indexOf(' ', i + 8)));
        if (delivered === COUNT) {
          measuring = false;
          finish();
        }
      }
      const id = attr(st, 'id');
      rcv.message(snd.jid, null, `r${id}`, `<received xmlns='urn:xmpp:receipts' id='${id}'/>`);
    };
    snd.onMessage = (st) => {
      if (attr(st, 'type') === 'error') errors++;
      if (st.indexOf('urn:xmpp:receipts') < 0) return;
      outstanding--;
      pump();
    };
    pump();
  }
  await sleep(2000);
  const cpu0 = servers.map((s) => s.cpuSeconds());
  const client0 = process.cpuUsage();
  const t0 = now();
  measuring = true;
  await Promise.race([done, sleep(SECONDS * 1000)]);
  measuring = false;
  const sec = (now() - t0) / 1000;
  const cpu = servers.map((s, i) => s.cpuSeconds() - cpu0[i]);
  const clientCpu = process.cpuUsage(client0);
  // Still under load: what the servers hold for a busy link (for s2s, what the peer has not confirmed yet).
  const rss = [];
  for (const s of servers) rss.push(round((await s.measure()).rss / 1048576));
  stopping = true;
  // What is in flight arrives (or not) before the count of what never did.
  for (let i = 0; i < 50 && deliveredTotal < sent; i++) await sleep(100);
  for (const s of [...senders, ...receivers]) s.destroy();
  for (const s of servers) await s.stop();
  const l = lat.subarray(0, delivered).sort();
  const cpuPct = (c) => round((100 * c) / sec);
  return {
    link: federatedLink ? 'a.test -> b.test (dialback, TLS)' : 'one server',
    pairs: PAIRS,
    window: WINDOW,
    delivered,
    seconds: round(sec, 2),
    messagesPerSecond: Math.round(delivered / sec),
    latencyMs: { p50: round(pct(l, 50), 2), p99: round(pct(l, 99), 2), max: round(l[l.length - 1], 2) },
    serverCpuPercent: federatedLink ? { a: cpuPct(cpu[0]), b: cpuPct(cpu[1]) } : { a: cpuPct(cpu[0]) },
    serverRssMiB: federatedLink ? { a: rss[0], b: rss[1] } : { a: rss[0] },
    clientCpuPercent: cpuPct((clientCpu.user + clientCpu.system) / 1e6),
    lostOrPending: sent - deliveredTotal,
    errorsBounced: errors,
  };
}

const result = { bench: 's2s', domains: DOMAINS, pairs: PAIRS, count: COUNT, maxSeconds: SECONDS };
try {
  result.firstDialback = await firstDelivery(false);
  console.error(JSON.stringify(result.firstDialback));
  result.firstExternal = await firstDelivery(true);
  console.error(JSON.stringify(result.firstExternal));
  result.throughputFederated = await throughput(true);
  console.error(JSON.stringify(result.throughputFederated));
  result.throughputOneServer = await throughput(false);
  console.error(JSON.stringify(result.throughputOneServer));
} finally {
  rmSync(work, { recursive: true, force: true });
}

// The figures as a small table (stderr), then the one JSON line `npm run bench` collects.
const both = (byServer) => Object.entries(byServer).map(([k, v]) => `${k} ${v}`).join(', ');
const rows = [
  ['first delivery, new domain', 'p50 ms', 'p90 ms', 'cold pair ms', 'connect-backs'],
  ...[result.firstDialback, result.firstExternal].map((f) => (f.failed ? [`  ${f.auth}: FAILED ${f.failed.slice(0, 300)}`] : [`  ${f.auth} (${f.domains} domains)`, f.firstDeliveryMs.p50, f.firstDeliveryMs.p90, f.coldPairMs, f.connectBacksPerDomain])),
  ['throughput', 'msg/s', 'p50 ms', 'p99 ms', 'server CPU %', 'client CPU %', 'server RSS MiB', 'lost'],
  ...[result.throughputFederated, result.throughputOneServer].map((t) => [`  ${t.link}`, t.messagesPerSecond, t.latencyMs.p50, t.latencyMs.p99, both(t.serverCpuPercent), t.clientCpuPercent, both(t.serverRssMiB), t.lostOrPending]),
];
const widths = [];
for (const r of rows.filter((row) => row.length > 1)) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, String(c).length)));
for (const r of rows) console.error(r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  '));
console.log(JSON.stringify(result));
process.exit(0);
