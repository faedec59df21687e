// SCRAM login load for bench/scram.mjs: COUNT clients, at most CONCURRENCY in flight, each opens a stream,
// optionally STARTTLS, authenticates with SCRAM-SHA-256 (SCRAM-SHA-1 when the server offers no SHA-256),
// binds, opens the session if advertised, sends initial presence and pings the domain; a login counts
// when that ping's result arrives (so the server has handled the presence too), as in the harness's idle.js.
// Then every stream is closed and one JSON line is printed. Node built-ins only, no build.
// MODE prime: only fetch each account's salt (abort after the server's challenge) and write the derived keys
// to CACHE; MODE login with a CACHE reads them back, so a timed run against a server that salts every account
// apart measures the server rather than the client's PBKDF2 (both share this box's cores).
// usage: node scram-clients.cjs HOST PORT DOMAIN COUNT USER_PATTERN PASSWORD FIRST CONCURRENCY TLS(0|1) PID MODE(login|prime) [CACHE]
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const { performance } = require('node:perf_hooks');
const tls = require('node:tls');

const [host, port, domain, count, userPattern, password, first, concurrency, useTls, pid, mode, cacheFile] = process.argv.slice(2);
const PRIME = mode === 'prime';
const N = Number(count);
const LOGIN_TIMEOUT_MS = 60_000;
const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'>`;
const MECHS = { 'SCRAM-SHA-256': ['sha256', 32], 'SCRAM-SHA-1': ['sha1', 20] };

// RFC 5802 §5.1 lets a client keep ClientKey/ServerKey per (password, salt, iterations): without it the load
// generator would spend as much on PBKDF2 as the server and share its two cores.
const keys = new Map(
  !PRIME && cacheFile && fs.existsSync(cacheFile)
    ? JSON.parse(fs.readFileSync(cacheFile, 'utf8')).map(([id, k]) => [id, Object.fromEntries(Object.entries(k).map(([n, hex]) => [n, Buffer.from(hex, 'hex')]))])
    : [],
);
const cached = keys.size;
function derive(hash, len, salt, iterations) {
  const id = `${hash} ${salt} ${iterations}`;
  let k = keys.get(id);
  if (!k) {
    const salted = crypto.pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, len, hash);
    const clientKey = crypto.createHmac(hash, salted).update('Client Key').digest();
    k = { clientKey, storedKey: crypto.createHash(hash).update(clientKey).digest(), serverKey: crypto.createHmac(hash, salted).update('Server Key').digest() };
    keys.set(id, k);
  }
  return k;
}

const b64 = (s) => Buffer.from(s).toString('base64');
const text = (el) => el.slice(el.indexOf('>') + 1, el.lastIndexOf('<'));
const attr = (tag, name) => new RegExp(`\\s${name}=(['"])([^'"]*)\\1`).exec(tag)?.[2];
// The first element named `name` (prefixed or not) in buf, whole, or undefined while it is incomplete.
function element(buf, name) {
  const m = new RegExp(`<(?:[\\w-]+:)?${name}[\\s/>]`).exec(buf);
  if (!m) return undefined;
  const openEnd = buf.indexOf('>', m.index);
  if (openEnd < 0) return undefined;
  if (buf[openEnd - 1] === '/') return buf.slice(m.index, openEnd + 1);
  const tag = m[0].slice(1, -1);
  const close = buf.indexOf(`</${tag}>`, openEnd);
  return close < 0 ? undefined : buf.slice(m.index, close + tag.length + 3);
}

