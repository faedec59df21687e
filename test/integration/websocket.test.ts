import { request } from 'node:http';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, testTls, type TestServer } from '../helpers/server';
import { FRAMING, WsClient } from '../helpers/ws-client';
import { WebSocketListener } from '../../src/websocket/listener';

/** RFC 7395 over real WebSocket connections on loopback. */

let srv: TestServer;
let url: string;
beforeAll(async () => {
  srv = await startServer({ watchdog: { interval: '100ms' } });
  url = `ws://127.0.0.1:${srv.server.addresses.websocket}/xmpp-websocket`;
});
afterAll(() => srv.stop());

const users = (...prefixes: string[]) => srv.freshUsers(...prefixes);

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.server.addresses.websocket, path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the handshake', () => {
  it('requires the xmpp subprotocol: without it, HTTP 400 and a body that says why', async () => {
    const before = metricValue(await srv.metrics(), 'vigil_websocket_handshakes_total', { result: 'no-subprotocol' });
    await expect(WsClient.connect(url, { protocol: null })).rejects.toMatchObject({ status: 400, body: expect.stringMatching(/Sec-WebSocket-Protocol: xmpp/) });
    await expect(WsClient.connect(url, { protocol: 'chat' })).rejects.toMatchObject({ status: 400 });
    expect(metricValue(await srv.metrics(), 'vigil_websocket_handshakes_total', { result: 'no-subprotocol' })).toBe(before + 2);
    const c = await WsClient.connect(url);
    expect(c.ws.protocol).toBe('xmpp');
    c.destroy();
  });

  it('answers another path with 404', async () => {
    await expect(WsClient.connect(url.replace('/xmpp-websocket', '/other'))).rejects.toMatchObject({ status: 404 });
  });
});

