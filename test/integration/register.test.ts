import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

const REGISTER = 'jabber:iq:register';
const ROSTER = 'jabber:iq:roster';
const errorCondition = (el: Element) => el.getChild('error')?.getChildElements().find((e) => e.name !== 'text')?.name;
const form = (username: string, password: string) => `<query xmlns='${REGISTER}'><username>${username}</username><password>${password}</password></query>`;

/** A new unauthenticated stream: connected, header exchanged, features read. */
async function fresh(port: number): Promise<{ c: TestClient; features: Element }> {
  const c = await TestClient.connect(port);
  const features = await c.open();
  return { c, features };
}

async function canLogIn(port: number, user: string, password: string): Promise<boolean> {
  const { c } = await fresh(port);
  const answer = await c.authPlain(user, password);
  await c.close();
  return answer.name === 'success';
}

describe('in-band registration off (the default)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
    await srv.addUser('alice');
  });
  afterAll(() => srv.stop());

  it('is not advertised, is refused with <service-unavailable/>, and the stream stays usable', async () => {
    const { c, features } = await fresh(srv.port);
    expect(features.getChild('register', 'http://jabber.org/features/iq-register')).toBeUndefined();
    const get = await c.iq(`<query xmlns='${REGISTER}'/>`, "type='get'");
    expect(errorCondition(get)).toBe('service-unavailable');
    const set = await c.iq(form('mallory', 'pw'), "type='set'");
    expect(errorCondition(set)).toBe('service-unavailable');
    expect(await srv.storage.getUser('mallory')).toBeUndefined();
    expect((await c.authPlain('alice', 'secret')).name).toBe('success');
    await c.close();
  });

  it('still lets a logged-in user see its registration and change its password', async () => {
    const c = await TestClient.login(srv.port, 'alice', 'secret', 'r');
    const info = await c.iq(`<query xmlns='${REGISTER}'/>`, "type='get'");
    expect(info.getChild('query')?.getChild('registered')).toBeDefined();
    expect(info.getChild('query')?.getChildText('username')).toBe('alice');
    expect((await c.iq(form('alice', 'n3w-secret'), "type='set'")).attrs.type).toBe('result');
    expect(await canLogIn(srv.port, 'alice', 'n3w-secret')).toBe(true);
    expect(await canLogIn(srv.port, 'alice', 'secret')).toBe(false);
    expect((await c.iq(form('alice', 'secret'), "type='set'")).attrs.type).toBe('result');
    await c.close();
  });

  it('lists jabber:iq:register and jabber:iq:roster in disco#info', async () => {
    const c = await TestClient.login(srv.port, 'alice', 'secret', 'disco');
    const info = await c.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", "type='get' to='localhost'");
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    expect(features).toEqual(expect.arrayContaining([REGISTER, ROSTER]));
    await c.close();
  });
});

