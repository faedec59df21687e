import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

const ROSTER = 'jabber:iq:roster';

let srv: TestServer;
let n = 0;
beforeAll(async () => {
  srv = await startServer({ c2s: { maxRosterItems: 3 } });
});
afterAll(() => srv.stop());

/** A fresh account for each test, so tests do not see each other's rosters. */
async function user(prefix: string): Promise<string> {
  const name = `${prefix}${++n}`;
  await srv.addUser(name);
  return name;
}

/** Log in, fetch the roster (so pushes come), then send initial presence. */
async function online(name: string, resource: string): Promise<TestClient> {
  const c = await TestClient.login(srv.port, name, 'secret', resource, { presence: false });
  const roster = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
  expect(roster.attrs.type).toBe('result');
  c.send('<presence/>');
  return c;
}

const items = (iq: Element) => iq.getChild('query', ROSTER)?.getChildren('item') ?? [];

function rosterPush(c: TestClient, jid: string): Promise<Element> {
  return c.waitFor((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid);
}

const set = (c: TestClient, item: string) => c.iq(`<query xmlns='${ROSTER}'>${item}</query>`, "type='set'");
const errorCondition = (iq: Element) => iq.getChild('error')?.getChildElements().find((e) => e.name !== 'text')?.name;

describe('roster get, set and remove (RFC 6121 §2)', () => {
  it('adds an item with a name and groups, pushes it, and returns it on the next get', async () => {
    const alice = await user('alice');
    const c = await online(alice, 'desk');
    const first = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    expect(items(first)).toHaveLength(0);
    expect(first.getChild('query')?.attrs.ver).toBeDefined();

    const result = await set(c, "<item jid='Friend@LocalHost' name='My Friend'><group>Work</group><group>Chess</group></item>");
    expect(result.attrs.type).toBe('result');
    const push = await rosterPush(c, 'friend@localhost');
    expect(push.getChild('query')?.attrs.ver).toBeDefined();
    const pushed = push.getChild('query')!.getChild('item')!;
    expect(pushed.attrs).toMatchObject({ jid: 'friend@localhost', name: 'My Friend', subscription: 'none' });
    expect(pushed.getChildren('group').map((g) => g.getText())).toEqual(['Work', 'Chess']);
    c.send(`<iq type='result' id='${push.attrs.id}'/>`);

    const again = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    expect(items(again).map((i) => i.attrs)).toEqual([{ jid: 'friend@localhost', name: 'My Friend', subscription: 'none' }]);
    await c.close();
  });

  it('pushes every change to each resource that asked for the roster, and not to one that did not', async () => {
    const alice = await user('alice');
    const desk = await online(alice, 'desk');
    const phone = await online(alice, 'phone');
    const quiet = await TestClient.login(srv.port, alice, 'secret', 'quiet'); // never asks for the roster

    await set(desk, "<item jid='bob@localhost' name='Bob'/>");
    for (const c of [desk, phone]) expect((await rosterPush(c, 'bob@localhost')).getChild('query')!.getChild('item')!.attrs.name).toBe('Bob');

    await set(phone, "<item jid='bob@localhost' name='Bobby'><group>Friends</group></item>");
    for (const c of [desk, phone]) {
      const item = (await rosterPush(c, 'bob@localhost')).getChild('query')!.getChild('item')!;
      expect(item.attrs.name).toBe('Bobby');
      expect(item.getChildText('group')).toBe('Friends');
    }

    await set(desk, "<item jid='bob@localhost' subscription='remove'/>");
    for (const c of [desk, phone]) expect((await rosterPush(c, 'bob@localhost')).getChild('query')!.getChild('item')!.attrs.subscription).toBe('remove');

    await quiet.iq(`<ping xmlns='urn:xmpp:ping'/>`, "type='get'");
    expect(quiet.elements.filter((el) => el.name === 'iq' && el.getChild('query', ROSTER))).toHaveLength(0);
    expect(items(await desk.iq(`<query xmlns='${ROSTER}'/>`, "type='get'"))).toHaveLength(0);
    await Promise.all([desk.close(), phone.close(), quiet.close()]);
  });

  it('answers a fetch with the current ver by an empty result, and an old ver by the whole roster', async () => {
    const alice = await user('alice');
    const c = await online(alice, 'desk');
    await set(c, "<item jid='bob@localhost'/>");
    const full = await c.iq(`<query xmlns='${ROSTER}' ver=''/>`, "type='get'");
    const ver = full.getChild('query')!.attrs.ver as string;
    expect(items(full)).toHaveLength(1);

    const unchanged = await c.iq(`<query xmlns='${ROSTER}' ver='${ver}'/>`, "type='get'");
    expect(unchanged.attrs.type).toBe('result');
    expect(unchanged.children).toHaveLength(0);

    await set(c, "<item jid='carol@localhost'/>");
    const push = await rosterPush(c, 'carol@localhost');
    const newVer = push.getChild('query')!.attrs.ver as string;
    expect(newVer).not.toBe(ver);
    const changed = await c.iq(`<query xmlns='${ROSTER}' ver='${ver}'/>`, "type='get'");
    expect(changed.getChild('query')!.attrs.ver).toBe(newVer);
    expect(items(changed).map((i) => i.attrs.jid)).toEqual(['bob@localhost', 'carol@localhost']);
    await c.close();
  });

  it('advertises roster versioning and pre-approval after authentication, and no session establishment', async () => {
    const alice = await user('alice');
    const c = await TestClient.connect(srv.port);
    await c.open();
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${alice}\0secret`).toString('base64')}</auth>`);
    await c.waitFor((el) => el.name === 'success');
    const features = await c.open();
    expect(features.getChild('ver', 'urn:xmpp:features:rosterver')).toBeDefined();
    expect(features.getChild('sub', 'urn:xmpp:features:pre-approval')).toBeDefined();
    // RFC 6121 removed session establishment: not advertised, so clients skip its round trip (still answered).
    expect(features.getChild('session', 'urn:ietf:params:xml:ns:xmpp-session')).toBeUndefined();
    await c.close();
  });

  it('ignores a subscription state a client tries to set', async () => {
    const alice = await user('alice');
    const c = await online(alice, 'desk');
    expect((await set(c, "<item jid='bob@localhost' subscription='both' ask='subscribe'/>")).attrs.type).toBe('result');
    const item = (await rosterPush(c, 'bob@localhost')).getChild('query')!.getChild('item')!;
    expect(item.attrs.subscription).toBe('none');
    expect(item.attrs.ask).toBeUndefined();
    await c.close();
  });
});