describe('the stream', () => {
  it('opens with <open/>, one element per message, and logs in with a restart after SASL', async () => {
    const [[name]] = await users('wsopen');
    const c = await WsClient.connect(url);
    const features = await c.open();
    const open = c.messages[0];
    expect(open).toMatch(new RegExp(`^<open xmlns="${FRAMING}"|^<open xmlns='${FRAMING}'`));
    // The features stand alone: the stream prefix is declared on them.
    expect(c.messages[1]).toMatch(/^<stream:features[^>]*xmlns:stream="http:\/\/etherx\.jabber\.org\/streams"/);
    expect(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText())).toContain('PLAIN');
    expect((await c.authPlain(name, 'secret')).name).toBe('success');
    await c.bind('web');
    expect(c.jid).toBe(`${name}@localhost/web`);
    // No message holds more than one element, none is whitespace.
    for (const m of c.messages) expect(m.trim()).toBe(m);
    await c.close();
    expect(c.closeCode).toBe(1000);
    expect(c.messages[c.messages.length - 1]).toMatch(/^<close xmlns=.urn:ietf:params:xml:ns:xmpp-framing.\/>$/);
  });

  it('checks <open/>: to, version and namespace', async () => {
    const wrongTo = await WsClient.connect(url);
    wrongTo.send(`<open xmlns='${FRAMING}' to='elsewhere.example' version='1.0'/>`);
    expect((await wrongTo.streamError()).condition).toBe('host-unknown');
    await wrongTo.closed;
    const wrongVersion = await WsClient.connect(url);
    wrongVersion.send(`<open xmlns='${FRAMING}' to='localhost' version='2.0'/>`);
    expect((await wrongVersion.streamError()).condition).toBe('unsupported-version');
    const tcpHeader = await WsClient.connect(url);
    tcpHeader.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'/>");
    expect((await tcpHeader.streamError()).condition).toBe('invalid-namespace');
    // Errors come as <stream:error>, then <close/>, then the close frame.
    await tcpHeader.closed;
    expect(tcpHeader.messages.slice(-2)[1]).toMatch(/^<close /);
  });

  it('carries messages between a WebSocket user and a TCP user, both ways', async () => {
    const [[w], [t]] = await users('wsuser', 'tcpuser');
    const web = await WsClient.login(url, w, 'browser');
    const tcp = await TestClient.login(srv.port, t, 'secret', 'desktop');
    web.send(`<message xmlns='jabber:client' to='${tcp.jid}' type='chat'><body>from the browser</body></message>`);
    const got = await tcp.waitFor((el) => el.name === 'message');
    expect(got.attrs.from).toBe(web.jid);
    expect(got.getChildText('body')).toBe('from the browser');
    tcp.send(`<message to='${web.jid}' type='chat'><body>from the desktop</body></message>`);
    const back = await web.waitFor((el) => el.name === 'message');
    expect(back.attrs).toMatchObject({ xmlns: 'jabber:client', from: tcp.jid });
    expect(back.getChildText('body')).toBe('from the desktop');
    await Promise.all([web.close(), tcp.close()]);
  });

  it('refuses a stanza over c2s.maxStanzaSize with <policy-violation/> and close code 1008', async () => {
    const small = await startServer({ c2s: { maxStanzaSize: '4KiB' } });
    try {
      const [[name]] = await small.freshUsers('wsbig');
      const c = await WsClient.login(`ws://127.0.0.1:${small.server.addresses.websocket}/xmpp-websocket`, name, 'r');
      c.send(`<message xmlns='jabber:client' to='${c.jid}'><body>${'x'.repeat(6000)}</body></message>`);
      expect((await c.streamError()).condition).toBe('policy-violation');
      await c.closed;
      expect(c.closeCode).toBe(1008);
    } finally {
      await small.stop();
    }
  });

  it('refuses a message that is not one whole element, and a binary frame', async () => {
    const half = await WsClient.connect(url);
    await half.open();
    half.send("<iq xmlns='jabber:client' type='get' id='1'>");
    expect((await half.streamError()).text).toMatch(/one whole element/);
    const two = await WsClient.connect(url);
    await two.open();
    two.send("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
    expect((await two.streamError()).condition).toBe('not-well-formed');
    const binary = await WsClient.connect(url);
    await binary.open();
    binary.ws.send(Buffer.from(`<open xmlns='${FRAMING}'/>`), { binary: true });
    expect((await binary.streamError()).condition).toBe('unsupported-encoding');
    await binary.closed;
    expect(binary.closeCode).toBe(1003);
  });

  it('hibernates a stream-managed WebSocket session whose connection drops, and resumes it over WebSocket', async () => {
    const [[name], [t]] = await users('wssm', 'wssmt');
    const web = await WsClient.login(url, name, 'tab');
    await web.waitFor((el) => el.name === 'presence');
    web.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    const enabled = await web.waitFor((el) => el.name === 'enabled');
    const tcp = await TestClient.login(srv.port, t, 'secret', 'd');
    web.destroy();
    await web.closed;
    tcp.send(`<message to='${web.jid}' type='chat'><body>while you were away</body></message>`);
    await tcp.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    const again = await WsClient.connect(url);
    await again.open();
    await again.authPlain(name, 'secret');
    again.send(`<resume xmlns='urn:xmpp:sm:3' previd='${enabled.attrs.id}' h='0'/>`);
    expect((await again.waitFor((el) => el.name === 'resumed' || el.name === 'failed')).name).toBe('resumed');
    expect((await again.waitFor((el) => el.name === 'message')).getChildText('body')).toBe('while you were away');
    await Promise.all([again.close(), tcp.close()]);
  });

  it('resumes a session over the other transport, and watches it as what it rides on now', async () => {
    const [[name]] = await users('cross');
    const tcp = await TestClient.login(srv.port, name, 'secret', 'phone');
    await tcp.waitFor((el) => el.name === 'presence');
    const previd = (await tcp.enableSm()).attrs.id as string;
    const full = tcp.jid;
    tcp.destroy();
    await expectEventually(async () => srv.server.ctx.registry.getByFullJid(full)?.state === 'detached');
    expect(srv.server.ctx.registry.getByFullJid(full)?.kind).toBe('c2s');
    const web = await WsClient.connect(url);
    await web.open();
    await web.authPlain(name, 'secret');
    web.send(`<resume xmlns='urn:xmpp:sm:3' previd='${previd}' h='0'/>`);
    expect((await web.waitFor((el) => el.name === 'resumed' || el.name === 'failed')).name).toBe('resumed');
    const session = srv.server.ctx.registry.getByFullJid(full)!;
    expect([session.kind, session.policy]).toEqual(['websocket', srv.server.config.watchdog.websocket]);
    await web.close();
  });
});

describe('the watchdog on WebSocket', () => {
  let quick: TestServer;
  let quickUrl: string;
  beforeAll(async () => {
    quick = await startServer({ watchdog: { interval: '100ms', websocket: { probeAfter: '300ms', probeTimeout: '300ms', keepaliveAfter: '200ms', writeStallTimeout: '500ms', maxSendQueue: '64KiB' } } });
    quickUrl = `ws://127.0.0.1:${quick.server.addresses.websocket}/xmpp-websocket`;
  });
  afterAll(() => quick.stop());

  it('keeps a client that answers ping frames over many cycles, and never sends whitespace', async () => {
    const [[name]] = await quick.freshUsers('wsalive');
    const c = await WsClient.login(quickUrl, name, 'r');
    await c.until(() => c.pings >= 10, 10_000);
    expect(c.closeCode).toBeUndefined();
    expect(c.messages.filter((m) => m.trim() !== m || m === '')).toEqual([]);
    await c.close();
  });

  it('closes a client that never answers ping frames, for probe-timeout', async () => {
    const [[name]] = await quick.freshUsers('wsfrozen');
    const c = await WsClient.connect(quickUrl, { answerPings: false });
    await c.open();
    await c.authPlain(name, 'secret');
    await c.bind('r');
    const err = await c.streamError(5000);
    expect(err.condition).toBe('connection-timeout');
    expect(err.text).toMatch(/^probe-timeout/);
    await c.closed;
    expect(metricValue(await quick.metrics(), 'vigil_sessions_closed_total', { kind: 'websocket', reason: 'probe-timeout' })).toBeGreaterThanOrEqual(1);
  });

  it('closes a client that stops reading, for write-stall', async () => {
    const [[name], [t]] = await quick.freshUsers('wsstall', 'wsflood');
    const c = await WsClient.login(quickUrl, name, 'r');
    const tcp = await TestClient.login(quick.port, t, 'secret', 'f');
    c.pauseReading();
    const body = 'y'.repeat(2000);
    for (let i = 0; i < 2000 && !c.closeCode; i++) tcp.send(`<message to='${c.jid}' type='chat'><body>${body}</body></message>`);
    const text = async () => quick.metrics();
    await expectEventually(async () => metricValue(await text(), 'vigil_sessions_closed_total', { kind: 'websocket', reason: 'write-stall' }) + metricValue(await text(), 'vigil_sessions_closed_total', { kind: 'websocket', reason: 'send-queue-overflow' }) >= 1);
    c.destroy();
    await tcp.close();
  });
});

