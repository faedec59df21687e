import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { parse, type Element } from 'ltx';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/load';
import type { Session } from '../../src/sessions/session';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, testTls, type TestServer } from '../helpers/server';
import { FRAMING, WsClient } from '../helpers/ws-client';
import { freePort, locationBlocks, locationOf, NGINX, NginxProcess, replaceCounted, SHIPPED, SHIPPED_UPSTREAM } from './nginx-proxy';

/**
 * Vigil behind Debian's nginx (nginx-light), configured with the location blocks of deploy/nginx/vigil.conf
 * and proxy_read_timeout cut to 10 s. One nginx, several server blocks, each in front of its own Vigil:
 *   pinged  Vigil sends a ping frame after 4 s of silence: an idle client must outlive nginx's timeout
 *   silent  no ping frames, no probes: nginx must cut the same idle client, so the pings are what count
 *   plain   a Vigil that refuses to log anyone in over an unencrypted leg, reached over http
 *   tls     the whole shipped server block, certificate swapped for a test one, in front of that Vigil
 * The idle clients of the first two wait side by side, so the file takes about a minute, not two.
 */

jest.setTimeout(90_000);

const HOST = '127.0.0.43'; // nginx listens here; Linux routes all of 127/8 to lo
const CLIENT_ADDRESS = '127.0.0.44'; // a client that is neither nginx nor Vigil
const READ_TIMEOUT = '10s';
const HOLD_MS = 60_000;
const INSTALL = 'these tests need Debian nginx: apt-get install nginx-light (scripts/test-deps.sh does it)';

const shipped = readFileSync(SHIPPED, 'utf8');

let pinged: TestServer;
let silent: TestServer;
let strict: TestServer;
let nginx: NginxProcess;
const ports = { pinged: 0, silent: 0, plain: 0, tls: 0 };
let cert = '';
let idle: WsClient;
let idleSince = 0;
let cut: WsClient;
let cutSession: Session;

/** The shipped location blocks, sent to `upstream` with nginx's read timeout at READ_TIMEOUT. */
function locations(upstreamPort: number): string {
  return locationBlocks(shipped)
    .map((b) => b.replaceAll(SHIPPED_UPSTREAM, `http://127.0.0.1:${upstreamPort}`))
    .join('\n')
    .replace(/proxy_read_timeout\s+\S+;/g, `proxy_read_timeout ${READ_TIMEOUT};`);
}

/** The shipped file whole, with only what must differ here changed: address, certificate, upstream port. */
function shippedAdapted(dir: string, upstreamPort: number, port: number): string {
  let text = replaceCounted(shipped, /^\s*listen\s+443\s+ssl;/gm, `    listen ${HOST}:${port} ssl;`, 1, "'listen 443 ssl;'");
  text = replaceCounted(text, /^\s*listen\s+\[::\]:443\s+ssl;/gm, '', 1, "'listen [::]:443 ssl;'");
  text = replaceCounted(text, /^(\s*ssl_certificate)\s+\S+;/gm, `$1 ${dir}/cert.pem;`, 1, 'ssl_certificate');
  text = replaceCounted(text, /^(\s*ssl_certificate_key)\s+\S+;/gm, `$1 ${dir}/key.pem;`, 1, 'ssl_certificate_key');
  return replaceCounted(text, /^(\s*proxy_pass\s+)http:\/\/127\.0\.0\.1:5281;/gm, `$1http://127.0.0.1:${upstreamPort};`, 3, `'proxy_pass ${SHIPPED_UPSTREAM};'`);
}

