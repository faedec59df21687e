// Plain XMPP clients for the chaos test and the benchmarks (login rate, idle sessions, blackhole), run on
// loopback or inside a network namespace with `ip netns exec`. Standalone on purpose (no build, no dependencies): each client logs in with PLAIN,
// binds, sends initial presence, then answers every XMPP ping until its link is cut.
// usage: node ns-clients.cjs HOST PORT COUNT USER_PREFIX PASSWORD [CONCURRENCY]
'use strict';
const net = require('node:net');

const [host, portText, countText, prefix, password, concurrencyText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const concurrency = Number(concurrencyText || 50);
const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

function login(i) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let buf = '';
    let stage = 'features1';
    const fail = (why) => {
      socket.destroy();
      reject(new Error(`client ${i}: ${why}`));
    };
    socket.setEncoding('utf8');
    socket.on('error', (err) => (stage === 'ready' ? undefined : fail(err.message)));
    socket.on('connect', () => socket.write(header));
    socket.on('data', (data) => {
      buf += data;
      if (stage === 'features1' && buf.includes('</stream:features>')) {
        buf = '';
        stage = 'auth';
        const creds = Buffer.from(`\0${prefix}${i}\0${password}`).toString('base64');
        socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
      } else if (stage === 'auth' && /<(success|failure)/.test(buf)) {
        if (!buf.includes('<success')) return fail(`auth failed: ${buf}`);
        buf = '';
        stage = 'features2';
        socket.write(header);
      } else if (stage === 'features2' && buf.includes('</stream:features>')) {
        buf = '';
        stage = 'bind';
        socket.write("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
      } else if (stage === 'bind' && buf.includes('</iq>')) {
        if (!buf.includes("type=\"result\"")) return fail(`bind failed: ${buf}`);
        buf = '';
        stage = 'ready';
        socket.write('<presence/>');
        resolve(socket);
      } else if (stage === 'ready') {
        for (const m of buf.matchAll(/<iq[^>]*\bid="([^"]+)"[^>]*>\s*<ping xmlns="urn:xmpp:ping"\/>\s*<\/iq>/g)) {
          socket.write(`<iq type='result' id='${m[1]}' to='localhost'/>`);
        }
        const end = buf.lastIndexOf('>');
        if (end >= 0) buf = buf.slice(end + 1);
      }
    });
  });
}

async function main() {
  const started = process.hrtime.bigint();
  const sockets = [];
  for (let next = 0; next < count; ) {
    const batch = [];
    for (let k = 0; k < concurrency && next < count; k++, next++) batch.push(login(next));
    sockets.push(...(await Promise.all(batch)));
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(`ready ${sockets.length}\n`);
  process.stdout.write(`${JSON.stringify({ loggedIn: sockets.length, ms })}\n`);
  // Stay until killed; nothing here ever closes a socket on its own.
  setInterval(() => undefined, 1 << 30);
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
