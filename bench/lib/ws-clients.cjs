// RFC 7395 clients for bench/websocket.mjs, in a process of their own: each connects with the xmpp
// subprotocol, logs in with PLAIN, binds, sends initial presence, then idles; ws answers every ping frame.
// usage: node ws-clients.cjs URL COUNT USER_PREFIX PASSWORD [CONCURRENCY]
'use strict';
const WebSocket = require('ws');

const [url, countText, prefix, password, concurrencyText] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText || 50);
const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const open = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;

function login(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['xmpp'], { perMessageDeflate: false });
    let stage = 'features1';
    const fail = (why) => {
      ws.terminate();
      reject(new Error(`client ${i}: ${why}`));
    };
    ws.on('error', (err) => (stage === 'ready' ? undefined : fail(err.message)));
    ws.on('open', () => ws.send(open));
    ws.on('message', (data) => {
      const m = data.toString();
      if (stage === 'features1' && m.startsWith('<stream:features')) {
        stage = 'auth';
        const creds = Buffer.from(`\0${prefix}${i}\0${password}`).toString('base64');
        ws.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${creds}</auth>`);
      } else if (stage === 'auth' && /^<(success|failure)/.test(m)) {
        if (!m.startsWith('<success')) return fail(`auth failed: ${m}`);
        stage = 'features2';
        ws.send(open);
      } else if (stage === 'features2' && m.startsWith('<stream:features')) {
        stage = 'bind';
        ws.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
      } else if (stage === 'bind' && m.startsWith('<iq')) {
        if (!m.includes('type="result"')) return fail(`bind failed: ${m}`);
        stage = 'ready';
        ws.send("<presence xmlns='jabber:client'/>");
        resolve(ws);
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
  process.stdout.write(`${JSON.stringify({ loggedIn: sockets.length, ms })}\n`);
  // Stay until killed; nothing here ever closes a socket on its own.
  setInterval(() => undefined, 1 << 30);
}

main().catch((err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