beforeAll(async () => {
  if (!existsSync(NGINX)) throw new Error(INSTALL);
  [pinged, silent, strict] = await Promise.all([
    startServer({ watchdog: { websocket: { keepaliveAfter: '4s', probeAfter: '20s' } } }),
    startServer({ watchdog: { websocket: { keepaliveAfter: '0', probe: 'none' } } }),
    startServer({ c2s: { allowPlainWithoutTls: false } }),
  ]);
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort(HOST);
  const pems = await testTls();
  cert = pems.cert;
  nginx = new NginxProcess((dir) => {
    writeFileSync(join(dir, 'cert.pem'), pems.cert);
    writeFileSync(join(dir, 'key.pem'), pems.key);
    writeFileSync(join(dir, 'vigil.conf'), shippedAdapted(dir, strict.server.addresses.websocket, ports.tls));
    return [
      // Each server block logs on its own, so a test can tell which one nginx timed out.
      `server { listen ${HOST}:${ports.pinged}; error_log ${dir}/pinged.log info;\n${locations(pinged.server.addresses.websocket)}\n}`,
      `server { listen ${HOST}:${ports.silent}; error_log ${dir}/silent.log info;\n${locations(silent.server.addresses.websocket)}\n}`,
      `server { listen ${HOST}:${ports.plain};\n${locations(strict.server.addresses.websocket)}\n}`,
      `include ${dir}/vigil.conf;`,
    ].join('\n');
  });
  const checked = nginx.test();
  if (checked.status !== 0) throw new Error(`nginx -t refused the config built from deploy/nginx/vigil.conf:\n${checked.output}`);
  await nginx.start(Object.values(ports).map((port) => ({ host: HOST, port })));

  const [[[a]], [[b]]] = await Promise.all([pinged.freshUsers('ngxidle'), silent.freshUsers('ngxcut')]);
  [idle, cut] = await Promise.all([
    WsClient.login(`ws://${HOST}:${ports.pinged}/xmpp-websocket`, a, 'idle'),
    WsClient.login(`ws://${HOST}:${ports.silent}/xmpp-websocket`, b, 'idle'),
  ]);
  idleSince = Date.now();
  cutSession = silent.server.ctx.registry.getByFullJid(cut.jid)!;
  expect(cutSession).toBeDefined();
});

afterAll(async () => {
  for (const c of [idle, cut]) c?.destroy();
  await nginx?.stop();
  await Promise.all([pinged, silent, strict].map((s) => s?.stop()));
});

describe('the shipped deploy/nginx/vigil.conf', () => {
  it('passes nginx -t whole, has the three location blocks, and waits longer than Vigil pings', () => {
    const checked = nginx.test();
    expect(checked.output).toMatch(/syntax is ok/);
    expect(checked.status).toBe(0);
    const blocks = locationBlocks(shipped);
    expect(blocks.map(locationOf)).toEqual(['/xmpp-websocket', '= /.well-known/host-meta', '= /.well-known/host-meta.json']);
    const ws = blocks[0];
    for (const line of [
      `proxy_pass ${SHIPPED_UPSTREAM};`, 'proxy_http_version 1.1;', 'proxy_set_header Upgrade $http_upgrade;', 'proxy_set_header Connection "upgrade";',
      'proxy_set_header Host $host;', 'proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;', 'proxy_set_header X-Forwarded-Proto $scheme;', 'proxy_buffering off;',
    ]) expect(ws).toContain(line);
    for (const b of blocks.slice(1)) expect(b).toContain(`proxy_pass ${SHIPPED_UPSTREAM};`);
    // nginx cuts an upgraded connection silent for proxy_read_timeout; Vigil's default ping must come first.
    const seconds = Number(ws.match(/proxy_read_timeout\s+(\d+)s;/)?.[1]);
    const keepaliveAfter = loadConfig({ env: {} }).watchdog.websocket.keepaliveAfter;
    expect(keepaliveAfter).toBeGreaterThan(0);
    expect(seconds * 1000).toBeGreaterThan(keepaliveAfter);
  });
});

