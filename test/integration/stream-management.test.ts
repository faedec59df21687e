import type { Element } from 'ltx';
import { SM_NS, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/** XEP-0198 over real sockets: each element, each error, resumption, and what happens to the unacked. */

let srv: TestServer;
beforeAll(async () => {
  // Short windows so the tests see hibernation end; the watchdog looks often.
  srv = await startServer({
    watchdog: { interval: '100ms', c2s: { probeAfter: '60s', probeTimeout: '1s' } },
    sm: { resumeTimeout: '2s', presenceGrace: '300ms', maxHibernatedPerUser: 2 },
  });
});
afterAll(() => srv.stop());

const users = (...prefixes: string[]) => srv.freshUsers(...prefixes);
const login = (name: string, resource = 'r', presence = true) => TestClient.login(srv.port, name, 'secret', resource, { presence });
const bodies = (c: TestClient) => c.elements.filter((el) => el.name === 'message').map((el) => el.getChildText('body'));
const smFailure = (el: Element) => el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name;

/** Everything sent to `c` so far has arrived: an iq round trip on the same stream comes after it. */
async function settled(c: TestClient): Promise<void> {
  await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
}

/** Logged in with SM enabled and resumable; returns the client and its resume id. */
async function smLogin(name: string, resource = 'phone', attrs = "resume='true'"): Promise<{ c: TestClient; id: string }> {
  const c = await login(name, resource);
  // Initial presence comes back to its sender: wait for it, so that what is counted from <enabled/> is known.
  await c.waitFor((el) => el.name === 'presence' && el.attrs.from === c.jid);
  const enabled = await c.enableSm(attrs);
  expect(enabled.name).toBe('enabled');
  return { c, id: enabled.attrs.id as string };
}

describe('enabling and acks', () => {
  it('offers stream management only after authentication', async () => {
    const [[name]] = await users('feat');
    const c = await TestClient.connect(srv.port);
    const before = await c.open();
    expect(before.getChild('sm', SM_NS)).toBeUndefined();
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${name}\0secret`).toString('base64')}</auth>`);
    await c.waitFor((el) => el.name === 'success');
    const after = await c.open();
    expect(after.getChild('sm', SM_NS)).toBeDefined();
    expect(after.getChild('csi', 'urn:xmpp:csi:0')).toBeDefined();
    c.destroy();
  });

  it('refuses <enable/> before bind and a second time, and answers it once bound with a resume id and window', async () => {
    const [[name]] = await users('en');
    const c = await TestClient.connect(srv.port);
    await c.open();
    await c.authPlain(name, 'secret');
    const early = await c.enableSm();
    expect(early.name).toBe('failed');
    expect(smFailure(early)).toBe('unexpected-request');
    await c.bind('r');
    const enabled = await c.enableSm("resume='true' max='1'");
    expect(enabled.attrs).toMatchObject({ resume: 'true', max: '1' });
    expect(enabled.attrs.id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const again = await c.enableSm();
    expect(smFailure(again)).toBe('unexpected-request');
    // No resume asked: no id, nothing to resume.
    const [[other]] = await users('noresume');
    const d = await login(other);
    const plain = await d.enableSm('');
    expect(plain.attrs.id).toBeUndefined();
    expect(plain.attrs.resume).toBeUndefined();
    await Promise.all([c.close(), d.close()]);
  });

  it('answers <r/> with the number of stanzas it handled, and asks for acks every 5 stanzas, one at a time', async () => {
    const [[a], [b, bJid]] = await users('acka', 'ackb');
    const { c: alice } = await smLogin(a);
    const bob = await login(b);
    for (let i = 0; i < 3; i++) alice.send(`<message to='${bJid}' type='chat'><body>${i}</body></message>`);
    alice.send(`<r xmlns='${SM_NS}'/>`);
    const ack = await alice.waitFor((el) => el.name === 'a' && el.attrs.xmlns === SM_NS);
    // Initial presence (sent by login before enable) is not counted; the three messages are.
    expect(ack.attrs.h).toBe('3');
    for (let i = 0; i < 12; i++) bob.send(`<message to='${alice.jid}' type='chat'><body>b${i}</body></message>`);
    await alice.until(() => bodies(alice).length === 12);
    await settled(alice);
    // 12 stanzas unacked, yet only one request: the next waits for its answer.
    expect(alice.elements.filter((el) => el.name === 'r' && el.attrs.xmlns === SM_NS)).toHaveLength(1);
    alice.send(`<a xmlns='${SM_NS}' h='${alice.handled}'/>`);
    bob.send(`<message to='${alice.jid}' type='chat'><body>after</body></message>`);
    await alice.until(() => bodies(alice).includes('after'));
    await Promise.all([alice.close(), bob.close()]);
  });

  it('ends the stream with <undefined-condition/> when the client acks more than was sent', async () => {
    const [[a]] = await users('badh');
    const { c } = await smLogin(a);
    c.send(`<a xmlns='${SM_NS}' h='7'/>`);
    const err = await c.streamError();
    expect(err.condition).toBe('undefined-condition');
    expect(err.text).toMatch(/h='7'.*0 stanzas sent/);
  });

  it('ends the stream when h is not a 32-bit count (4294967296)', async () => {
    const [[a]] = await users('wrap');
    const { c } = await smLogin(a);
    c.send(`<a xmlns='${SM_NS}' h='4294967296'/>`);
    expect((await c.streamError()).text).toMatch(/not a 32-bit count/);
  });
});

describe('resumption', () => {
  it('resumes after an abrupt drop: what the client missed and what came meanwhile arrives once, in order', async () => {
    const [[a], [b, bJid]] = await users('resa', 'resb');
    const { c: alice, id } = await smLogin(a);
    const bob = await login(b);
    for (const n of [1, 2, 3]) bob.send(`<message to='${alice.jid}' type='chat'><body>m${n}</body></message>`);
    await alice.until(() => bodies(alice).length === 3);
    alice.destroy();
    await eventually(() => srv.server.ctx.registry.getByFullJid(alice.jid)?.state === 'detached');
    for (const n of [4, 5, 6]) bob.send(`<message to='${alice.jid}' type='chat'><body>m${n}</body></message>`);
    await settled(bob);
    // `vigil sessions` reads this: the session waits, holding the three unacked and the three queued.
    const report = (await (await fetch(`http://127.0.0.1:${srv.httpPort}/admin/sessions`)).json()) as { sessions: { jid: string; state: string; sm: { unacked: number; resumeLeftSeconds: number } | null }[] };
    const waiting = report.sessions.find((x) => x.jid === alice.jid);
    expect(waiting).toMatchObject({ state: 'detached', sm: { unacked: 6 } });
    expect(waiting!.sm!.resumeLeftSeconds).toBeGreaterThan(0);
    // The client says it handled two of the three it saw: the third is owed again, then the three queued.
    const { client, reply } = await TestClient.resume(srv.port, a, id, 2);
    expect(reply.name).toBe('resumed');
    expect(reply.attrs).toMatchObject({ previd: id, h: '0' });
    await client.until(() => bodies(client).length === 4);
    bob.send(`<message to='${alice.jid}' type='chat'><body>m7</body></message>`);
    await client.until(() => bodies(client).length === 5);
    await settled(client);
    expect(bodies(client)).toEqual(['m3', 'm4', 'm5', 'm6', 'm7']);
    // The session kept its JID, and its stanzas route as before.
    client.send(`<message to='${bJid}' type='chat'><body>back</body></message>`);
    expect((await bob.waitFor((el) => el.name === 'message')).attrs.from).toBe(alice.jid);
    expect(metricValue(await srv.metrics(), 'vigil_sm_resumes_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
    await Promise.all([client.close(), bob.close()]);
  });

  it('hibernates on a FIN without </stream:stream>, but ends the session on a clean stream close', async () => {
    const [[a]] = await users('fin');
    const { c: finned, id } = await smLogin(a, 'fin');
    await finned.endSocket();
    await eventually(() => srv.server.ctx.registry.getByFullJid(finned.jid)?.state === 'detached');
    const { client, reply } = await TestClient.resume(srv.port, a, id, 0);
    expect(reply.name).toBe('resumed');
    await client.close();
    await eventually(() => srv.server.ctx.registry.getByFullJid(finned.jid) === undefined);
    const { client: after, reply: gone } = await TestClient.resume(srv.port, a, id, 0);
    expect(gone.name).toBe('failed');
    await after.close();
  });

  it('takes a resume on a new connection while the old one still looks alive, and closes the old one', async () => {
    const [[a]] = await users('twice');
    const { c: old, id } = await smLogin(a);
    const { client, reply } = await TestClient.resume(srv.port, a, id, 0);
    expect(reply.name).toBe('resumed');
    expect((await old.streamError()).condition).toBe('conflict');
    await settled(client);
    await client.close();
  });

  it('refuses a resume id to another account, as if it did not exist, and the owner can still resume', async () => {
    const [[a], [m]] = await users('owner', 'mallory');
    const { c: alice, id } = await smLogin(a);
    alice.destroy();
    const { client: thief, reply } = await TestClient.resume(srv.port, m, id, 0);
    expect(reply.name).toBe('failed');
    expect(smFailure(reply)).toBe('item-not-found');
    expect(reply.attrs.h).toBeUndefined();
    const { client, reply: ok } = await TestClient.resume(srv.port, a, id, 0);
    expect(ok.name).toBe('resumed');
    await Promise.all([thief.close(), client.close()]);
  });

  it('refuses <resume/> on a stream that already bound a resource', async () => {
    const [[a]] = await users('bound');
    const { c, id } = await smLogin(a);
    c.send(`<resume xmlns='${SM_NS}' previd='${id}' h='0'/>`);
    const reply = await c.waitFor((el) => el.name === 'failed' && el.attrs.xmlns === SM_NS);
    expect(smFailure(reply)).toBe('unexpected-request');
    await c.close();
  });

  it('after the resume window, delivers every unacked and queued message from offline storage once, in order', async () => {
    const [[a], [b]] = await users('late', 'lateb');
    const { c: alice, id } = await smLogin(a);
    const bob = await login(b);
    alice.send("<presence/>");
    for (const n of [1, 2]) bob.send(`<message to='${alice.jid}' type='chat' id='x${n}'><body>m${n}</body></message>`);
    await alice.until(() => bodies(alice).length === 2);
    alice.send(`<message to='${bob.jid}'><body>to bob</body></message>`);
    await bob.waitFor((el) => el.name === 'message');
    alice.destroy();
    await eventually(() => srv.server.ctx.registry.getByFullJid(alice.jid)?.state === 'detached');
    bob.send(`<message to='${alice.jid}' type='chat' id='x3'><body>m3</body></message>`);
    await eventually(() => srv.server.ctx.registry.getByFullJid(alice.jid) === undefined, 5000);
    // Too late: the answer still says how many of the client's stanzas the server handled.
    const { client: tooLate, reply } = await TestClient.resume(srv.port, a, id, 0);
    expect(reply.name).toBe('failed');
    expect(reply.attrs.h).toBe('2'); // the presence and the message to bob
    await tooLate.close();
    const again = await login(a, 'again');
    await again.until(() => bodies(again).length === 3);
    await settled(again);
    const got = again.elements.filter((el) => el.name === 'message');
    expect(got.map((m) => m.getChildText('body'))).toEqual(['m1', 'm2', 'm3']);
    for (const m of got) {
      expect(m.getChild('delay', 'urn:xmpp:delay')).toBeDefined();
      expect(m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by).toBe(`${a}@localhost`);
    }
    await again.close();
    const third = await login(a, 'third');
    await settled(third);
    expect(bodies(third)).toEqual([]);
    await Promise.all([third.close(), bob.close()]);
  });

  it('answers an unacked iq request on the recipient’s behalf when its session ends', async () => {
    const [[a], [b]] = await users('iqa', 'iqb');
    const { c: alice } = await smLogin(a, 'phone', "resume='true' max='1'");
    const bob = await login(b);
    alice.destroy();
    await eventually(() => srv.server.ctx.registry.getByFullJid(alice.jid)?.state === 'detached');
    bob.send(`<iq type='get' id='v1' to='${alice.jid}'><query xmlns='jabber:iq:version'/></iq>`);
    const reply = await bob.waitFor((el) => el.name === 'iq' && el.attrs.id === 'v1', 5000);
    expect(reply.attrs.type).toBe('error');
    expect(reply.getChild('error')?.getChild('service-unavailable')).toBeDefined();
    await bob.close();
  });

  it('keeps at most sm.maxHibernatedPerUser sessions of one account waiting; the oldest ends first', async () => {
    const [[a]] = await users('many');
    const ids: string[] = [];
    for (const r of ['one', 'two', 'three']) {
      const { c, id } = await smLogin(a, r);
      ids.push(id);
      c.destroy();
      await eventually(() => srv.server.ctx.registry.getByFullJid(`${a}@localhost/${r}`)?.state === 'detached');
    }
    await eventually(() => srv.server.ctx.registry.getByFullJid(`${a}@localhost/one`) === undefined);
    expect(metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'hibernation-limit' })).toBeGreaterThanOrEqual(1);
    const { client, reply } = await TestClient.resume(srv.port, a, ids[0], 0);
    expect(reply.name).toBe('failed');
    const { client: last, reply: ok } = await TestClient.resume(srv.port, a, ids[2], 0);
    expect(ok.name).toBe('resumed');
    await Promise.all([client.close(), last.close()]);
  });
});

describe('the watchdog speaks stream management', () => {
  it('times out an unanswered <r/> into hibernation, not a close, and the client resumes', async () => {
    const [[a], [b]] = await users('silent', 'talker');
    const { c: alice, id } = await smLogin(a);
    const bob = await login(b);
    const closedBefore = metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' });
    // Five messages make the server ask for an ack; the client never answers.
    for (let i = 0; i < 5; i++) bob.send(`<message to='${alice.jid}' type='chat'><body>q${i}</body></message>`);
    await alice.until(() => alice.elements.some((el) => el.name === 'r'));
    const err = await alice.streamError(5000);
    expect(err.condition).toBe('connection-timeout');
    expect(err.text).toMatch(/no answer to an ack request/);
    const text = await srv.metrics();
    expect(metricValue(text, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(closedBefore);
    const { client, reply } = await TestClient.resume(srv.port, a, id, 5);
    expect(reply.name).toBe('resumed');
    await settled(client);
    expect(bodies(client)).toEqual([]);
    await Promise.all([client.close(), bob.close(), alice.closed]);
  });

  it('hides a hibernated session from contacts after the grace, and shows it again on resume', async () => {
    const [[a], [b, bJid]] = await users('ghost', 'watcher');
    await srv.befriend(a, b);
    const bob = await login(b, 'desk');
    const { c: alice, id } = await smLogin(a);
    const full = alice.jid;
    await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === full && el.attrs.type === undefined);
    alice.destroy();
    const gone = await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === full && el.attrs.type === 'unavailable', 5000);
    expect(gone).toBeDefined();
    const { client, reply } = await TestClient.resume(srv.port, a, id, 0);
    expect(reply.name).toBe('resumed');
    await bob.waitFor((el) => el.name === 'presence' && el.attrs.from === full && el.attrs.type === undefined, 5000);
    // The resumed client learns its contacts' presence again.
    await client.waitFor((el) => el.name === 'presence' && el.attrs.from === `${bJid}/desk`, 5000);
    await Promise.all([client.close(), bob.close()]);
  });
});

describe('ack requests by age', () => {
  let slow: TestServer;
  beforeAll(async () => {
    slow = await startServer({ watchdog: { interval: '100ms' }, sm: { ackEvery: 100, ackAfter: '300ms' } });
  });
  afterAll(() => slow.stop());

  it('asks for an ack once the oldest unacked stanza has waited sm.ackAfter, however few there are', async () => {
    const [[a], [b]] = await slow.freshUsers('aged', 'ager');
    const alice = await TestClient.login(slow.port, a, 'secret', 'r');
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === alice.jid);
    await alice.enableSm();
    const bob = await TestClient.login(slow.port, b, 'secret', 'r');
    bob.send(`<message to='${alice.jid}' type='chat'><body>one</body></message>`);
    await alice.waitFor((el) => el.name === 'message');
    // One stanza, far below sm.ackEvery: only its age makes the server ask.
    await alice.waitFor((el) => el.name === 'r' && el.attrs.xmlns === SM_NS, 5000);
    alice.send(`<a xmlns='${SM_NS}' h='${alice.handled}'/>`);
    await alice.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(slow.server.ctx.registry.getByFullJid(alice.jid)?.sm?.queue.length).toBe(1); // the ping's reply, not yet acked
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('bounds', () => {
  let small: TestServer;
  beforeAll(async () => {
    small = await startServer({ sm: { maxQueue: 5, ackEvery: 100 } });
  });
  afterAll(() => small.stop());

  it('holds only the latest presence of each contact for a hibernated session, outside the unacked queue', async () => {
    const [[a], [b]] = await small.freshUsers('away', 'busy');
    await small.befriend(a, b);
    const bob = await TestClient.login(small.port, b, 'secret', 'desk');
    const alice = await TestClient.login(small.port, a, 'secret', 'phone');
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === bob.jid);
    const id = (await alice.enableSm()).attrs.id as string;
    alice.destroy();
    await eventually(() => small.server.ctx.registry.getByFullJid(alice.jid)?.state === 'detached');
    // Ten changes: more than sm.maxQueue (5) if each were queued.
    for (let i = 0; i < 10; i++) bob.send(`<presence><status>s${i}</status></presence>`);
    await bob.until(() => bob.elements.filter((el) => el.name === 'presence' && el.getChildText('status') === 's9').length === 1);
    const { client, reply } = await TestClient.resume(small.port, a, id, 0);
    expect(reply.name).toBe('resumed');
    await client.until(() => client.elements.some((el) => el.name === 'presence' && el.attrs.from === bob.jid));
    await client.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(client.elements.filter((el) => el.name === 'presence' && el.attrs.from === bob.jid).map((el) => el.getChildText('status'))).toEqual(['s9']);
    await Promise.all([client.close(), bob.close()]);
  });

  it('closes a client that lets the unacked queue overflow with <policy-violation/>, and loses nothing', async () => {
    const [[a], [b]] = await small.freshUsers('over', 'sender');
    const alice = await TestClient.login(small.port, a, 'secret', 'r');
    await alice.enableSm();
    const bob = await TestClient.login(small.port, b, 'secret', 'r');
    for (let i = 1; i <= 7; i++) bob.send(`<message to='${alice.jid}' type='chat'><body>o${i}</body></message>`);
    const err = await alice.streamError();
    expect(err.condition).toBe('policy-violation');
    expect(err.text).toMatch(/more than 5 stanzas unacked/);
    await bob.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    await eventually(async () => (await small.storage.countOffline(a)) === 7);
    const again = await TestClient.login(small.port, a, 'secret', 'again');
    await again.until(() => bodies(again).length === 7);
    expect(bodies(again)).toEqual(['o1', 'o2', 'o3', 'o4', 'o5', 'o6', 'o7']);
    await Promise.all([again.close(), bob.close()]);
  });
});

describe('without stream management', () => {
  it('salvages a message a listening client never confirmed once, not at every later login', async () => {
    const [[a], [b]] = await users('listener', 'teller');
    const bob = await login(b);
    const first = await login(a, 'one');
    await settled(first);
    bob.send(`<message to='${first.jid}' type='chat'><body>once</body></message>`);
    await first.until(() => bodies(first).length === 1);
    first.destroy();
    await eventually(async () => (await srv.storage.countOffline(a)) === 1);
    // It comes back once: this client may never have seen it.
    const second = await login(a, 'two');
    await second.until(() => bodies(second).length === 1);
    second.destroy();
    await eventually(() => srv.server.ctx.registry.getByBareJid(`${a}@localhost`).size === 0);
    await eventually(async () => (await srv.storage.countOffline(a)) === 0);
    const third = await login(a, 'three');
    await settled(third);
    expect(bodies(third)).toEqual([]);
    await Promise.all([third.close(), bob.close()]);
  });
});
