import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

/** One test per RFC fault found in review; each asserts what a client sees. */
describe('RFC faults, fixed in the core', () => {
  let srv: TestServer;
  const clients: TestClient[] = [];
  const login = async (user: string, resource = 'r') => {
    const c = await TestClient.login(srv.port, user, 'secret', resource, { presence: false });
    clients.push(c);
    return c;
  };
  const errorCondition = (el: Element) => el.getChild('error')?.getChildElements().find((c) => c.name !== 'text')?.name;

  beforeAll(async () => {
    srv = await startServer();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });
  afterAll(() => srv.stop());

  it('sends initial and updated presence back to the sending resource (RFC 6121 §4.2.2, §4.4.2)', async () => {
    const [[a]] = await srv.freshUsers('self');
    const c = await login(a);
    c.send('<presence/>');
    const initial = await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
    expect(initial.attrs.type).toBeUndefined();
    c.send('<presence><show>away</show></presence>');
    const updated = await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
    expect(updated.getChildText('show')).toBe('away');
  });

  it('normalises JIDs with PRECIS: width and case mapped, a trailing dot on the domain stripped', async () => {
    const [[a], [b, bj]] = await srv.freshUsers('wide', 'bob');
    const alice = await login(a);
    const bob = await login(b);
    bob.send('<presence/>');
    await bob.waitFor((el) => el.name === 'presence');
    const fullWidth = [...b].map((ch) => String.fromCharCode(ch.charCodeAt(0) + 0xfee0)).join(''); // ｂｏｂ… for bob…
    alice.send(`<message to='${fullWidth}@LOCALHOST' type='chat'><body>wide</body></message>`);
    alice.send(`<message to='${b}@localhost.' type='chat'><body>dot</body></message>`);
    const first = await bob.waitFor((el) => el.name === 'message');
    const second = await bob.waitFor((el) => el.name === 'message');
    expect([first.getChildText('body'), second.getChildText('body')]).toEqual(['wide', 'dot']);
    expect(first.attrs.to).toBe(bj); // as normalised, not as written
  });

  it.each([
    ['an empty localpart', '@localhost'],
    ['an empty resource', 'someone@localhost/'],
    ['a localpart over 1023 bytes', `${'é'.repeat(512)}@localhost`],
    ['a space in the localpart', 'some one@localhost'],
  ])('answers a JID with %s with jid-malformed', async (_what, to) => {
    const [[a]] = await srv.freshUsers('malformed');
    const c = await login(a);
    const reply = await c.iq("<ping xmlns='urn:xmpp:ping'/>", `type='get' to='${to}'`);
    expect(reply.attrs.type).toBe('error');
    expect(errorCondition(reply)).toBe('jid-malformed');
  });

  it('handles a stanza to its own domain with a resource (localhost/a@b) itself', async () => {
    const [[a]] = await srv.freshUsers('domres');
    const c = await login(a);
    const reply = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost/a@b'");
    expect(reply.attrs.type).toBe('result');
  });

  it('ends the stream with <not-well-formed/> at a stray close tag between stanzas', async () => {
    const [[a]] = await srv.freshUsers('stray');
    const c = await login(a);
    c.send('</message>');
    expect((await c.streamError()).condition).toBe('not-well-formed');
  });

  it('answers base64 that is not canonical with <incorrect-encoding/>', async () => {
    await srv.addUser('b64users');
    const c = await TestClient.connect(srv.port);
    clients.push(c);
    await c.open();
    // 16 bytes: the last base64 digit carries 2 bits and 4 zero bits. Set one of those: the bytes decode the
    // same, but RFC 4648 §3.5 canonical encoding (which RFC 6120 §6.4.2 asks for) they are not.
    const canonical = Buffer.from('\0b64users\0secret').toString('base64');
    expect(canonical.endsWith('==')).toBe(true);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const digit = canonical[canonical.length - 3];
    const tweaked = `${canonical.slice(0, -3)}${alphabet[alphabet.indexOf(digit) + 1]}==`;
    expect(Buffer.from(tweaked, 'base64')).toEqual(Buffer.from(canonical, 'base64'));
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${tweaked}</auth>`);
    const failure = await c.waitFor((el) => el.name === 'failure');
    expect(failure.getChild('incorrect-encoding')).toBeDefined();
  });

  it('refuses a SCRAM authzid naming another user with <invalid-authzid/>', async () => {
    const [[a], [b]] = await srv.freshUsers('scramz', 'victim');
    const c = await TestClient.connect(srv.port);
    clients.push(c);
    await c.open();
    const failure = await c.authScram(a, 'secret', 'sha256', `${b}@localhost`);
    expect(failure.name).toBe('failure');
    expect(failure.getChild('invalid-authzid')).toBeDefined();
    const own = await TestClient.connect(srv.port);
    clients.push(own);
    await own.open();
    expect((await own.authScram(a, 'secret', 'sha256', `${a}@localhost`)).name).toBe('success');
  });
});

describe('c2s.maxStanzaSize', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ c2s: { maxStanzaSize: 1000 } });
  });
  afterAll(() => srv.stop());

  it('counts c2s.maxStanzaSize in bytes, as the advertised max-bytes says', async () => {
    const [[a]] = await srv.freshUsers('bytes');
    const c = await TestClient.connect(srv.port);
    const features = await c.open();
    expect(features.getChild('limits')?.getChildText('max-bytes')).toBe('1000');
    await c.authPlain(a, 'secret');
    await c.bind('r');
    // 400 characters of text, 1,200 bytes in UTF-8: over the limit although under it in characters.
    c.send(`<message to='${a}@localhost'><body>${'€'.repeat(400)}</body></message>`);
    expect((await c.streamError()).condition).toBe('policy-violation');
    c.destroy();
  });
});

describe('in-band registration off the event loop', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // Slow hashing on purpose: with PBKDF2 on the event loop, nothing else could be answered meanwhile.
    srv = await startServer({ c2s: { registration: { enabled: true, perIpPerHour: 0 }, scramIterations: 400_000 } });
  });
  afterAll(() => srv.stop());

  it('answers other sessions while it hashes a new password', async () => {
    const [[a]] = await srv.freshUsers('busy');
    const other = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
    const reg = await TestClient.connect(srv.port);
    await reg.open();
    const order: string[] = [];
    const registered = reg
      .iq("<query xmlns='jabber:iq:register'><username>newcomer</username><password>pw-newcomer</password></query>", "type='set'")
      .then((r) => order.push(`register:${r.attrs.type}`));
    await new Promise((r) => setTimeout(r, 5)); // the set is being hashed now
    await other.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'").then(() => order.push('ping'));
    await registered;
    expect(order).toEqual(['ping', 'register:result']);
    other.destroy();
    reg.destroy();
  });
});
