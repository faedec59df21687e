import { parse, type Element } from 'ltx';
import { loadConfig } from '../../src/config/load';
import { XmlStreamFraming } from '../../src/framing/xml-stream';
import { createLogger } from '../../src/log';
import { SERVER, type Origin } from '../../src/router/origin';
import { Router } from '../../src/router/router';
import { SessionRegistry } from '../../src/sessions/registry';
import { Session } from '../../src/sessions/session';
import { Connection, type ConnectionEvents } from '../../src/transport/connection';
import { parseJid, type Jid } from '../../src/xmpp/jid';
import { MemoryTransport } from '../helpers/memory-transport';

const config = loadConfig({ env: {}, overrides: { domain: 'localhost', log: { level: 'silent' } } });
const host = { sessionClosed: () => undefined, sessionHibernated: () => undefined, stanzaCounter: () => ({ inc: () => undefined }) };
const ignore: ConnectionEvents = { onStreamStart: () => undefined, onStanza: () => undefined, onStreamEnd: () => undefined, onTransportEnd: () => undefined, onError: () => undefined, onReceived: () => undefined, onClosed: () => undefined };

interface Client {
  session: Session;
  t: MemoryTransport;
}

function setup({ federating = true } = {}) {
  const registry = new SessionRegistry();
  const router = new Router({ registry, log: createLogger('silent'), config });
  const remote: { stanza: Element; to: Jid; origin: Origin }[] = [];
  if (federating) router.handleRemote((stanza, to, origin) => remote.push({ stanza, to, origin }));
  const served: Element[] = [];
  router.handleServerIq('urn:xmpp:ping', (iq) => {
    served.push(iq);
    return parse(`<iq xmlns='jabber:client' type='result' id='${iq.attrs.id}' to='${iq.attrs.from}'/>`) as Element;
  });
  /** A bound, available client resource whose output is parsed as its client would see it. */
  const client = (full: string, priority = 0): Client => {
    const t = new MemoryTransport();
    const conn = new Connection(t, new XmlStreamFraming(ignore, 1 << 16), ignore, { closeTimeout: 1000, tcpKeepAlive: 0, pauseReadingAt: 1 << 20 }, { xmlns: 'jabber:client' });
    conn.open({ xmlns: 'jabber:client', from: 'localhost' });
    const session = new Session('c2s', conn, config.watchdog.c2s, host);
    session.jid = parseJid(full)!;
    session.username = session.jid.local;
    session.bareJid = session.jid.bare;
    session.state = 'active';
    session.im.available = true;
    session.im.priority = priority;
    registry.add(session);
    registry.bind(session);
    return { session, t };
  };
  return { router, registry, remote, served, client };
}

const el = (xml: string) => parse(xml) as Element;
const errorOf = (stanza: Element | undefined) => stanza?.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;

describe('router addressing', () => {
  it('delivers to a full JID, and to the highest-priority resource for a bare JID', () => {
    const { router, client } = setup();
    const alice = client('alice@localhost/a');
    const desk = client('bob@localhost/desk', 5);
    const phone = client('bob@localhost/phone', 1);
    router.route(el("<message xmlns='jabber:client' from='alice@localhost/a' to='bob@localhost/phone' type='chat'><body>1</body></message>"), alice.session);
    expect(phone.t.last('message')!.getChildText('body')).toBe('1');
    router.route(el("<message xmlns='jabber:client' from='alice@localhost/a' to='bob@localhost' type='chat'><body>2</body></message>"), alice.session);
    expect(desk.t.last('message')!.getChildText('body')).toBe('2');
    expect(phone.t.received.filter((e) => e.name === 'message')).toHaveLength(1);
  });

  it('normalises the address first: case, width and a trailing dot on the domain', () => {
    const { router, client, remote } = setup();
    const alice = client('alice@localhost/a');
    const bob = client('bob@localhost/r');
    router.route(el("<message xmlns='jabber:client' from='alice@localhost/a' to='ＢＯＢ@LocalHost./r'><body>x</body></message>"), alice.session);
    const got = bob.t.last('message')!;
    expect(got.attrs.to).toBe('bob@localhost/r');
    expect(remote).toHaveLength(0);
  });

  it('hands the domain, with or without a resource, to the server itself', async () => {
    const { router, client, served } = setup();
    const alice = client('alice@localhost/a');
    router.route(el("<iq xmlns='jabber:client' type='get' id='p1' from='alice@localhost/a' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"), alice.session);
    router.route(el("<iq xmlns='jabber:client' type='get' id='p2' from='alice@localhost/a' to='localhost/a@b'><ping xmlns='urn:xmpp:ping'/></iq>"), alice.session);
    await new Promise((r) => setImmediate(r));
    expect(served.map((iq) => iq.attrs.id)).toEqual(['p1', 'p2']);
    expect(alice.t.received.filter((e) => e.name === 'iq' && e.attrs.type === 'result').map((e) => e.attrs.id)).toEqual(['p1', 'p2']);
  });

  it('puts stanzas for other domains in the remote slot, and bounces them there by default', () => {
    const { router, client, remote } = setup();
    const alice = client('alice@localhost/a');
    router.route(el("<message xmlns='jabber:client' from='alice@localhost/a' to='carol@example.org'><body>x</body></message>"), alice.session);
    expect(remote.map((r) => r.to.full)).toEqual(['carol@example.org']);
    expect(remote[0].origin).toBe(alice.session);

    const alone = setup({ federating: false });
    const dave = alone.client('dave@localhost/d');
    alone.router.route(el("<message xmlns='jabber:client' from='dave@localhost/d' to='carol@example.org' id='m1'><body>x</body></message>"), dave.session);
    const bounced = dave.t.last('message')!;
    expect(bounced.attrs.from).toBe('carol@example.org');
    expect(errorOf(bounced)).toBe('remote-server-not-found');
  });

  it('answers a malformed address with jid-malformed, to the sender', () => {
    const { router, client } = setup();
    const alice = client('alice@localhost/a');
    for (const to of ['@localhost', 'bob@localhost/', 'bo b@localhost', `${'x'.repeat(1024)}@localhost`]) {
      router.route(el(`<message xmlns='jabber:client' from='alice@localhost/a' to='${to}' id='m'><body>x</body></message>`), alice.session);
      expect(errorOf(alice.t.last('message'))).toBe('jid-malformed');
      alice.t.received.length = 0;
    }
  });
});

