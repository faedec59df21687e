import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
  for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u);
});
afterAll(() => srv.stop());

describe('one-to-one chat', () => {
  it('delivers a message between two users, stamped with the sender full JID and a stanza-id', async () => {
    const alice = await TestClient.login(srv.port, 'alice', 'secret', 'a');
    const bob = await TestClient.login(srv.port, 'bob', 'secret', 'b');
    alice.send("<message to='bob@localhost' type='chat' id='m1' from='mallory@evil.example'><body>hi bob</body></message>");
    // A forged from is a stream error; send a clean one too to see routing.
    expect((await alice.streamError()).condition).toBe('invalid-from');
    const alice2 = await TestClient.login(srv.port, 'alice', 'secret', 'a2');
    alice2.send("<message to='bob@localhost' type='chat' id='m2'><body>hi bob</body></message>");
    const got = await bob.waitFor((el) => el.name === 'message');
    expect(got.attrs.from).toBe('alice@localhost/a2');
    expect(got.getChildText('body')).toBe('hi bob');
    expect(got.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by).toBe('bob@localhost');
    bob.send("<message to='alice@localhost/a2' type='chat'><body>hi alice</body></message>");
    const back = await alice2.waitFor((el) => el.name === 'message');
    expect(back.attrs.from).toBe('bob@localhost/b');
    expect(back.getChildText('body')).toBe('hi alice');
    await Promise.all([alice2.close(), bob.close()]);
  });

  it('sends a message for a missing full JID to the bare JID', async () => {
    const bob = await TestClient.login(srv.port, 'bob', 'secret', 'laptop');
    const alice = await TestClient.login(srv.port, 'alice', 'secret', 'x');
    alice.send("<message to='bob@localhost/gone' type='chat'><body>where are you</body></message>");
    expect((await bob.waitFor((el) => el.name === 'message')).getChildText('body')).toBe('where are you');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('answers a message to an unknown user with <service-unavailable/>', async () => {
    const alice = await TestClient.login(srv.port, 'alice');
    alice.send("<message to='nobody@localhost' id='u1' type='chat'><body>?</body></message>");
    const err = await alice.waitFor((el) => el.name === 'message' && el.attrs.type === 'error');
    expect(err.attrs.id).toBe('u1');
    expect(err.getChild('error')?.getChild('service-unavailable')).toBeDefined();
    await alice.close();
  });

  it('answers a message to another server with <remote-server-not-found/> (no federation yet)', async () => {
    const alice = await TestClient.login(srv.port, 'alice');
    alice.send("<message to='someone@example.org' id='r1'><body>?</body></message>");
    const err = await alice.waitFor((el) => el.name === 'message' && el.attrs.type === 'error');
    expect(err.getChild('error')?.getChild('remote-server-not-found')).toBeDefined();
    await alice.close();
  });

  it('answers an iq to an unavailable resource with <service-unavailable/>', async () => {
    const alice = await TestClient.login(srv.port, 'alice');
    const reply = await alice.iq("<query xmlns='jabber:iq:version'/>", "type='get' to='bob@localhost/nowhere'");
    expect(reply.attrs.type).toBe('error');
    expect(reply.getChild('error')?.getChild('service-unavailable')).toBeDefined();
    await alice.close();
  });

  it('routes an iq between two full JIDs and its result back', async () => {
    const alice = await TestClient.login(srv.port, 'alice', 'secret', 'q');
    const bob = await TestClient.login(srv.port, 'bob', 'secret', 'r');
    alice.send("<iq type='get' id='v1' to='bob@localhost/r'><query xmlns='jabber:iq:version'/></iq>");
    const asked = await bob.waitFor((el) => el.name === 'iq');
    expect(asked.attrs.from).toBe('alice@localhost/q');
    bob.send("<iq type='result' id='v1' to='alice@localhost/q'><query xmlns='jabber:iq:version'><name>bot</name></query></iq>");
    const answer = await alice.waitFor((el) => el.name === 'iq' && el.attrs.id === 'v1');
    expect(answer.getChild('query')?.getChildText('name')).toBe('bot');
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('offline messages', () => {
  it('stores messages for an offline user and delivers them, in order and with a delay stamp, on initial presence', async () => {
    const alice = await TestClient.login(srv.port, 'alice');
    alice.send("<message to='carol@localhost' type='chat' id='o1'><body>first</body></message>");
    alice.send("<message to='carol@localhost' type='chat' id='o2'><body>second</body></message>");
    await alice.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    await alice.close();
    await expect(srv.storage.countOffline('carol')).resolves.toBe(2);

    const carol = await TestClient.login(srv.port, 'carol', 'secret', 'home', { presence: false });
    await expect(carol.waitFor((el) => el.name === 'message', 300)).rejects.toThrow('timed out');
    carol.send('<presence/>');
    const first = await carol.waitFor((el) => el.name === 'message');
    const second = await carol.waitFor((el) => el.name === 'message');
    expect([first.getChildText('body'), second.getChildText('body')]).toEqual(['first', 'second']);
    const delay = first.getChild('delay', 'urn:xmpp:delay');
    expect(delay?.attrs.from).toBe('localhost');
    expect(Number.isNaN(Date.parse(delay?.attrs.stamp))).toBe(false);
    expect(first.attrs.from).toMatch(/^alice@localhost\//);
    expect(first.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id).toMatch(/.{8,}/);
    // Stored until carol confirms them by speaking after them (here: closing her stream), then gone.
    await expect(srv.storage.countOffline('carol')).resolves.toBe(2);
    await carol.close();
    await eventually(async () => (await srv.storage.countOffline('carol')) === 0);
    await expect(srv.storage.countOffline('carol')).resolves.toBe(0);
  });
});

describe('server features', () => {
  it('answers a ping to the server', async () => {
    const c = await TestClient.login(srv.port, 'alice');
    const pong = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(pong.attrs.type).toBe('result');
    expect(pong.attrs.from).toBe('localhost');
    await c.close();
  });

  it('lists its identity and features in disco#info, and no items', async () => {
    const c = await TestClient.login(srv.port, 'alice');
    const info = await c.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", "type='get' to='localhost'");
    const query = info.getChild('query')!;
    expect(query.getChild('identity')?.attrs).toMatchObject({ category: 'server', type: 'im' });
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining(['urn:xmpp:ping', 'jabber:iq:version', 'http://jabber.org/protocol/disco#info', 'msgoffline', 'urn:xmpp:sid:0']));
    const items = await c.iq("<query xmlns='http://jabber.org/protocol/disco#items'/>", "type='get' to='localhost'");
    expect(items.getChild('query')?.getChildElements()).toEqual([]);
    await c.close();
  });

  it('tells its name and version', async () => {
    const c = await TestClient.login(srv.port, 'alice');
    const v = await c.iq("<query xmlns='jabber:iq:version'/>", "type='get' to='localhost'");
    expect(v.getChild('query')?.getChildText('name')).toBe('Vigil');
    expect(v.getChild('query')?.getChildText('version')).toMatch(/^\d+\.\d+\.\d+/);
    await c.close();
  });

  it('answers an iq for an unknown namespace with <service-unavailable/>', async () => {
    const c = await TestClient.login(srv.port, 'alice');
    const r = await c.iq("<query xmlns='urn:example:nothing'/>", "type='get' to='localhost'");
    expect(r.getChild('error')?.getChild('service-unavailable')).toBeDefined();
    await c.close();
  });

  it('accepts the legacy session establishment of old clients', async () => {
    const c = await TestClient.login(srv.port, 'alice');
    const r = await c.iq("<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", "type='set'");
    expect(r.attrs.type).toBe('result');
    await c.close();
  });
});
