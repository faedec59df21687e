import { parse, type Element } from 'ltx';
import { SERVER } from '../../src/router/origin';
import { MemoryTransport } from '../helpers/memory-transport';
import { startServer, type TestServer } from '../helpers/server';

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

/** Everything the server wrote, one turn of the event loop later (storage lookups are asynchronous). */
const settle = () => new Promise((r) => setTimeout(r, 20));
async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await settle();
  expect(check()).toBe(true);
}

describe('a c2s stream over a transport with no socket', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
    await srv.addUser('memo');
  });
  afterAll(() => srv.stop());

  it('negotiates SASL PLAIN, restarts, binds, and exchanges stanzas through the router', async () => {
    const t = new MemoryTransport();
    const session = srv.server.accept(t)!;
    expect(t.keepAliveMs).toBe(srv.config.watchdog.c2s.tcpKeepAlive);

    t.push(HEADER);
    expect(t.headers).toHaveLength(1);
    expect(t.headers[0].attrs.from).toBe('localhost');
    const mechanisms = t.last('stream:features')!.getChild('mechanisms')!.getChildren('mechanism').map((m) => m.getText());
    expect(mechanisms).toContain('PLAIN');
    expect(t.last('stream:features')!.getChild('starttls')).toBeUndefined(); // nothing to upgrade

    t.push(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('memo', 'secret')}</auth>`);
    await until(() => t.last('success') !== undefined);
    t.restartReader();
    t.push(HEADER);
    expect(t.headers).toHaveLength(2);
    expect(t.last('stream:features')!.getChild('bind')).toBeDefined();

    t.push("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>");
    expect(t.last('iq')!.getChild('bind')!.getChildText('jid')).toBe('memo@localhost/desk');
    expect(srv.server.ctx.registry.getByFullJid('memo@localhost/desk')).toBe(session);

    // A ping to the server is answered through the router, on this transport.
    t.push("<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>");
    await until(() => t.received.some((el) => el.name === 'iq' && el.attrs.id === 'p1' && el.attrs.type === 'result'));

    // The server sends to the session by routing to its JID.
    srv.server.ctx.router.route(parse("<message xmlns='jabber:client' from='localhost' to='memo@localhost/desk' type='headline'><body>hi</body></message>") as Element, SERVER);
    expect(t.last('message')!.getChildText('body')).toBe('hi');

    // The session's close goes through the framing: a stream error, the end of the stream, then the transport.
    session.close('shutdown', { text: 'bye' });
    expect(t.last('stream:error')!.getChild('system-shutdown')).toBeDefined();
    expect(t.serverEnded).toBe(true);
    expect(t.ended).toBe(true);
    expect(srv.server.ctx.registry.getByFullJid('memo@localhost/desk')).toBeUndefined();
    t.drop();
    expect(session.state).toBe('closed');
  });

  it('sends its own stream header before a stream error to a peer that never opened one', () => {
    const t = new MemoryTransport();
    srv.server.accept(t);
    t.push("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>");
    expect(t.headers).toHaveLength(1);
    expect(t.last('stream:error')!.getChild('invalid-namespace')).toBeDefined();
    expect(t.serverEnded).toBe(true);
  });

  it('resets a transport whose peer does not close after our end of the stream', async () => {
    const t = new MemoryTransport();
    const session = srv.server.accept(t)!;
    session.policy = { ...session.policy, closeTimeout: 10 };
    session.conn!.setOptions({ closeTimeout: 10, tcpKeepAlive: 0, pauseReadingAt: 1 << 20 });
    expect(t.keepAliveMs).toBe(0);
    session.close('idle', { text: 'idle: nothing received' });
    expect(t.headers).toHaveLength(1); // never opened by the peer: the server's header goes first
    expect(t.last('stream:error')!.getChild('connection-timeout')).toBeDefined();
    await until(() => t.wasReset);
    expect(session.state).toBe('closed');
  });
});