describe('roster errors', () => {
  let c: TestClient;
  let alice: string;
  beforeAll(async () => {
    alice = await user('alice');
    await srv.addUser('victim');
    c = await online(alice, 'desk');
  });
  afterAll(() => c.close());

  it.each([
    ['two items', "<item jid='a@localhost'/><item jid='b@localhost'/>", 'bad-request'],
    ['no item', '', 'bad-request'],
    ['an item without a jid', "<item name='x'/>", 'bad-request'],
    ['a JID that is not one', "<item jid='a@b@localhost'/>", 'jid-malformed'],
    ['a JID with no domain', "<item jid='@'/>", 'jid-malformed'],
    ['a full JID', "<item jid='bob@localhost/phone'/>", 'bad-request'],
    ['the same group twice', "<item jid='bob@localhost'><group>A</group><group>A</group></item>", 'bad-request'],
    ['an empty group', "<item jid='bob@localhost'><group/></item>", 'not-acceptable'],
    ['a name over 1023 bytes', `<item jid='bob@localhost' name='${'x'.repeat(1024)}'/>`, 'not-acceptable'],
  ])('refuses a set with %s', async (_what, body, condition) => {
    const reply = await set(c, body);
    expect(reply.attrs.type).toBe('error');
    expect(errorCondition(reply)).toBe(condition);
  });

  it('refuses to add the account itself', async () => {
    const reply = await set(c, `<item jid='${alice}@localhost'/>`);
    expect(errorCondition(reply)).toBe('not-allowed');
  });

  it('answers a remove of an item that is not there with <item-not-found/>', async () => {
    const reply = await set(c, "<item jid='nobody@localhost' subscription='remove'/>");
    expect(errorCondition(reply)).toBe('item-not-found');
  });

  it("forbids reading or changing another account's roster", async () => {
    const get = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get' to='victim@localhost'");
    expect(get.attrs.type).toBe('error');
    expect(errorCondition(get)).toBe('forbidden');
    const change = await c.iq(`<query xmlns='${ROSTER}'><item jid='evil@localhost'/></query>`, "type='set' to='victim@localhost'");
    expect(errorCondition(change)).toBe('forbidden');
    expect((await srv.storage.getRoster('victim')).items).toHaveLength(0);
  });

  it('accepts a set addressed to the account itself', async () => {
    const reply = await c.iq(`<query xmlns='${ROSTER}'><item jid='self-addressed@localhost'/></query>`, `type='set' to='${alice}@localhost'`);
    expect(reply.attrs.type).toBe('result');
    await set(c, "<item jid='self-addressed@localhost' subscription='remove'/>");
  });
});

describe('roster size limit', () => {
  it('refuses a new item beyond c2s.maxRosterItems with <not-allowed/>, while existing ones stay editable', async () => {
    const alice = await user('alice');
    const c = await online(alice, 'desk');
    for (const j of ['a', 'b', 'c']) expect((await set(c, `<item jid='${j}@localhost'/>`)).attrs.type).toBe('result');
    const refused = await set(c, "<item jid='d@localhost'/>");
    expect(errorCondition(refused)).toBe('not-allowed');
    expect(refused.getChild('error')?.getChildText('text')).toMatch(/full/);
    expect((await set(c, "<item jid='a@localhost' name='still editable'/>")).attrs.type).toBe('result');
    const roster = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    expect(items(roster).map((i) => i.attrs.jid)).toEqual(['a@localhost', 'b@localhost', 'c@localhost']);
    await c.close();
  });
});
