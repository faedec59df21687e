import { createServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Element } from 'ltx';
import { dialbackKey } from '../../src/s2s/dialback-key';
import { TestClient } from '../helpers/client';
import { freePort } from '../helpers/daemon';
import { startFederation, type FederatedServer } from '../helpers/federation';
import { metricValue } from '../helpers/server';
import { makeTestCa, type TestCa } from '../helpers/test-ca';

const serverHeader = (from: string, to: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' from='${from}' to='${to}' version='1.0'>`;

const chat = (body: string) => (el: Element) => el.name === 'message' && el.getChildText('body') === body;
const errorFor = (id: string) => (el: Element) => el.attrs.id === id && el.attrs.type === 'error';
const condition = (el: Element) => el.getChild('error')?.getChildElements().find((c) => c.name !== 'text')?.name;

/** A raw server stream to `port`, claiming `from`, without TLS (the servers under test allow that here). */
async function rawPeer(port: number, from: string, to: string): Promise<{ c: TestClient; id: string; features: Element }> {
  const c = await TestClient.connect(port);
  const features = await c.openWith(serverHeader(from, to));
  return { c, id: c.headers[c.headers.length - 1].attrs.id, features };
}

describe('SASL EXTERNAL: peers whose certificates a shared CA signed (XEP-0178)', () => {
  let ca: TestCa;
  let servers: FederatedServer[];
  beforeAll(async () => {
    ca = makeTestCa();
    const spec = (domain: string) => {
      const issued = ca.issue(domain);
      // Dialback off: the only way these two can authenticate each other is by certificate.
      return { domain, certificate: { cert: issued.cert, key: issued.key }, overrides: { s2s: { ca: ca.caPath, dialback: false } } };
    };
    servers = await startFederation(spec('ext-a.test'), spec('ext-b.test'), { domain: 'selfsigned.test' });
  });
  afterAll(async () => {
    for (const s of servers ?? []) await s.stop();
    ca?.cleanup();
  });

  it('carries chat both ways with dialback off, and refuses a peer that has only a self-signed certificate', async () => {
    const [a, b, selfSigned] = servers;
    const [[alice, aliceJid]] = await a.freshUsers('alice');
    const [[bob, bobJid]] = await b.freshUsers('bob');
    const ca1 = await a.login(alice);
    const cb = await b.login(bob);
    ca1.send(`<message to='${bobJid}' type='chat'><body>signed</body></message>`);
    await cb.waitFor(chat('signed'));
    cb.send(`<message to='${aliceJid}' type='chat'><body>countersigned</body></message>`);
    await ca1.waitFor(chat('countersigned'));

    // selfsigned.test (dialback on) can prove nothing to ext-a.test, which has dialback off.
    const [[carol]] = await selfSigned.freshUsers('carol');
    const cc = await selfSigned.login(carol);
    cc.send(`<message to='${aliceJid}' type='chat' id='x1'><body>let me in</body></message>`);
    await ca1.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='ext-b.test'");
    for (let i = 0; i < 200 && metricValue(await a.metrics(), 'vigil_sessions_closed_total', { kind: 's2sIn' }) === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ca1.elements.filter(chat('let me in'))).toEqual([]);
    await ca1.close();
    await cb.close();
    await cc.close();
  });
});

describe('bad input on server streams', () => {
  let c: FederatedServer;
  let d: FederatedServer;
  const secret = 'the secret d.test derives its dialback keys from';
  beforeAll(async () => {
    [c, d] = await startFederation(
      // c.test lets raw test peers in without TLS; its queue gives up quickly.
      { domain: 'c.test', overrides: { s2s: { requireTls: false, queue: { timeout: '1500ms' }, retry: { initial: '200ms', max: '400ms' } }, watchdog: { interval: '100ms', s2sOut: { unauthenticatedTimeout: '1s' }, s2sIn: { unauthenticatedTimeout: '1s' } } } },
      { domain: 'd.test', overrides: { s2s: { secret } } },
    );
  });
  afterAll(async () => {
    await c?.stop();
    await d?.stop();
  });

  it('a stanza from a domain the stream did not authenticate ends it with <invalid-from/>', async () => {
    const { c: peer, id } = await rawPeer(c.s2sPort, 'd.test', 'c.test');
    // A key d.test would make: c.test asks d.test, which says valid.
    peer.send(`<db:result from='d.test' to='c.test'>${dialbackKey(secret, 'c.test', 'd.test', id)}</db:result>`);
    const result = await peer.waitFor((el) => el.name === 'db:result');
    expect(result.attrs.type).toBe('valid');
    const [[user, jid]] = await c.freshUsers('victim');
    const victim = await c.login(user);
    peer.send(`<message from='mallory@evil.test' to='${jid}' type='chat'><body>trust me</body></message>`);
    expect(await peer.streamError()).toEqual({ condition: 'invalid-from', text: expect.stringContaining('evil.test') });
    await victim.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(victim.elements.filter(chat('trust me'))).toEqual([]);
    await victim.close();
    peer.destroy();
  });

  it('a dialback key that does not verify is answered invalid and the stream closed with <not-authorized/>', async () => {
    const { c: peer } = await rawPeer(c.s2sPort, 'd.test', 'c.test');
    peer.send(`<db:result from='d.test' to='c.test'>${'0'.repeat(64)}</db:result>`);
    expect((await peer.waitFor((el) => el.name === 'db:result')).attrs.type).toBe('invalid');
    expect((await peer.streamError()).condition).toBe('not-authorized');
    peer.destroy();
  });

  it('with TLS required, a peer that wants to skip it gets <policy-violation/>', async () => {
    const { c: peer, features } = await rawPeer(d.s2sPort, 'c.test', 'd.test');
    expect(features.getChild('starttls')?.getChild('required')).toBeDefined();
    peer.send(`<db:result from='c.test' to='d.test'>${'0'.repeat(64)}</db:result>`);
    expect((await peer.streamError()).condition).toBe('policy-violation');
    peer.destroy();
  });

  /** A fake peer on a route of c.test's: it does only what `behave` does with each connection. */
  async function fakePeer(domain: string, behave: (socket: Socket) => void): Promise<TcpServer> {
    const port = await freePort();
    const server = createServer(behave);
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    c.server.reload({ ...c.config, s2s: { ...c.config.s2s, routes: `${c.config.s2s.routes}, ${domain}=127.0.0.1:${port}` } });
    return server;
  }

  it('a peer that offers no STARTTLS, when ours requires it, is left, and what waited for it bounces <remote-server-timeout/>', async () => {
    const requiring = d; // d.test requires TLS on its outgoing streams (the default)
    const port = await freePort();
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.once('data', () => socket.write(`${serverHeader('plain.test', 'd.test').replace("from='plain.test' to='d.test'", "from='plain.test' id='p1'")}<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    requiring.server.reload({ ...requiring.config, s2s: { ...requiring.config.s2s, routes: `${requiring.config.s2s.routes}, plain.test=127.0.0.1:${port}`, queue: { ...requiring.config.s2s.queue, timeout: 1500 } } });
    const [[user]] = await requiring.freshUsers('sender');
    const sender = await requiring.login(user);
    sender.send("<message to='x@plain.test' type='chat' id='p1'><body>in clear?</body></message>");
    const error = await sender.waitFor(errorFor('p1'), 8000);
    expect(condition(error)).toBe('remote-server-timeout');
    expect(metricValue(await requiring.metrics(), 'vigil_sessions_closed_total', { kind: 's2sOut', reason: 'policy-violation' })).toBeGreaterThanOrEqual(1);
    await sender.close();
    for (const s of sockets) s.destroy();
    server.close();
  });

  it('a domain that does not exist bounces <remote-server-not-found/> at once', async () => {
    const [[user]] = await c.freshUsers('sender');
    const sender = await c.login(user);
    sender.send("<message to='x@nowhere.invalid' type='chat' id='n1'><body>hello?</body></message>");
    expect(condition(await sender.waitFor(errorFor('n1')))).toBe('remote-server-not-found');
    expect(metricValue(await c.metrics(), 'vigil_s2s_bounces_total', { reason: 'remote-server-not-found' })).toBeGreaterThanOrEqual(1);
    await sender.close();
  });

  it('a peer that accepts TCP and never answers is closed as unauthenticated, and the message bounces <remote-server-timeout/>', async () => {
    const held: Socket[] = [];
    const server = await fakePeer('silent.test', (socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    const [[user]] = await c.freshUsers('sender');
    const sender = await c.login(user);
    sender.send("<message to='x@silent.test' type='chat' id='s1'><body>anyone?</body></message>");
    expect(condition(await sender.waitFor(errorFor('s1'), 8000))).toBe('remote-server-timeout');
    const text = await c.metrics();
    expect(metricValue(text, 'vigil_sessions_closed_total', { kind: 's2sOut', reason: 'unauthenticated' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'vigil_s2s_bounces_total', { reason: 'remote-server-timeout' })).toBeGreaterThanOrEqual(1);
    await sender.close();
    for (const s of held) s.destroy();
    server.close();
  });
});