describe('in-band registration on', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ c2s: { registration: { enabled: true, perIpPerHour: 3 } } });
  });
  afterAll(() => srv.stop());

  it('is advertised, gives the form, creates the account, and the new user can log in', async () => {
    const { c, features } = await fresh(srv.port);
    expect(features.getChild('register', 'http://jabber.org/features/iq-register')).toBeDefined();
    const get = await c.iq(`<query xmlns='${REGISTER}'/>`, "type='get'");
    const query = get.getChild('query', REGISTER)!;
    expect(query.getChild('username')).toBeDefined();
    expect(query.getChild('password')).toBeDefined();
    expect(query.getChildText('instructions')).toBeTruthy();

    const set = await c.iq(form('Newbie', 'hunter2'), "type='set'");
    expect(set.attrs.type).toBe('result');
    // The same stream goes on to authenticate as the new account (the username is stored case-folded).
    expect((await c.authPlain('newbie', 'hunter2')).name).toBe('success');
    await c.bind('r');
    expect(c.jid).toBe('newbie@localhost/r');
    await c.close();
  });

  it('refuses a taken username with <conflict/> and bad fields with <not-acceptable/>', async () => {
    await srv.addUser('taken');
    const { c } = await fresh(srv.port);
    expect(errorCondition(await c.iq(form('taken', 'x'), "type='set'"))).toBe('conflict');
    expect(errorCondition(await c.iq(form('TAKEN', 'x'), "type='set'"))).toBe('conflict');
    expect(errorCondition(await c.iq(`<query xmlns='${REGISTER}'><username>nopass</username></query>`, "type='set'"))).toBe('not-acceptable');
    expect(errorCondition(await c.iq(form('bad@name', 'x'), "type='set'"))).toBe('not-acceptable');
    expect(errorCondition(await c.iq(form('empty-password', ''), "type='set'"))).toBe('not-acceptable');
    expect(errorCondition(await c.iq(`<query xmlns='${REGISTER}'><remove/></query>`, "type='set'"))).toBe('not-authorized');
    expect(await srv.storage.getUser('nopass')).toBeUndefined();
    await c.close();
  });

  it('creates at most c2s.registration.perIpPerHour accounts per address, then answers <policy-violation/>', async () => {
    const limited = await startServer({ c2s: { registration: { enabled: true, perIpPerHour: 2 } } });
    try {
      const { c } = await fresh(limited.port);
      expect((await c.iq(form('one', 'pw'), "type='set'")).attrs.type).toBe('result');
      expect(errorCondition(await c.iq(form('one', 'pw'), "type='set'"))).toBe('conflict'); // a refusal does not count
      expect((await c.iq(form('two', 'pw'), "type='set'")).attrs.type).toBe('result');
      const third = await c.iq(form('three', 'pw'), "type='set'");
      expect(errorCondition(third)).toBe('policy-violation');
      expect(third.getChild('error')?.attrs.type).toBe('wait');
      await c.close();
      // Another stream from the same address is limited too.
      const { c: again } = await fresh(limited.port);
      expect(errorCondition(await again.iq(form('four', 'pw'), "type='set'"))).toBe('policy-violation');
      await again.close();
      expect(await limited.storage.listUsers()).toEqual(['one', 'two']);
    } finally {
      await limited.stop();
    }
  });

  it('cancelling an account ends its subscriptions, closes all its sessions, and the account is gone', async () => {
    await srv.addUser('leaver');
    await srv.addUser('friend');
    await srv.befriend('leaver', 'friend');
    const friend = await TestClient.login(srv.port, 'friend', 'secret', 'r', { presence: false });
    await friend.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    friend.send('<presence/>');
    const leaver = await TestClient.login(srv.port, 'leaver', 'secret', 'one');
    const other = await TestClient.login(srv.port, 'leaver', 'secret', 'two');
    await friend.waitFor((el) => el.name === 'presence' && el.attrs.from === 'leaver@localhost/one');

    const result = await leaver.iq(`<query xmlns='${REGISTER}'><remove/></query>`, "type='set'");
    expect(result.attrs.type).toBe('result');
    expect((await leaver.streamError()).condition).toBe('not-authorized');
    expect((await other.streamError()).condition).toBe('not-authorized');
    await friend.waitFor((el) => el.name === 'presence' && el.attrs.from === 'leaver@localhost' && el.attrs.type === 'unsubscribed');
    await friend.waitFor((el) => el.name === 'presence' && el.attrs.from === 'leaver@localhost/one' && el.attrs.type === 'unavailable');
    const push = await friend.waitFor((el) => el.name === 'iq' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.subscription === 'none');
    expect(push.getChild('query')!.getChild('item')!.attrs.jid).toBe('leaver@localhost');

    expect(await srv.storage.getUser('leaver')).toBeUndefined();
    expect((await srv.storage.getRoster('leaver')).items).toHaveLength(0);
    expect(await canLogIn(srv.port, 'leaver', 'secret')).toBe(false);
    await friend.close();
  });

  it('will not change another account\'s password', async () => {
    await srv.addUser('owner');
    await srv.addUser('target');
    const c = await TestClient.login(srv.port, 'owner', 'secret', 'r');
    expect(errorCondition(await c.iq(form('target', 'pwned'), "type='set'"))).toBe('bad-request');
    expect(await canLogIn(srv.port, 'target', 'secret')).toBe(true);
    await c.close();
  });
});

describe('in-band registration needs encryption', () => {
  it('is neither advertised nor allowed before STARTTLS when TLS is required', async () => {
    const srv = await startServer({ c2s: { allowPlainWithoutTls: false, registration: { enabled: true } } }, { tls: true });
    try {
      const { c, features } = await fresh(srv.port);
      expect(features.getChild('register', 'http://jabber.org/features/iq-register')).toBeUndefined();
      expect(errorCondition(await c.iq(form('plaintext', 'pw'), "type='set'"))).toBe('not-authorized');
      await c.startTls();
      const secured = await c.open();
      expect(secured.getChild('register', 'http://jabber.org/features/iq-register')).toBeDefined();
      expect((await c.iq(form('encrypted', 'pw'), "type='set'")).attrs.type).toBe('result');
      await c.close();
    } finally {
      await srv.stop();
    }
  });
});
