import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/** Back-pressure by design: bounded as output is written, and input waits while output does. */
describe('back-pressure', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // The watchdog never ticks during these tests: whatever bounds a session here happens at write time.
    // 12 MB of messages end up offline here, past the default 10 MiB byte quota (offline-abuse.test.ts tests that).
    srv = await startServer({ watchdog: { interval: '1h', c2s: { maxSendQueue: '2MiB', writeStallTimeout: '1h' } }, c2s: { maxOfflineBytes: '64MiB' } });
  });
  afterAll(() => srv.stop());

  it('closes a receiver that does not read as soon as its queue passes maxSendQueue, and loses none of its messages', async () => {
    const [[a], [b, bj]] = await srv.freshUsers('flooder', 'sleeper');
    const sender = await TestClient.login(srv.port, a, 'secret', 'r');
    const receiver = await TestClient.login(srv.port, b, 'secret', 'r');
    await receiver.waitFor((el) => el.name === 'presence');
    receiver.pauseReading();
    const body = 'x'.repeat(200 * 1024);
    const N = 60; // 12 MB: more than the kernel's socket buffers and maxSendQueue together
    for (let i = 0; i < N; i++) sender.send(`<message to='${bj}/r' type='chat' id='m${i}'><body>${i} ${body}</body></message>`);
    await eventually(() => srv.server.ctx.registry.getByFullJid(`${bj}/r`) === undefined, 10_000);
    const m = await srv.metrics();
    expect(metricValue(m, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'send-queue-overflow' })).toBe(1);
    // Closed at once, so what it had not confirmed is a few megabytes, not all that was sent to it.
    expect(metricValue(m, 'vigil_messages_salvaged_total', { kind: 'c2s' })).toBeLessThan(N);
    // The sender was never slowed down or closed.
    expect((await sender.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'")).attrs.type).toBe('result');
    receiver.destroy();

    // What the receiver never confirmed was kept, the rest stored offline; at its next login the offline flush
    // goes at the pace it reads (12 MB into a 2 MiB queue), so it gets every message, once.
    const back = await TestClient.login(srv.port, b, 'secret', 'again');
    const seen = new Set<string>();
    await back.until(() => {
      for (const el of back.elements.splice(0)) if (el.name === 'message') seen.add(el.getChildText('body')!.split(' ')[0]);
      return seen.size === N;
    }, 15_000);
    expect(seen.size).toBe(N);
    expect(back.socketClosed).toBe(false);
    sender.destroy();
    back.destroy();
  });

  it('stops reading from a client that sends requests and never reads the replies, and answers all of them once it reads', async () => {
    const [[a, aj]] = await srv.freshUsers('pipeliner');
    const c = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
    c.pauseReading();
    const N = 30_000; // each disco#info reply is ~600 bytes: 18 MB of replies, far past maxSendQueue
    let batch = '';
    for (let i = 0; i < N; i++) batch += `<iq type='get' id='d${i}' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`;
    c.send(batch);
    const session = srv.server.ctx.registry.getByFullJid(`${aj}/r`)!;
    await eventually(() => session.conn?.paused === true, 10_000);
    expect(session.conn?.paused).toBe(true);
    expect(session.pendingBytes).toBeLessThanOrEqual(srv.config.watchdog.c2s.maxSendQueue);
    c.resumeReading();
    const answered = new Set<string>();
    await c.until(() => {
      for (const el of c.elements.splice(0)) if (el.name === 'iq' && el.attrs.type === 'result') answered.add(el.attrs.id as string);
      return answered.size === N;
    }, 30_000);
    expect(answered.size).toBe(N);
    expect(session.state).toBe('active');
    c.destroy();
  });
});

describe('large replies', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ c2s: { maxRosterItems: 2000 }, watchdog: { interval: '1h', c2s: { maxSendQueue: '256KiB', writeStallTimeout: '1h' } } });
  });
  afterAll(() => srv.stop());

  async function bigRoster(username: string): Promise<void> {
    // 1,000 items of about 1 KB: a 1 MB roster result, four times maxSendQueue.
    for (let i = 0; i < 1000; i++) {
      await srv.storage.putRosterItem(username, { jid: `contact${i}@example.org`, name: `${i} ${'n'.repeat(1000)}`, subscription: 'both', ask: false, pendingIn: null, approved: false, groups: [], hidden: false });
    }
  }

  it('sends a roster larger than the whole send queue to a client that reads it', async () => {
    const [[a]] = await srv.freshUsers('bigroster');
    await bigRoster(a);
    const c = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
    const roster = await c.iq("<query xmlns='jabber:iq:roster'/>", "type='get'");
    expect(roster.getChild('query')!.getChildren('item')).toHaveLength(1000);
    c.send('<presence/>');
    expect((await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'")).attrs.type).toBe('result');
    c.destroy();
  });

  it('builds one roster result at a time for a client that asks hundreds of times and never reads', async () => {
    const [[a, aj]] = await srv.freshUsers('amplifier');
    const [[h1], [h2, h2j]] = await srv.freshUsers('healthy', 'healthy');
    await bigRoster(a);
    const attacker = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
    const alice = await TestClient.login(srv.port, h1, 'secret', 'r');
    const bob = await TestClient.login(srv.port, h2, 'secret', 'r');
    attacker.pauseReading();
    let batch = '';
    for (let i = 0; i < 600; i++) batch += `<iq type='get' id='g${i}'><query xmlns='jabber:iq:roster'/></iq>`;
    attacker.send(batch);
    const session = srv.server.ctx.registry.getByFullJid(`${aj}/r`)!;
    await eventually(() => session.pendingBytes > 0 && session.conn?.paused === true, 10_000);
    // Meanwhile two other users keep talking: the presence and roster queue is not held up by the attacker.
    for (let i = 0; i < 20; i++) {
      alice.send(`<message to='${h2j}/r' type='chat'><body>${i}</body></message>`);
      expect((await bob.waitFor((el) => el.name === 'message')).getChildText('body')).toBe(String(i));
    }
    expect((await alice.iq("<query xmlns='jabber:iq:roster'/>", "type='get'")).attrs.type).toBe('result');
    // One result waits for the attacker, about 1 MB; not 600 of them.
    expect(session.pendingBytes).toBeLessThan(2 * 1024 * 1024);
    expect(session.state).toBe('active');
    for (const c of [attacker, alice, bob]) c.destroy();
  });
});
