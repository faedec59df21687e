import type { Element } from 'ltx';
import { isPing, TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';

const ROSTER = 'jabber:iq:roster';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
});
afterAll(() => srv.stop());

const users = (...prefixes: string[]) => srv.freshUsers(...prefixes);

const login = (name: string, resource = 'r', presence = true) => TestClient.login(srv.port, name, 'secret', resource, { presence });

function presence(c: TestClient, from: string, type?: string, timeout?: number): Promise<Element> {
  return c.waitFor((el) => el.name === 'presence' && el.attrs.from === from && el.attrs.type === type, timeout);
}

/** Everything the server had to do for these clients, in order, is done and written (see subscriptions.test.ts). */
async function settled(...clients: TestClient[]): Promise<void> {
  for (const c of clients) await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
}

/** Poll a condition on the server's state (no fixed delay: it returns as soon as the condition holds). */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((r) => setTimeout(r, 5));
}

const presencesFrom = (c: TestClient, from: string) => c.elements.filter((el) => el.name === 'presence' && el.attrs.from === from);

describe('presence broadcast and probes (RFC 6121 §4)', () => {
  it('initial presence reaches online contacts, and brings back their current presence', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob = await login(b);
    bob.send('<presence><show>dnd</show><status>in a meeting</status><priority>3</priority></presence>');
    await settled(bob);

    const alice = await login(a);
    const hers = await presence(bob, `${aj}/r`);
    expect(hers.attrs.to).toBe(`${bj}/r`);
    const his = await presence(alice, `${bj}/r`); // answer to the probe
    expect(his.getChildText('show')).toBe('dnd');
    expect(his.getChildText('status')).toBe('in a meeting');
    expect(his.attrs.to).toBe(`${aj}/r`);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('updates go to contacts; people without a subscription see nothing', async () => {
    const [[a, aj], [b], [c]] = await users('alice', 'bob', 'carol');
    await srv.befriend(a, b);
    const bob = await login(b);
    const carol = await login(c);
    const alice = await login(a);
    await presence(bob, `${aj}/r`);
    alice.send('<presence><show>away</show></presence>');
    expect((await presence(bob, `${aj}/r`)).getChildText('show')).toBe('away');
    await settled(alice, carol);
    expect(presencesFrom(carol, `${aj}/r`)).toHaveLength(0);
    await Promise.all([alice.close(), bob.close(), carol.close()]);
  });

  it('a contact that comes online later is seen then, and one that never does is not', async () => {
    const [[a], [b, bj], [c, cj]] = await users('alice', 'bob', 'carol');
    await srv.befriend(a, b);
    await srv.befriend(a, c);
    const alice = await login(a);
    await settled(alice);
    expect(presencesFrom(alice, `${bj}/r`)).toHaveLength(0);
    const bob = await login(b);
    await presence(alice, `${bj}/r`);
    expect(presencesFrom(alice, `${cj}/r`)).toHaveLength(0);
    await Promise.all([alice.close(), bob.close()]);
  });

  it('explicit unavailable presence is broadcast, and the user is no longer probed', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const alice = await login(a);
    const bob = await login(b);
    await presence(alice, `${bj}/r`);
    alice.send("<presence type='unavailable'><status>gone fishing</status></presence>");
    expect((await presence(bob, `${aj}/r`, 'unavailable')).getChildText('status')).toBe('gone fishing');
    const bob2 = await login(b, 'r2');
    await settled(alice, bob2);
    expect(presencesFrom(bob2, `${aj}/r`)).toHaveLength(0);
    await Promise.all([alice.close(), bob.close(), bob2.close()]);
  });

  it('a user\'s resources see each other', async () => {
    const [[a, aj]] = await users('alice');
    const desk = await login(a, 'desk');
    await settled(desk);
    const phone = await login(a, 'phone');
    await presence(desk, `${aj}/phone`);
    await presence(phone, `${aj}/desk`);
    await phone.close();
    await presence(desk, `${aj}/phone`, 'unavailable');
    await desk.close();
  });
});

describe('unavailable presence when a session ends for any reason', () => {
  it('a client that vanishes without a closing stanza (RST) is announced unavailable within a second', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob = await login(b);
    const alice = await login(a);
    await presence(bob, `${aj}/r`);
    alice.destroy();
    const gone = await presence(bob, `${aj}/r`, 'unavailable', 1000);
    expect(gone.attrs.to).toBe(`${b}@localhost/r`);
    await bob.close();
  });

  it('a silent client reaped by the watchdog (probe-timeout) is announced unavailable', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const alice = await login(a);
    await settled(alice);
    await new Promise((r) => setTimeout(r, 5)); // so Bob's last word is a few ms younger than Alice's
    const bob = await login(b);
    await presence(bob, `${aj}/r`);
    await settled(bob);
    // Drive the watchdog on a clock of our own: Alice is probed, stays silent and is closed; Bob, who
    // spoke later, is not yet due at the first tick and is only probed at the second.
    const { registry } = srv.server.ctx;
    const policy = srv.config.watchdog.c2s;
    const aliceHeard = registry.getByFullJid(`${aj}/r`)!.lastAliveAt;
    expect(registry.getByFullJid(`${bj}/r`)!.lastAliveAt).toBeGreaterThan(aliceHeard + 1);
    const probeAt = aliceHeard + policy.probeAfter + 1;
    srv.server.watchdog.tick(probeAt);
    await alice.waitFor(isPing);
    srv.server.watchdog.tick(probeAt + policy.probeTimeout + 1);
    expect((await alice.streamError()).condition).toBe('connection-timeout');
    await presence(bob, `${aj}/r`, 'unavailable', 1000);
    await Promise.all([alice.closed, bob.close()]);
  });

  it('a client that closes its stream politely is announced unavailable', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob = await login(b);
    const alice = await login(a);
    await presence(bob, `${aj}/r`);
    await alice.close();
    await presence(bob, `${aj}/r`, 'unavailable', 1000);
    await bob.close();
  });

  it('a session replaced by a new login with the same resource is announced unavailable, then the new one available', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob = await login(b);
    const first = await login(a);
    await presence(bob, `${aj}/r`);
    const second = await login(a);
    expect((await first.streamError()).condition).toBe('conflict');
    await presence(bob, `${aj}/r`, 'unavailable', 1000);
    await presence(bob, `${aj}/r`);
    await Promise.all([second.close(), bob.close()]);
  });

  it('a session that never sent presence ends without any presence', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob = await login(b);
    const silent = await login(a, 'silent', false);
    await settled(silent);
    silent.destroy();
    await until(() => srv.server.ctx.registry.getByFullJid(`${aj}/silent`) === undefined);
    await settled(bob);
    expect(presencesFrom(bob, `${aj}/silent`)).toHaveLength(0);
    await bob.close();
  });
});