describe('router errors', () => {
  it('routes an error to the sender whatever the origin: a client, the server itself, another domain', () => {
    const { router, registry, client, remote } = setup();
    const alice = client('alice@localhost/a');
    // From a client: an iq to an account resource that is not there.
    router.route(el("<iq xmlns='jabber:client' type='get' id='q1' from='alice@localhost/a' to='nobody@localhost/x'><ping xmlns='urn:xmpp:ping'/></iq>"), alice.session);
    expect(errorOf(alice.t.last('iq'))).toBe('service-unavailable');
    // From the server itself, on behalf of a local user.
    router.route(el("<iq xmlns='jabber:client' type='get' id='q2' from='alice@localhost/a' to='nobody@localhost/x'><ping xmlns='urn:xmpp:ping'/></iq>"), SERVER);
    expect(alice.t.last('iq')!.attrs.id).toBe('q2');
    expect(errorOf(alice.t.last('iq'))).toBe('service-unavailable');
    // From another domain: the error goes back through the remote slot.
    router.route(el("<message xmlns='jabber:client' type='groupchat' id='g1' from='carol@example.org/c' to='alice@localhost'><body>x</body></message>"), SERVER);
    expect(remote).toHaveLength(1);
    expect(remote[0].to.full).toBe('carol@example.org/c');
    expect(errorOf(remote[0].stanza)).toBe('service-unavailable');
    expect(registry.size).toBe(1);
  });

  it('never answers an error with an error', () => {
    const { router, client } = setup();
    const alice = client('alice@localhost/a');
    router.route(el("<message xmlns='jabber:client' type='error' from='alice@localhost/a' to='bad@@localhost'/>"), alice.session);
    router.route(el("<iq xmlns='jabber:client' type='result' id='r' from='alice@localhost/a' to='x@localhost/gone'/>"), alice.session);
    expect(alice.t.received.filter((e) => e.attrs.type === 'error')).toHaveLength(0);
  });
});

describe('router.expectReply', () => {
  afterEach(() => jest.useRealTimers());

  it('matches a reply by id and sender, wherever it arrives', async () => {
    const { router, client } = setup();
    const alice = client('alice@localhost/a');
    const reply = router.expectReply('ping-1', 'alice@localhost/a', 60_000);
    // The same id from someone else is not the reply.
    const mallory = client('mallory@localhost/m');
    router.route(el("<iq xmlns='jabber:client' type='result' id='ping-1' from='mallory@localhost/m'/>"), mallory.session);
    router.route(el("<iq xmlns='jabber:client' type='error' id='ping-1' from='alice@localhost/a'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"), alice.session);
    const got = await reply;
    expect(got.attrs.from).toBe('alice@localhost/a');
    expect(got.attrs.type).toBe('error');
  });

  it('takes no error the server made up itself as the reply', async () => {
    jest.useFakeTimers();
    const { router } = setup();
    const reply = router.expectReply('ping-3', 'gone@localhost/x', 5000);
    // A ping to a resource that is not there bounces; the bounce comes from the server, not from the peer.
    router.route(el("<iq xmlns='jabber:client' type='get' id='ping-3' from='localhost' to='gone@localhost/x'><ping xmlns='urn:xmpp:ping'/></iq>"), SERVER);
    jest.advanceTimersByTime(5000);
    await expect(reply).rejects.toThrow('no reply to ping-3');
  });

  it('rejects when no reply comes within the timeout', async () => {
    jest.useFakeTimers();
    const { router } = setup();
    const reply = router.expectReply('ping-2', 'example.org', 5000);
    jest.advanceTimersByTime(5000);
    await expect(reply).rejects.toThrow('no reply to ping-2 from example.org within 5000 ms');
  });
});
