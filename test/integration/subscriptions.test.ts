import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

const ROSTER = 'jabber:iq:roster';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ c2s: { maxPendingSubscriptions: 3, maxRosterItems: 5 } });
});
afterAll(() => srv.stop());

const users = (...prefixes: string[]) => srv.freshUsers(...prefixes);

/** Log in, fetch the roster (so pushes come), then send initial presence. */
async function online(name: string, resource = 'r'): Promise<TestClient> {
  const c = await TestClient.login(srv.port, name, 'secret', resource, { presence: false });
  await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
  c.send('<presence/>');
  return c;
}

/** The roster item pushed for `jid`. */
async function pushed(c: TestClient, jid: string): Promise<Record<string, string>> {
  const iq = await c.waitFor((el) => el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', ROSTER)?.getChild('item')?.attrs.jid === jid);
  c.send(`<iq type='result' id='${iq.attrs.id}'/>`);
  return iq.getChild('query')!.getChild('item')!.attrs as Record<string, string>;
}

function presence(c: TestClient, from: string, type?: string): Promise<Element> {
  return c.waitFor((el) => el.name === 'presence' && (el.attrs.from === from || el.attrs.from?.startsWith(`${from}/`)) && el.attrs.type === type);
}

async function rosterItem(c: TestClient, jid: string): Promise<Record<string, string> | undefined> {
  const r = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
  return r.getChild('query')!.getChildren('item').find((i) => i.attrs.jid === jid)?.attrs as Record<string, string> | undefined;
}

/**
 * Wait until the server has done everything `c` asked before now and written everything it had for `c`:
 * roster requests queue behind every presence and subscription task, and replies come in stream order.
 */
async function settled(...clients: TestClient[]): Promise<void> {
  for (const c of clients) await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
}

const received = (c: TestClient, pred: (el: Element) => boolean) => c.elements.some(pred);
const isSubscription = (el: Element) => el.name === 'presence' && ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'].includes(el.attrs.type);

describe('subscriptions with both users online (RFC 6121 §3)', () => {
  it('subscribe, then approve: none -> to / from, with pushes and presence, stamped with bare JIDs', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    alice.send(`<presence to='${bj}/r' type='subscribe'><status>hi, it is Alice</status></presence>`);
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'none', ask: 'subscribe' });
    const request = await presence(bob, aj, 'subscribe');
    expect(request.attrs.from).toBe(aj); // bare, not alice's full JID
    expect(request.attrs.to).toBe(bj); // the contact's bare JID
    expect(request.getChildText('status')).toBe('hi, it is Alice');
    await settled(bob);
    expect(received(bob, (el) => el.name === 'iq' && el.getChild('query', ROSTER) !== undefined)).toBe(false); // a request is not a roster item

    bob.send(`<presence to='${aj}' type='subscribed'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'from' });
    const approved = await pushed(alice, bj);
    expect(approved.subscription).toBe('to');
    expect(approved.ask).toBeUndefined();
    expect((await presence(alice, bj, 'subscribed')).attrs.from).toBe(bj);
    expect((await presence(alice, bj)).attrs.from).toBe(`${bj}/r`); // bob's current presence follows

    // The other way round: both.
    bob.send(`<presence to='${aj}' type='subscribe'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'from', ask: 'subscribe' });
    await presence(alice, bj, 'subscribe');
    alice.send(`<presence to='${bj}' type='subscribed'/>`);
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'both' });
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'both' });
    await presence(bob, aj, 'subscribed');
    await presence(bob, aj);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('deny: unsubscribed to a request clears the ask and leaves nothing in the contact\'s roster', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    alice.send(`<presence to='${bj}' type='subscribe'/>`);
    await pushed(alice, bj);
    await presence(bob, aj, 'subscribe');
    bob.send(`<presence to='${aj}' type='unsubscribed'/>`);
    const after = await pushed(alice, bj);
    expect(after).toMatchObject({ subscription: 'none' });
    expect(after.ask).toBeUndefined();
    await presence(alice, bj, 'unsubscribed');
    expect(await rosterItem(bob, aj)).toBeUndefined();
    await Promise.all([alice.close(), bob.close()]);
  });

  it('unsubscribe: the subscriber stops following; both get pushes and the contact goes unavailable for it', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    alice.send(`<presence to='${bj}' type='unsubscribe'/>`);
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'none' });
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'none' });
    await presence(bob, aj, 'unsubscribe');
    await presence(alice, bj, 'unavailable');
    await Promise.all([alice.close(), bob.close()]);
  });

  it('unsubscribed: the contact cancels a subscription; the subscriber is told and sees it unavailable', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    bob.send(`<presence to='${aj}' type='unsubscribed'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'none' });
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'none' });
    await presence(alice, bj, 'unsubscribed');
    await presence(alice, bj, 'unavailable');
    // Bob's later presence no longer reaches Alice.
    bob.send('<presence><show>away</show></presence>');
    await settled(bob, alice);
    expect(received(alice, (el) => el.name === 'presence' && el.attrs.from === `${bj}/r`)).toBe(false);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('pre-approval: a subscribed sent first approves the later request at once, without asking', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    bob.send(`<presence to='${aj}' type='subscribed'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'none', approved: 'true' });
    await settled(bob, alice);
    expect(received(alice, isSubscription)).toBe(false); // a pre-approval is not sent anywhere

    alice.send(`<presence to='${bj}' type='subscribe'/>`);
    expect(await pushed(alice, bj)).toMatchObject({ ask: 'subscribe' });
    await presence(alice, bj, 'subscribed');
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'to' });
    await presence(alice, bj);
    const bobs = await pushed(bob, aj);
    expect(bobs.subscription).toBe('from');
    expect(bobs.approved).toBeUndefined();
    await settled(bob);
    expect(received(bob, (el) => isSubscription(el) && el.attrs.type === 'subscribe')).toBe(false);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a subscribe to a user already subscribed to is answered by the server with its presence', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    alice.send(`<presence to='${bj}' type='subscribe'/>`);
    await presence(alice, bj); // the contact's current presence, again
    await settled(bob, alice);
    expect(received(bob, isSubscription)).toBe(false); // Bob is not asked twice
    expect(received(alice, isSubscription)).toBe(false); // and Alice's state (to) does not change: §3.1.6
    expect(await rosterItem(alice, bj)).toEqual({ jid: bj, subscription: 'to' });
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a subscribe to an account that does not exist comes back unsubscribed', async () => {
    const [[a]] = await users('alice');
    const alice = await online(a);
    alice.send("<presence to='ghost@localhost' type='subscribe'/>");
    expect(await pushed(alice, 'ghost@localhost')).toMatchObject({ ask: 'subscribe' });
    await presence(alice, 'ghost@localhost', 'unsubscribed');
    const after = await pushed(alice, 'ghost@localhost');
    expect(after.ask).toBeUndefined();
    await alice.close();
  });

  it('a subscribe to a domain that does not exist is refused with <remote-server-not-found/>', async () => {
    const [[a]] = await users('alice');
    const alice = await online(a);
    alice.send("<presence id='s1' to='someone@nowhere.invalid' type='subscribe'/>");
    const error = await alice.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error' && el.attrs.id === 's1');
    expect(error.getChild('error')?.getChild('remote-server-not-found')).toBeDefined();
    await alice.close();
  });

  it('removing a contact ends both subscriptions: the contact is told and sees the user leave', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    await subscribe(bob, bj, alice, aj);
    const removed = await alice.iq(`<query xmlns='${ROSTER}'><item jid='${bj}' subscription='remove'/></query>`, "type='set'");
    expect(removed.attrs.type).toBe('result');
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'remove' });
    await presence(bob, aj, 'unsubscribe');
    await presence(bob, aj, 'unsubscribed');
    await presence(bob, aj, 'unavailable');
    expect(await rosterItem(bob, aj)).toMatchObject({ subscription: 'none' });
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('subscriptions with one user offline', () => {
  it('a request to an offline contact waits and is delivered at its initial presence', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    alice.send(`<presence to='${bj}' type='subscribe'><status>remember me?</status></presence>`);
    await pushed(alice, bj);
    await settled(alice);

    const bob = await online(b);
    const request = await presence(bob, aj, 'subscribe');
    expect(request.getChildText('status')).toBe('remember me?');
    bob.send(`<presence to='${aj}' type='subscribed'/>`);
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'to' });
    await presence(alice, bj);
    await bob.close();

    // Answered: a second login of Bob brings no request again.
    const again = await online(b);
    await settled(again);
    expect(received(again, isSubscription)).toBe(false);
    await Promise.all([alice.close(), again.close()]);
  });

  it('an approval while the requester is offline shows in its roster and presence at its next login', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    alice.send(`<presence to='${bj}' type='subscribe'/>`);
    await presence(bob, aj, 'subscribe');
    await alice.close();
    bob.send(`<presence to='${aj}' type='subscribed'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'from' });

    const back = await online(a);
    await presence(back, bj); // the probe at initial presence brings Bob's presence
    expect(await rosterItem(back, bj)).toMatchObject({ subscription: 'to' });
    await Promise.all([back.close(), bob.close()]);
  });

  it('an unsubscribe while the contact is offline is in its roster at its next login', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    await bob.close();
    alice.send(`<presence to='${bj}' type='unsubscribe'/>`);
    expect(await pushed(alice, bj)).toMatchObject({ subscription: 'none' });
    await settled(alice);
    const back = await online(b);
    expect(await rosterItem(back, aj)).toMatchObject({ subscription: 'none' });
    await Promise.all([alice.close(), back.close()]);
  });

  it('a cancelled subscription while the subscriber is offline is in its roster at its next login', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    const bob = await online(b);
    await subscribe(alice, aj, bob, bj);
    await alice.close();
    bob.send(`<presence to='${aj}' type='unsubscribed'/>`);
    expect(await pushed(bob, aj)).toMatchObject({ subscription: 'none' });
    await settled(bob);
    const back = await online(a);
    expect(await rosterItem(back, bj)).toMatchObject({ subscription: 'none' });
    await settled(back);
    expect(received(back, (el) => el.name === 'presence' && el.attrs.from === `${bj}/r`)).toBe(false);
    await Promise.all([back.close(), bob.close()]);
  });

  it('a request withdrawn while the contact is offline is never delivered', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    alice.send(`<presence to='${bj}' type='subscribe'/>`);
    await pushed(alice, bj);
    alice.send(`<presence to='${bj}' type='unsubscribe'/>`);
    expect((await pushed(alice, bj)).ask).toBeUndefined();
    await settled(alice);
    const bob = await online(b);
    await settled(bob);
    expect(received(bob, (el) => el.attrs.type === 'subscribe')).toBe(false);
    expect(await rosterItem(bob, aj)).toBeUndefined();
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('subscription floods are bounded', () => {
  it('past c2s.maxPendingSubscriptions unanswered requests, new ones are dropped and the sender gets <resource-constraint/>', async () => {
    const [[v, vj], ...senders] = await users('victim', 's', 's', 's', 's');
    const clients: TestClient[] = [];
    for (const [name] of senders) clients.push(await online(name));
    for (const c of clients.slice(0, 3)) {
      c.send(`<presence to='${vj}' type='subscribe'/>`);
      await pushed(c, vj);
    }
    // A repeated request from the same sender does not count twice.
    clients[0].send(`<presence to='${vj}' type='subscribe'/>`);
    await settled(clients[0]);

    const last = clients[3];
    last.send(`<presence id='flood' to='${vj}' type='subscribe'/>`);
    const error = await last.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error' && el.attrs.id === 'flood');
    expect(error.getChild('error')?.getChild('resource-constraint')).toBeDefined();
    expect(error.attrs.to).toBe(`${senders[3][1]}/r`);
    await settled(last);
    expect(received(last, (el) => el.name === 'iq' && el.getChild('query', ROSTER) !== undefined)).toBe(false); // its roster is unchanged

    const victim = await online(v);
    await settled(victim);
    const requests = victim.elements.filter((el) => el.name === 'presence' && el.attrs.type === 'subscribe').map((el) => el.attrs.from);
    expect(requests.sort()).toEqual(senders.slice(0, 3).map(([, j]) => j).sort());

    // Answering one makes room for another.
    victim.send(`<presence to='${senders[0][1]}' type='unsubscribed'/>`);
    await settled(victim);
    last.send(`<presence to='${vj}' type='subscribe'/>`);
    await presence(victim, senders[3][1], 'subscribe');
    await Promise.all([...clients, victim].map((c) => c.close()));
  });

  it('a request too large to keep whole is kept, and delivered, without its payload', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    alice.send(`<presence to='${bj}' type='subscribe'><status>${'spam '.repeat(2000)}</status></presence>`);
    await pushed(alice, bj);
    await settled(alice);
    const stored = (await srv.storage.getRosterItem(b, aj))!.pendingIn!;
    expect(stored.length).toBeLessThan(200);
    const bob = await online(b);
    const request = await presence(bob, aj, 'subscribe');
    expect(request.getChild('status')).toBeUndefined();
    await Promise.all([alice.close(), bob.close()]);
  });

  it('a subscription that would grow a full roster is refused with <not-allowed/>', async () => {
    const [[a], [, bj]] = await users('alice', 'bob');
    const alice = await online(a);
    for (let i = 0; i < 5; i++) await alice.iq(`<query xmlns='${ROSTER}'><item jid='filler${i}@localhost'/></query>`, "type='set'");
    alice.send(`<presence id='full' to='${bj}' type='subscribe'/>`);
    const error = await alice.waitFor((el) => el.name === 'presence' && el.attrs.type === 'error' && el.attrs.id === 'full');
    expect(error.getChild('error')?.getChild('not-allowed')).toBeDefined();
    expect(await rosterItem(alice, bj)).toBeUndefined();
    await alice.close();
  });
});

/** `from` subscribes to `to`'s presence and `to` approves; returns when both saw the result. */
async function subscribe(from: TestClient, fromJid: string, to: TestClient, toJid: string): Promise<void> {
  from.send(`<presence to='${toJid}' type='subscribe'/>`);
  await presence(to, fromJid, 'subscribe');
  to.send(`<presence to='${fromJid}' type='subscribed'/>`);
  await presence(from, toJid, 'subscribed');
  await presence(from, toJid); // the contact's presence
  await settled(from, to);
  from.elements.length = 0;
  to.elements.length = 0;
}
