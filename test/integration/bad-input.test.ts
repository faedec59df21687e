import { TestClient, header } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';

let srv: TestServer;
let healthy: TestClient;
let friend: TestClient;
beforeAll(async () => {
  srv = await startServer({ c2s: { maxStanzaSize: '16KiB' } } as never);
  await srv.addUser('alice');
  await srv.addUser('bob');
  healthy = await TestClient.login(srv.port, 'alice', 'secret', 'healthy');
  friend = await TestClient.login(srv.port, 'bob', 'secret', 'friend');
});
afterAll(async () => {
  await healthy.close();
  await friend.close();
  await srv.stop();
});

/** After each bad client, a healthy session must still chat as if nothing happened. */
afterEach(async () => {
  const body = `still here ${Math.random()}`;
  friend.send(`<message to='alice@localhost/healthy' type='chat'><body>${body}</body></message>`);
  const got = await healthy.waitFor((el) => el.name === 'message' && el.getChildText('body') === body);
  expect(got.attrs.from).toBe('bob@localhost/friend');
});

async function authed(): Promise<TestClient> {
  return TestClient.login(srv.port, 'alice', 'secret', undefined, { presence: false });
}

async function expectStreamError(c: TestClient, condition: string): Promise<void> {
  const err = await c.streamError();
  expect(err.condition).toBe(condition);
  await c.until(() => c.streamEnded);
  await c.closed;
}

describe('stream header checks', () => {
  it('answers a stream for another domain with <host-unknown/>', async () => {
    const c = await TestClient.connect(srv.port);
    c.send(header('example.org'));
    await expectStreamError(c, 'host-unknown');
  });

  it('answers a wrong stream namespace with <invalid-namespace/>', async () => {
    const c = await TestClient.connect(srv.port);
    c.send("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>");
    await expectStreamError(c, 'invalid-namespace');
  });

  it('answers a server namespace on the client port with <invalid-namespace/>', async () => {
    const c = await TestClient.connect(srv.port);
    c.send("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    await expectStreamError(c, 'invalid-namespace');
  });

  it('answers a pre-XMPP-1.0 stream with <unsupported-version/>', async () => {
    const c = await TestClient.connect(srv.port);
    c.send("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>");
    await expectStreamError(c, 'unsupported-version');
  });

  it('sends its own stream header before the error when the peer sent garbage first', async () => {
    const c = await TestClient.connect(srv.port);
    c.send('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await expectStreamError(c, 'not-well-formed');
    expect(c.headers).toHaveLength(1);
  });
});

describe('malformed and restricted XML', () => {
  it.each([
    ['a mismatched close tag', "<message><body>x</message>"],
    ['a duplicate attribute', "<message to='a@localhost' to='b@localhost'/>"],
    ['an unquoted attribute', '<message to=bob@localhost/>'],
    ['invalid UTF-8', Buffer.from([0x3c, 0x6d, 0xff, 0xfe, 0x3e])],
    ['an unbound prefix', '<foo:message/>'],
  ])('answers %s with <not-well-formed/>', async (_name, input) => {
    const c = await authed();
    c.send(input as string);
    await expectStreamError(c, 'not-well-formed');
  });

  it.each([
    ['a comment', '<!-- hello -->'],
    ['a processing instruction', '<?evil data?>'],
    ['an internal entity reference', '<message><body>&xxe;</body></message>'],
  ])('answers %s with <restricted-xml/>', async (_name, input) => {
    const c = await authed();
    c.send(input);
    await expectStreamError(c, 'restricted-xml');
  });

  it('answers a DOCTYPE with <restricted-xml/>', async () => {
    const c = await TestClient.connect(srv.port);
    c.send("<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>");
    await expectStreamError(c, 'restricted-xml');
  });
});

describe('limits', () => {
  it('ends an oversized stanza with <policy-violation/> before it is complete', async () => {
    const c = await authed();
    c.send(`<message to='bob@localhost'><body>${'x'.repeat(20 * 1024)}`);
    await expectStreamError(c, 'policy-violation');
    expect(metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'policy-violation' })).toBeGreaterThanOrEqual(1);
  });

  it('ends absurdly deep nesting with <policy-violation/>', async () => {
    const c = await authed();
    c.send(`<message>${'<a>'.repeat(500)}`);
    await expectStreamError(c, 'policy-violation');
  });

  it('advertises the stanza size limit in the stream features (XEP-0478)', async () => {
    const c = await TestClient.connect(srv.port);
    const features = await c.open();
    expect(features.getChild('limits', 'urn:xmpp:stream-limits:0')?.getChildText('max-bytes')).toBe(String(16 * 1024));
    await c.close();
  });
});

describe('order of negotiation', () => {
  it('answers a stanza before authentication with <not-authorized/>', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    c.send("<message to='bob@localhost'><body>spam</body></message>");
    await expectStreamError(c, 'not-authorized');
  });

  it('answers a stanza after authentication but before bind with a not-authorized error', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    await c.authPlain('alice', 'secret');
    const reply = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(reply.getChild('error')?.getChild('not-authorized')).toBeDefined();
    c.send("<message to='bob@localhost'><body>early</body></message>");
    await expectStreamError(c, 'not-authorized');
  });

  it('answers a non-stanza element in the client namespace with <unsupported-stanza-type/>', async () => {
    const c = await authed();
    c.send('<frobnicate/>');
    await expectStreamError(c, 'unsupported-stanza-type');
  });

  it('answers a malformed to address with a jid-malformed error and keeps the stream', async () => {
    const c = await authed();
    c.send("<message to='a@b@c' id='j1'><body>x</body></message>");
    const err = await c.waitFor((el) => el.name === 'message' && el.attrs.type === 'error');
    expect(err.getChild('error')?.getChild('jid-malformed')).toBeDefined();
    const pong = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(pong.attrs.type).toBe('result');
    await c.close();
  });

  it('answers an iq without an id or with two payloads with bad-request', async () => {
    const c = await authed();
    const two = await c.iq("<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(two.getChild('error')?.getChild('bad-request')).toBeDefined();
    await c.close();
  });
});

describe('the peer closes', () => {
  it('answers </stream:stream> with its own and closes the socket', async () => {
    const c = await authed();
    c.send('</stream:stream>');
    await c.until(() => c.streamEnded);
    await c.closed;
  });

  it('survives a flood of connections that send nothing but half a header and vanish', async () => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => TestClient.connect(srv.port)));
    for (const c of clients) c.send("<stream:stream xmlns='jabber:cli");
    for (const c of clients) c.destroy();
    await Promise.all(clients.map((c) => c.closed));
  });
});
