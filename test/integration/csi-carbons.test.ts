import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

const CSI = 'urn:xmpp:csi:0';
const CARBONS = 'urn:xmpp:carbons:2';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.stop());

const users = (...prefixes: string[]) => srv.freshUsers(...prefixes);
const login = (name: string, resource = 'r') => TestClient.login(srv.port, name, 'secret', resource);

async function friends(a: string, ...others: string[]): Promise<void> {
  for (const b of others) await srv.befriend(a, b);
}

/** Everything sent to `c` so far has arrived: an iq round trip on the same stream comes after it. */
async function settled(c: TestClient): Promise<void> {
  await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
}

const presences = (c: TestClient, from: string) => c.elements.filter((el) => el.name === 'presence' && el.attrs.from === from);
const show = (el: Element) => el.getChildText('show');

describe('client state indication (XEP-0352)', () => {
  it('holds presence while inactive, only the latest per contact, and lets it go before a message', async () => {
    const [[a], [b], [c]] = await users('csia', 'csib', 'csic');
    await friends(a, b, c);
    const alice = await login(a);
    const bob = await login(b, 'b');
    const carol = await login(c, 'c');
    await settled(alice);
    alice.elements.length = 0;
    alice.send(`<inactive xmlns='${CSI}'/>`);
    await settled(alice);
    // Not an iq round trip to alice to know what reached the server: its reply would be urgent and let the
    // presence go. The server's side says.
    const held = () => srv.server.ctx.registry.getByFullJid(alice.jid)?.csi?.held ?? 0;
    bob.send('<presence><show>away</show></presence>');
    await eventually(() => held() === 1);
    carol.send('<presence><show>dnd</show></presence>');
    await eventually(() => held() === 2);
    bob.send('<presence><show>xa</show></presence>');
    // A broadcast reaches the sender's own resource in the same pass as its contacts.
    await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid && show(el) === 'xa');
    expect(held()).toBe(2);
    expect(presences(alice, bob.jid)).toEqual([]);
    expect(presences(alice, carol.jid)).toEqual([]);
    bob.send(`<message to='${alice.jid}' type='chat'><body>wake up</body></message>`);
    const message = await alice.waitFor((el) => el.name === 'message');
    // What was held came first, one per contact, the latest, in the order they last changed.
    const released = alice.elements.filter((el) => el.name === 'presence');
    expect(released.map((p) => [p.attrs.from, show(p)])).toEqual([[carol.jid, 'dnd'], [bob.jid, 'xa']]);
    expect(message.getChildText('body')).toBe('wake up');
    await Promise.all([alice.close(), bob.close(), carol.close()]);
  });

  it('sends what it held when the client is active again, and nothing is held after that', async () => {
    const [[a], [b]] = await users('csid', 'csie');
    await friends(a, b);
    const alice = await login(a);
    const bob = await login(b, 'b');
    await settled(alice);
    alice.send(`<inactive xmlns='${CSI}'/>`);
    await settled(alice);
    bob.send('<presence><show>chat</show></presence>');
    await eventually(() => srv.server.ctx.registry.getByFullJid(alice.jid)?.csi?.held === 1);
    await settled(bob);
    expect(presences(alice, bob.jid).filter((p) => show(p) === 'chat')).toEqual([]);
    alice.send(`<active xmlns='${CSI}'/>`);
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid && show(el) === 'chat');
    bob.send('<presence><show>away</show></presence>');
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid && show(el) === 'away');
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('message carbons (XEP-0280)', () => {
  async function enableCarbons(c: TestClient): Promise<void> {
    const reply = await c.iq(`<enable xmlns='${CARBONS}'/>`, "type='set'");
    expect(reply.attrs.type).toBe('result');
  }

  /** Alice on a phone with carbons enabled and on a laptop without, and Bob. */
  async function phoneLaptopAndBob(alice: string, bobName: string): Promise<{ phone: TestClient; laptop: TestClient; bob: TestClient; bBare: string }> {
    const [[a], [b, bBare]] = await users(alice, bobName);
    const phone = await login(a, 'phone');
    const laptop = await login(a, 'laptop');
    const bob = await login(b, 'b');
    await enableCarbons(phone);
    return { phone, laptop, bob, bBare };
  }

  const carbon = (direction: 'sent' | 'received') => (el: Element) => el.name === 'message' && el.getChild(direction, CARBONS) !== undefined;
  const forwarded = (el: Element, direction: 'sent' | 'received') => el.getChild(direction, CARBONS)!.getChild('forwarded', 'urn:xmpp:forward:0')!.getChild('message')!;

  it('is advertised in disco, and answers a get or an unknown element with <bad-request/>', async () => {
    const [[a]] = await users('cdisco');
    const alice = await login(a);
    const info = await alice.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", "type='get' to='localhost'");
    expect(info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).toContain(CARBONS);
    const get = await alice.iq(`<enable xmlns='${CARBONS}'/>`, "type='get'");
    expect(get.getChild('error')?.getChild('bad-request')).toBeDefined();
    await alice.close();
  });

  it('copies a chat received by one resource to the other, and one sent by it, each from the bare JID', async () => {
    const [[a, aBare], [b, bBare]] = await users('carba', 'carbb');
    const phone = await login(a, 'phone');
    const laptop = await login(a, 'laptop');
    const bob = await login(b, 'b');
    await enableCarbons(phone);
    await enableCarbons(laptop);
    bob.send(`<message to='${phone.jid}' type='chat' id='in1'><body>to your phone</body></message>`);
    expect((await phone.waitFor((el) => el.name === 'message' && el.attrs.id === 'in1')).getChildText('body')).toBe('to your phone');
    const received = await laptop.waitFor(carbon('received'));
    expect(received.attrs).toMatchObject({ from: aBare, to: laptop.jid });
    expect(forwarded(received, 'received').attrs).toMatchObject({ from: bob.jid, to: phone.jid, id: 'in1' });

    laptop.send(`<message to='${bBare}' type='chat' id='out1'><body>from the laptop</body></message>`);
    await bob.waitFor((el) => el.name === 'message' && el.attrs.id === 'out1');
    const sent = await phone.waitFor(carbon('sent'));
    expect(sent.attrs.from).toBe(aBare);
    expect(forwarded(sent, 'sent').attrs).toMatchObject({ from: laptop.jid, to: bBare, id: 'out1' });
    const text = await srv.metrics();
    expect(metricValue(text, 'vigil_carbons_total', { direction: 'received' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'vigil_carbons_total', { direction: 'sent' })).toBeGreaterThanOrEqual(1);
    await Promise.all([phone.close(), laptop.close(), bob.close()]);
  });

  it('copies a normal message that has a body, and not one without (a receipt)', async () => {
    const { phone, laptop, bob, bBare } = await phoneLaptopAndBob('carbe', 'carbf');
    laptop.send(`<message to='${bBare}' id='n1'><body>normal</body></message>`);
    laptop.send(`<message to='${bBare}' id='n2'><received xmlns='urn:xmpp:receipts' id='x'/></message>`);
    laptop.send(`<message to='${bBare}' type='chat' id='n3'><body>chat</body></message>`);
    // Carbons leave in the order of their messages: once n3's is here (and taken), n2's would have been too.
    await phone.waitFor((el) => carbon('sent')(el) && forwarded(el, 'sent').attrs.id === 'n3');
    expect(phone.elements.filter(carbon('sent')).map((el) => forwarded(el, 'sent').attrs.id)).toEqual(['n1']);
    await Promise.all([phone.close(), laptop.close(), bob.close()]);
  });

  it('copies nothing to a resource that did not enable them, or disabled them, nor a private or no-copy message', async () => {
    const { phone, laptop, bob, bBare } = await phoneLaptopAndBob('carbc', 'carbd');
    bob.send(`<message to='${phone.jid}' type='chat'><body>1</body></message>`);
    await phone.waitFor((el) => el.name === 'message');
    laptop.send(`<message to='${bBare}' type='chat'><body>2</body><private xmlns='${CARBONS}'/></message>`);
    laptop.send(`<message to='${bBare}' type='chat'><body>3</body><no-copy xmlns='urn:xmpp:hints'/></message>`);
    laptop.send(`<message to='${bBare}' type='headline'><body>4</body></message>`);
    await bob.until(() => bob.elements.filter((el) => el.name === 'message').length === 3);
    expect((await phone.iq(`<disable xmlns='${CARBONS}'/>`, "type='set'")).attrs.type).toBe('result');
    laptop.send(`<message to='${bBare}' type='chat'><body>5</body></message>`);
    await bob.until(() => bob.elements.filter((el) => el.name === 'message').length === 4);
    await settled(phone);
    await settled(laptop);
    expect(phone.elements.filter(carbon('sent'))).toEqual([]);
    expect(laptop.elements.filter(carbon('received'))).toEqual([]);
    await Promise.all([phone.close(), laptop.close(), bob.close()]);
  });
});