const used = {};
function login(i) {
  const user = userPattern.split('%d').join(String(i));
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let socket = net.connect({ host, port: Number(port) });
    let buf = '';
    let stage = 'features';
    let secured = useTls !== '1';
    let scram;
    const timer = setTimeout(() => fail('login timeout'), LOGIN_TIMEOUT_MS);
    const fail = (why) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(why.slice(0, 120)));
    };
    const send = (s) => socket.write(s);
    const restart = () => {
      buf = '';
      stage = 'features';
      send(header);
    };
    const wire = (s) => {
      s.setEncoding('utf8');
      s.on('error', (err) => (stage === 'ready' ? undefined : fail(err.message)));
      s.on('close', () => stage !== 'ready' && fail('closed by server'));
      s.on('data', onData);
    };
    const onFeatures = (features) => {
      if (!secured) {
        if (!/<starttls/.test(features)) return fail('STARTTLS not offered');
        stage = 'proceed';
        return send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      }
      if (!scram) {
        const offered = [...features.matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
        const mech = ['SCRAM-SHA-256', 'SCRAM-SHA-1'].find((m) => offered.includes(m));
        if (!mech) return fail(`no SCRAM mechanism in ${offered.join(' ')}`);
        const bare = `n=${user},r=${crypto.randomBytes(18).toString('base64')}`;
        scram = { mech, bare };
        stage = 'challenge';
        return send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mech}'>${b64(`n,,${bare}`)}</auth>`);
      }
      // As the harness does by default: open the session whenever it is advertised, optional or not.
      scram.session = element(features, 'session') !== undefined;
      stage = 'bind';
      send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    };
    const onChallenge = (challenge) => {
      const serverFirst = Buffer.from(text(challenge), 'base64').toString();
      const a = Object.fromEntries(serverFirst.split(',').map((kv) => [kv[0], kv.slice(2)]));
      const [hash, len] = MECHS[scram.mech];
      const k = derive(hash, len, a.s, Number(a.i));
      if (PRIME) {
        clearTimeout(timer);
        stage = 'ready';
        send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        return resolve({ socket, ms: performance.now() - t0 });
      }
      const withoutProof = `c=${b64('n,,')},r=${a.r}`;
      const authMessage = `${scram.bare},${serverFirst},${withoutProof}`;
      const signature = crypto.createHmac(hash, k.storedKey).update(authMessage).digest();
      scram.expect = `v=${crypto.createHmac(hash, k.serverKey).update(authMessage).digest('base64')}`;
      stage = 'success';
      const proof = Buffer.from(k.clientKey.map((b, j) => b ^ signature[j])).toString('base64');
      send(`<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${b64(`${withoutProof},p=${proof}`)}</response>`);
    };
    const iqResult = (name, next) => {
      const el = element(buf, 'iq');
      if (!el) return false;
      if (attr(el.slice(0, el.indexOf('>')), 'type') !== 'result') {
        fail(`${name} failed: ${el}`);
        return false;
      }
      buf = buf.slice(buf.indexOf(el) + el.length);
      next();
      return true;
    };
    function onData(data) {
      buf += data;
      for (;;) {
        if (stage === 'features') {
          const f = element(buf, 'features');
          if (!f) return;
          buf = '';
          onFeatures(f);
        } else if (stage === 'proceed') {
          if (!/<proceed/.test(buf)) return /<failure/.test(buf) ? fail('STARTTLS failed') : undefined;
          socket.removeAllListeners('data');
          socket.removeAllListeners('close');
          socket = tls.connect({ socket, servername: domain, rejectUnauthorized: false }, () => {
            secured = true;
            restart();
          });
          wire(socket);
          return;
        } else if (stage === 'challenge' || stage === 'success') {
          const el = element(buf, 'challenge') ?? element(buf, 'success') ?? element(buf, 'failure');
          if (!el) return;
          buf = '';
          if (el.startsWith('<failure')) return fail(`auth failed: ${el}`);
          if (el.startsWith('<challenge') && stage === 'challenge') onChallenge(el);
          else if (el.startsWith('<success') && stage === 'success') {
            // ejabberd and Prosody carry the server signature in <success/>; check it when it is there.
            const v = Buffer.from(text(el), 'base64').toString();
            if (v && v !== scram.expect) return fail('bad server signature');
            restart();
          } else return fail(`unexpected ${el}`);
          return;
        } else if (stage === 'bind') {
          if (!iqResult('bind', () => {
            if (scram.session) {
              stage = 'session';
              send("<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
            } else online();
          })) return;
        } else if (stage === 'session') {
          if (!iqResult('session', online)) return;
        } else if (stage === 'online') {
          const m = /<iq[^>]*\sid=(['"])r\1[^>]*>/.exec(buf);
          if (!m) return answerPings();
          clearTimeout(timer);
          stage = 'ready';
          used[scram.mech] = (used[scram.mech] ?? 0) + 1;
          resolve({ socket, ms: performance.now() - t0 });
          return answerPings();
        } else return answerPings();
      }
    }
    const online = () => {
      stage = 'online';
      send(`<presence/><iq type='get' id='r' to='${domain}'><ping xmlns='urn:xmpp:ping'/></iq>`);
    };
    // Servers ping idle sessions (ejabberd closes the unanswering ones) while the other logins go on.
    const answerPings = () => {
      for (const m of buf.matchAll(/<iq\s[^>]*>\s*<ping xmlns=['"]urn:xmpp:ping['"]\s*\/>\s*<\/iq>/g)) {
        const tag = m[0].slice(0, m[0].indexOf('>'));
        if (attr(tag, 'type') === 'get') send(`<iq type='result' id='${attr(tag, 'id')}' to='${attr(tag, 'from') ?? domain}'/>`);
      }
      const end = buf.lastIndexOf('>');
      if (end >= 0) buf = buf.slice(end + 1);
    };
    socket.on('connect', () => send(header));
    wire(socket);
  });
}

const cpu = () => {
  if (!Number(pid)) return null;
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function main() {
  const sockets = [];
  const latencies = [];
  const errors = {};
  let next = Number(first);
  const end = Number(first) + N;
  const cpu0 = cpu();
  const t0 = performance.now();
  const worker = async () => {
    while (next < end) {
      try {
        const { socket, ms } = await login(next++);
        sockets.push(socket);
        latencies.push(ms);
      } catch (err) {
        errors[err.message] = (errors[err.message] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(N, Number(concurrency)) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpu();
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? +latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)].toFixed(1) : null);
  for (const s of sockets) s.end('</stream:stream>');
  await new Promise((r) => setTimeout(r, 500));
  if (PRIME) fs.writeFileSync(cacheFile, JSON.stringify([...keys].map(([id, k]) => [id, Object.fromEntries(Object.entries(k).map(([n, b]) => [n, b.toString('hex')]))])));
  const result = {
    test: PRIME ? 'scram-prime' : 'scram', tls: useTls === '1', n: N, ok: sockets.length, failed: N - sockets.length, errors, mechanisms: used, loginSeconds: +seconds.toFixed(2),
    loginRate: +(sockets.length / seconds).toFixed(1), loginLatencyMs: { p50: pct(50), p99: pct(99) }, derivations: keys.size - cached,
    serverCpuDuringLoginS: cpu0 === null ? null : +(cpu1 - cpu0).toFixed(2),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
