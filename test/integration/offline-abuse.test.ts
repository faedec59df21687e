import type { Element } from 'ltx';
import { TestClient } from '../helpers/client';
import { startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/**
 * Offline poison (issue 12, attack 3): anyone may store messages for a victim, but only up to a byte quota,
 * and the victim's next login delivers them a page at a time, deleting each only once the victim confirmed
 * it, so the account stays usable and nobody else waits.
 */
const BODY = 'x'.repeat(50 * 1024);
const QUOTA = 1024 * 1024;

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ c2s: { maxOfflineBytes: '1MiB' } });
});
afterAll(() => srv.stop());

/** Two users bouncing a message back and forth until stopped; each completed round trip is counted. */
async function healthyPair(): Promise<{ trips: () => number; stop(): Promise<void> }> {
  const [[a], [b, bj]] = await srv.freshUsers('healthy-a', 'healthy-b');
  const ping = await TestClient.login(srv.port, a, 'secret', 'r');
  const pong = await TestClient.login(srv.port, b, 'secret', 'r');
  await pong.waitFor((el) => el.name === 'presence');
  let trips = 0;
  let stopped = false;
  const echo = (async () => {
    while (!stopped) {
      const m = await pong.waitFor((el) => el.name === 'message', 1000).catch(() => undefined);
      if (m) pong.send(`<message to='${m.attrs.from}' type='chat' id='${m.attrs.id}'><body>pong</body></message>`);
    }
  })();
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      ping.send(`<message to='${bj}/r' type='chat' id='rt${i}'><body>ping</body></message>`);
      await ping.waitFor((el) => el.name === 'message' && el.attrs.id === `rt${i}`, 10_000);
      trips++;
    }
  })();
  return {
    trips: () => trips,
    async stop() {
      stopped = true;
      await Promise.all([loop, echo]);
      await Promise.all([ping.close(), pong.close()]);
    },
  };
}

const bodyIndex = (el: Element) => Number(el.getChildText('body')!.split(' ')[0]);
const messagesIn = (c: TestClient) => c.elements.filter((el) => el.name === 'message').map(bodyIndex);

/** Send `n` large messages to an offline user; resolves with the indices stored and those bounced. */
async function flood(from: TestClient, to: string, n: number): Promise<{ stored: number[]; refused: Element[] }> {
  for (let i = 0; i < n; i++) from.send(`<message to='${to}' type='chat' id='f${i}'><body>${i} ${BODY}</body></message>`);
  const refused = () => from.elements.filter((el) => el.name === 'message' && el.attrs.type === 'error');
  const user = to.split('@')[0];
  await eventually(async () => (await srv.storage.countOffline(user)) + refused().length === n, 15_000);
  const errored = new Set(refused().map((el) => Number(String(el.attrs.id).slice(1))));
  return { stored: Array.from({ length: n }, (_, i) => i).filter((i) => !errored.has(i)), refused: refused() };
}

describe('offline poison', () => {
  it('bounds what an attacker can store, then delivers all of it, in order, once, while a healthy pair keeps chatting', async () => {
    const pair = await healthyPair();
    const [[attackerName], [victimName, victimJid]] = await srv.freshUsers('attacker', 'victim');
    const attacker = await TestClient.login(srv.port, attackerName, 'secret', 'r');

    // (a) The byte quota: about 20 of 40 messages of 50 KB fit in 1 MiB; the rest bounce.
    const tripsBefore = pair.trips();
    const { stored, refused } = await flood(attacker, victimJid, 40);
    expect(refused.length).toBeGreaterThan(0);
    for (const err of refused) expect(err.getChild('error')?.getChild('service-unavailable')).toBeDefined();
    expect(stored.length).toBeGreaterThanOrEqual(15);
    // Same-sized messages: once one is refused, every later one is too.
    expect(stored).toEqual(Array.from({ length: stored.length }, (_, i) => i));
    const usage = await srv.storage.offlineUsage(victimName);
    expect(usage.messages).toBe(stored.length);
    expect(usage.bytes).toBeLessThanOrEqual(QUOTA);
    await eventually(() => pair.trips() > tripsBefore, 10_000);
    expect(pair.trips()).toBeGreaterThan(tripsBefore);

    // (b) The victim gets everything stored, in the order it was sent, exactly once.
    const tripsAtLogin = pair.trips();
    const victim = await TestClient.login(srv.port, victimName, 'secret', 'r');
    await victim.until(() => messagesIn(victim).length >= stored.length, 15_000);
    // Anything written before the ping's reply has arrived by then: a duplicate would show here.
    await victim.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(messagesIn(victim)).toEqual(stored);
    expect(victim.socketClosed).toBe(false);
    await eventually(() => pair.trips() > tripsAtLogin, 10_000);
    expect(pair.trips()).toBeGreaterThan(tripsAtLogin);

    // Confirmed, so gone from storage once the session ends, and never delivered again.
    await victim.close();
    await eventually(async () => (await srv.storage.countOffline(victimName)) === 0, 5000);
    expect(await srv.storage.offlineUsage(victimName)).toEqual({ messages: 0, bytes: 0 });
    const again = await TestClient.login(srv.port, victimName, 'secret', 'again');
    await again.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(messagesIn(again)).toEqual([]);

    // The freed quota takes messages again.
    await again.close();
    attacker.elements.length = 0;
    expect((await flood(attacker, victimJid, 1)).stored).toEqual([0]);
    await attacker.close();
    await pair.stop();
  });

  /**
   * The rule checked: a stored message is confirmed when the victim spoke after it was written, and only a
   * confirmed message leaves storage. A victim that dies having read some and said nothing since its
   * presence confirmed none: the next login gets every stored message again, in order, once each. A victim
   * that dies right after its ping's reply confirmed every message written before the ping arrived (here all
   * of them): the next login gets none of them.
   */
  it('a victim whose connection dies mid-flush gets every message it did not confirm at the next login, and no confirmed one again', async () => {
    const pair = await healthyPair();
    const [[senderName], [victimName, victimJid]] = await srv.freshUsers('sender', 'dying');
    const sender = await TestClient.login(srv.port, senderName, 'secret', 'r');
    const { stored } = await flood(sender, victimJid, 20);
    await sender.close();
    const gone = (resource: string) => eventually(() => srv.server.ctx.registry.getByFullJid(`${victimJid}/${resource}`) === undefined, 5000);

    const victim = await TestClient.login(srv.port, victimName, 'secret', 'r');
    await victim.until(() => messagesIn(victim).length >= 3, 10_000);
    victim.destroy();
    await gone('r');
    expect(await srv.storage.countOffline(victimName)).toBe(stored.length);

    const back = await TestClient.login(srv.port, victimName, 'secret', 'back');
    await back.until(() => messagesIn(back).length >= stored.length, 15_000);
    await back.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(messagesIn(back)).toEqual(stored);
    // It spoke after all of them, so it confirmed all of them: dying now costs it nothing and repeats nothing.
    back.destroy();
    await gone('back');
    await eventually(async () => (await srv.storage.countOffline(victimName)) === 0, 5000);
    expect(await srv.storage.countOffline(victimName)).toBe(0);
    const third = await TestClient.login(srv.port, victimName, 'secret', 'third');
    await third.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(messagesIn(third)).toEqual([]);
    expect(pair.trips()).toBeGreaterThan(0);

    await third.close();
    await pair.stop();
  });
});