describe('directed presence (RFC 6121 §4.6)', () => {
  it('reaches a non-contact, does not carry later broadcasts, and is followed by the unavailable at the end', async () => {
    const [[a, aj], [c, cj]] = await users('alice', 'carol');
    const carol = await login(c);
    const alice = await login(a);
    alice.send(`<presence to='${cj}/r'><show>chat</show></presence>`);
    const directed = await presence(carol, `${aj}/r`);
    expect(directed.getChildText('show')).toBe('chat');
    alice.send('<presence><show>away</show></presence>');
    await settled(alice, carol);
    expect(presencesFrom(carol, `${aj}/r`)).toHaveLength(0);
    alice.destroy();
    await presence(carol, `${aj}/r`, 'unavailable', 1000);
    await carol.close();
  });

  it('to a bare JID it reaches every available resource; a directed unavailable ends what is owed', async () => {
    const [[a, aj], [c, cj]] = await users('alice', 'carol');
    const carol1 = await login(c, 'one');
    const carol2 = await login(c, 'two');
    const alice = await login(a);
    alice.send(`<presence to='${cj}'/>`);
    await presence(carol1, `${aj}/r`);
    await presence(carol2, `${aj}/r`);
    alice.send(`<presence to='${cj}' type='unavailable'/>`);
    await presence(carol1, `${aj}/r`, 'unavailable');
    await presence(carol2, `${aj}/r`, 'unavailable');
    await alice.close();
    await settled(carol1, carol2);
    expect(presencesFrom(carol1, `${aj}/r`)).toHaveLength(0);
    await Promise.all([carol1.close(), carol2.close()]);
  });

  it('to one full JID it reaches that resource only', async () => {
    const [[a, aj], [b, bj]] = await users('alice', 'bob');
    await srv.befriend(a, b);
    const bob1 = await login(b, 'one');
    const bob2 = await login(b, 'two');
    const alice = await login(a);
    await presence(bob1, `${aj}/r`);
    await presence(bob2, `${aj}/r`);
    alice.send(`<presence to='${bj}/two'><status>just for two</status></presence>`);
    expect((await presence(bob2, `${aj}/r`)).getChildText('status')).toBe('just for two');
    await settled(alice, bob1);
    expect(presencesFrom(bob1, `${aj}/r`)).toHaveLength(0);
    await Promise.all([alice.close(), bob1.close(), bob2.close()]);
  });
});

describe('priority and routing of messages to a bare JID (RFC 6121 §8.5.2)', () => {
  const message = (c: TestClient, to: string, body: string) => c.send(`<message to='${to}' type='chat'><body>${body}</body></message>`);
  const gotMessage = (c: TestClient, body: string) => c.elements.some((el) => el.name === 'message' && el.getChildText('body') === body);
  const waitMessage = (c: TestClient, body: string) => c.waitFor((el) => el.name === 'message' && el.getChildText('body') === body);

  it('goes to the highest-priority available resource, follows priority changes, and never to a negative priority', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    const high = await login(a, 'high', false);
    const low = await login(a, 'low', false);
    const hidden = await login(a, 'hidden', false);
    high.send('<presence><priority>5</priority></presence>');
    low.send('<presence><priority>1</priority></presence>');
    hidden.send('<presence><priority>-1</priority></presence>');
    await settled(high, low, hidden);
    const bob = await login(b);

    message(bob, aj, 'one');
    await waitMessage(high, 'one');
    await settled(bob, low, hidden);
    expect(gotMessage(low, 'one') || gotMessage(hidden, 'one')).toBe(false);

    low.send('<presence><priority>10</priority></presence>');
    await settled(low);
    message(bob, aj, 'two');
    await waitMessage(low, 'two');
    await settled(bob, high, hidden);
    expect(gotMessage(high, 'two') || gotMessage(hidden, 'two')).toBe(false);

    // A message to a full JID goes there whatever the priority.
    message(bob, `${aj}/hidden`, 'three');
    await waitMessage(hidden, 'three');
    await Promise.all([high.close(), low.close(), hidden.close(), bob.close()]);
  });

  it('goes to every resource that shares the highest priority', async () => {
    const [[a, aj], [b]] = await users('alice', 'bob');
    const one = await login(a, 'one', false);
    const two = await login(a, 'two', false);
    one.send('<presence><priority>2</priority></presence>');
    two.send('<presence><priority>2</priority></presence>');
    await settled(one, two);
    const bob = await login(b);
    message(bob, aj, 'both');
    await waitMessage(one, 'both');
    await waitMessage(two, 'both');
    await Promise.all([one.close(), two.close(), bob.close()]);
  });
});