describe('wss (listeners.websocket.tls)', () => {
  it('serves TLS with the server certificate, and offers PLAIN over it although plaintext login is off', async () => {
    const secure = await startServer({ c2s: { allowPlainWithoutTls: false }, listeners: { websocket: { tls: true } } }, { tls: true });
    try {
      const [[name]] = await secure.freshUsers('wss');
      const c = await WsClient.connect(`wss://127.0.0.1:${secure.server.addresses.websocket}/xmpp-websocket`, { ca: (await testTls()).cert });
      const features = await c.open();
      expect(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText())).toContain('PLAIN');
      expect((await c.authPlain(name, 'secret')).name).toBe('success');
      await c.bind('secure');
      await c.close();
      expect(c.closeCode).toBe(1000);
    } finally {
      await secure.stop();
    }
  });
});

describe('discovery (XEP-0156)', () => {
  it('serves host-meta as XRD and JRD, readable from any page, naming the public WebSocket URL', async () => {
    const xrd = await get('/.well-known/host-meta');
    expect(xrd.status).toBe(200);
    expect(xrd.headers['content-type']).toMatch(/^application\/xrd\+xml/);
    expect(xrd.headers['access-control-allow-origin']).toBe('*');
    expect(xrd.body).toContain("<Link rel='urn:xmpp:alt-connections:websocket' href='wss://localhost/xmpp-websocket'/>");
    const jrd = await get('/.well-known/host-meta.json');
    expect(jrd.headers['access-control-allow-origin']).toBe('*');
    expect(JSON.parse(jrd.body)).toEqual({ links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://localhost/xmpp-websocket' }] });
    expect((await get('/xmpp-websocket')).status).toBe(426);
  });
});

describe('behind a proxy', () => {
  it('believes X-Forwarded-Proto and X-Forwarded-For only from a trusted proxy', async () => {
    const strict = await startServer({ c2s: { allowPlainWithoutTls: false }, websocket: { trustedProxies: '127.0.0.2' } });
    try {
      const at = `ws://127.0.0.1:${strict.server.addresses.websocket}/xmpp-websocket`;
      const forged = await WsClient.connect(at, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } });
      const plain = await forged.open();
      expect(plain.getChild('mechanisms')).toBeUndefined();
      forged.destroy();
      const proxied = await WsClient.connect(at, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' }, localAddress: '127.0.0.2' });
      const secure = await proxied.open();
      expect(secure.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText())).toContain('PLAIN');
      const session = [...strict.server.ctx.registry.all()].find((s) => s.kind === 'websocket' && s.state === 'negotiating' && s.remoteAddress === '203.0.113.9');
      expect(session).toBeDefined();
      proxied.destroy();
    } finally {
      await strict.stop();
    }
  });

  it('refuses to start with a trusted proxy that is not an address or CIDR, naming it', () => {
    const config = srv.server.config;
    const ctx = { ...srv.server.ctx, config: { ...config, websocket: { ...config.websocket, trustedProxies: '127.0.0.1, proxy.example' } } };
    expect(() => new WebSocketListener(ctx, undefined, () => undefined)).toThrow("websocket.trustedProxies: 'proxy.example' is not an address or CIDR");
  });

  it('sends new streams elsewhere with <close see-other-uri/> while draining', async () => {
    const draining = await startServer({ websocket: { seeOtherUri: 'wss://other.example/xmpp-websocket' } });
    try {
      const c = await WsClient.connect(`ws://127.0.0.1:${draining.server.addresses.websocket}/xmpp-websocket`);
      c.send(`<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`);
      const close = await c.waitFor((el) => el.name === 'close');
      expect(close.attrs['see-other-uri']).toBe('wss://other.example/xmpp-websocket');
      await c.closed;
      expect(c.closeCode).toBe(1000);
    } finally {
      await draining.stop();
    }
  });
});

async function expectEventually(predicate: () => Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 50));
  }
}