describe(`idle behind nginx with proxy_read_timeout ${READ_TIMEOUT}`, () => {
  it('without ping frames, nginx cuts the client: the connection drops with no <close/> from Vigil', async () => {
    await cut.closed;
    // No close frame reached the client (1006), and nothing from Vigil ended the stream first.
    expect(cut.closeCode).toBe(1006);
    expect(cut.messages.some((m) => /^<close[\s/>]/.test(m) || m.startsWith('<stream:error'))).toBe(false);
    expect(nginx.log('silent.log')).toMatch(/upstream timed out .* while proxying upgraded connection/);
    // Vigil saw its peer go: the connection dropped under it, the watchdog did not end it.
    for (let i = 0; i < 100 && cutSession.closeReason === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    expect(cutSession.closeReason).toBe('peer-closed');
    expect(metricValue(await silent.metrics(), 'vigil_sessions_closed_total', { kind: 'websocket', reason: 'peer-closed' })).toBe(1);
  });

  it('with a ping frame every 4 s, an idle client stays connected for 60 s and still gets its messages', async () => {
    await new Promise((r) => setTimeout(r, Math.max(0, idleSince + HOLD_MS - Date.now())));
    expect(idle.closeCode).toBeUndefined();
    expect(idle.ws.readyState).toBe(WebSocket.OPEN);
    // Silence longer than the read timeout would have been cut: a minute needs at least six pings.
    expect(idle.pings).toBeGreaterThanOrEqual(HOLD_MS / 10_000);
    expect(nginx.log('pinged.log')).not.toMatch(/timed out/);
    const [[t]] = await pinged.freshUsers('ngxtcp');
    const tcp = await TestClient.login(pinged.port, t, 'secret', 'desk');
    tcp.send(`<message to='${idle.jid}' type='chat'><body>still there?</body></message>`);
    const got = await idle.waitFor((el) => el.name === 'message');
    expect(got.attrs.from).toBe(tcp.jid);
    expect(got.getChildText('body')).toBe('still there?');
    await Promise.all([idle.close(), tcp.close()]);
    expect(idle.closeCode).toBe(1000);
  });
});

describe('what nginx tells Vigil', () => {
  it("passes the client's address in X-Forwarded-For: the session has it, not nginx's", async () => {
    const c = await WsClient.connect(`ws://${HOST}:${ports.pinged}/xmpp-websocket`, { localAddress: CLIENT_ADDRESS });
    await c.open();
    const sessions = [...pinged.server.ctx.registry.all()].filter((s) => s.kind === 'websocket' && s.state === 'negotiating');
    expect(sessions.map((s) => s.remoteAddress)).toContain(CLIENT_ADDRESS);
    await c.close();
  });

  it('serves host-meta and host-meta.json through nginx, CORS header and all', async () => {
    const xrd = await fetch(`http://${HOST}:${ports.pinged}/.well-known/host-meta`);
    expect(xrd.status).toBe(200);
    expect(xrd.headers.get('content-type')).toMatch(/^application\/xrd\+xml/);
    expect(xrd.headers.get('access-control-allow-origin')).toBe('*');
    expect(await xrd.text()).toContain("<Link rel='urn:xmpp:alt-connections:websocket' href='wss://localhost/xmpp-websocket'/>");
    const jrd = await fetch(`http://${HOST}:${ports.pinged}/.well-known/host-meta.json`);
    expect(jrd.headers.get('access-control-allow-origin')).toBe('*');
    expect(await jrd.json()).toEqual({ links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://localhost/xmpp-websocket' }] });
  });

  it('says https over the shipped TLS server block, so a Vigil that requires encryption lets the client log in', async () => {
    // Over http the same Vigil, behind the same locations, offers no way to log in.
    const clear = await WsClient.connect(`ws://${HOST}:${ports.plain}/xmpp-websocket`);
    expect((await clear.open()).getChild('mechanisms')).toBeUndefined();
    clear.destroy();

    const [[name]] = await strict.freshUsers('ngxtls');
    const wss = await tlsWebSocket(`wss://${HOST}:${ports.tls}/xmpp-websocket`);
    wss.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
    const features = await wss.next((el) => el.name === 'stream:features');
    expect(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText())).toContain('PLAIN');
    wss.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
    expect((await wss.next((el) => el.name === 'success' || el.name === 'failure')).name).toBe('success');
    wss.ws.close();

    const meta = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      httpsGet({ host: HOST, port: ports.tls, path: '/.well-known/host-meta.json', ca: cert, servername: 'localhost' }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      }).on('error', reject);
    });
    expect(meta.status).toBe(200);
    expect(JSON.parse(meta.body).links[0].href).toBe('wss://localhost/xmpp-websocket');
  });
});

/** A wss client that trusts the test certificate (WsClient cannot be given a CA). */
function tlsWebSocket(url: string): Promise<{ ws: WebSocket; send(text: string): void; next(match: (el: Element) => boolean): Promise<Element> }> {
  const ws = new WebSocket(url, ['xmpp'], { ca: cert, servername: 'localhost' } as WebSocket.ClientOptions);
  const seen: Element[] = [];
  let wake = () => undefined as void;
  ws.on('message', (data: Buffer) => {
    seen.push(parse(data.toString()) as Element);
    wake();
  });
  const next = (match: (el: Element) => boolean) =>
    new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; got ${seen.map((e) => e.name).join(' ')}`)), 5000);
      const check = () => {
        const i = seen.findIndex(match);
        if (i < 0) return;
        clearTimeout(timer);
        resolve(seen.splice(i, 1)[0]);
      };
      wake = check;
      check();
    });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, send: (text) => ws.send(text), next }));
    ws.once('error', reject);
  });
}
