import type { Element } from 'ltx';
import { startFederation, type FederatedServer } from '../helpers/federation';
import { metricValue } from '../helpers/server';

let a: FederatedServer;
let b: FederatedServer;
beforeAll(async () => {
  [a, b] = await startFederation({ domain: 'a.test' }, { domain: 'b.test' });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
});

const chat = (from: string, to: string, body: string) => (el: Element) => el.name === 'message' && el.attrs.from?.startsWith(from) && el.attrs.to?.startsWith(to) && el.getChildText('body') === body;

describe('two Vigil servers federating over dialback (self-signed certificates)', () => {
  it('carries chat both ways, over TLS, each stream authenticated by dialback', async () => {
    const [[alice, aliceJid]] = await a.freshUsers('alice');
    const [[bob, bobJid]] = await b.freshUsers('bob');
    const ca = await a.login(alice);
    const cb = await b.login(bob);
    ca.send(`<message to='${bobJid}' type='chat' id='m1'><body>hello from a</body></message>`);
    const got = await cb.waitFor(chat(aliceJid, bobJid, 'hello from a'));
    expect(got.attrs.xmlns).toBe('jabber:client');
    cb.send(`<message to='${aliceJid}/r' type='chat' id='m2'><body>hello from b</body></message>`);
    await ca.waitFor(chat(bobJid, aliceJid, 'hello from b'));
    expect(metricValue(await a.metrics(), 'vigil_connections_accepted_total', { kind: 's2sOut' })).toBe(1);
    expect(metricValue(await a.metrics(), 'vigil_connections_accepted_total', { kind: 's2sIn' })).toBe(1);
    // The operator sees both server streams, by domain.
    const report = (await (await fetch(`http://127.0.0.1:${a.httpPort}/admin/sessions`)).json()) as { sessions: { kind: string; domain: string | null; state: string }[] };
    expect(report.sessions.filter((s) => s.kind.startsWith('s2s')).map(({ kind, domain, state }) => ({ kind, domain, state })).sort((x, y) => x.kind.localeCompare(y.kind))).toEqual([
      { kind: 's2sIn', domain: 'b.test', state: 'active' },
      { kind: 's2sOut', domain: 'b.test', state: 'active' },
    ]);
    await ca.close();
    await cb.close();
  });
});

const ROSTER = 'jabber:iq:roster';
const presenceFrom = (from: string, type?: string) => (el: Element) => el.name === 'presence' && el.attrs.from?.split('/')[0] === from && el.attrs.type === type;

async function rosterItem(c: import('../helpers/client').TestClient, jid: string): Promise<Element | undefined> {
  const reply = await c.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
  return reply.getChild('query')?.getChildren('item').find((i) => i.attrs.jid === jid);
}

describe('subscriptions, presence and offline messages across the two servers (RFC 6121)', () => {
  it('a mutual subscription ends as both on both rosters, and each sees the other come and go', async () => {
    const [[alice, aliceJid]] = await a.freshUsers('alice');
    const [[bob, bobJid]] = await b.freshUsers('bob');
    const ca = await a.login(alice);
    const cb = await b.login(bob);
    await ca.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    await cb.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    ca.send(`<presence to='${bobJid}' type='subscribe'/>`);
    await cb.waitFor(presenceFrom(aliceJid, 'subscribe'));
    cb.send(`<presence to='${aliceJid}' type='subscribed'/>`);
    await ca.waitFor(presenceFrom(bobJid, 'subscribed'));
    // Bob is online: his current presence follows the approval.
    await ca.waitFor(presenceFrom(bobJid, undefined));
    cb.send(`<presence to='${aliceJid}' type='subscribe'/>`);
    await ca.waitFor(presenceFrom(bobJid, 'subscribe'));
    ca.send(`<presence to='${bobJid}' type='subscribed'/>`);
    await cb.waitFor(presenceFrom(aliceJid, undefined));
    expect((await rosterItem(ca, bobJid))?.attrs.subscription).toBe('both');
    expect((await rosterItem(cb, aliceJid))?.attrs.subscription).toBe('both');

    // Offline: bob leaves, alice sees unavailable; he comes back and each learns the other's presence by probe.
    await cb.close();
    await ca.waitFor(presenceFrom(bobJid, 'unavailable'));
    const cb2 = await b.login(bob, 'again');
    await cb2.waitFor(presenceFrom(aliceJid, undefined));
    await ca.waitFor((el) => el.name === 'presence' && el.attrs.from === `${bobJid}/again` && el.attrs.type === undefined);
    await ca.close();
    await cb2.waitFor(presenceFrom(aliceJid, 'unavailable'));
    await cb2.close();
  });

  it('a message to a user who is offline on the other server waits in their offline storage', async () => {
    const [[alice, aliceJid]] = await a.freshUsers('alice');
    const [[bob, bobJid]] = await b.freshUsers('bob');
    const ca = await a.login(alice);
    ca.send(`<message to='${bobJid}' type='chat' id='off1'><body>while you were out</body></message>`);
    await ca.iq(`<query xmlns='${ROSTER}'/>`, "type='get'");
    // Stored on b once it arrived there; nothing comes back to alice.
    const waitStored = async () => {
      for (let i = 0; i < 200 && (await b.storage.countOffline(bob)) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await waitStored();
    const cb = await b.login(bob);
    const got = await cb.waitFor(chat(aliceJid, bobJid, 'while you were out'));
    expect(got.getChild('delay', 'urn:xmpp:delay')?.attrs.from).toBe('b.test');
    expect(ca.elements.filter((el) => el.attrs.type === 'error')).toEqual([]);
    await ca.close();
    await cb.close();
  });

  it('the other server answers a ping and disco to its domain, and bounces a message to an account it does not have', async () => {
    const [[alice]] = await a.freshUsers('alice');
    const ca = await a.login(alice);
    expect((await ca.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='b.test'")).attrs).toMatchObject({ type: 'result', from: 'b.test' });
    const info = await ca.iq("<query xmlns='http://jabber.org/protocol/disco#info'/>", "type='get' to='b.test'");
    expect(info.getChild('query')?.getChildren('feature').map((f) => f.attrs.var)).toContain('urn:xmpp:ping');
    ca.send("<message to='nobody@b.test' type='chat' id='nb1'><body>anyone?</body></message>");
    const error = await ca.waitFor((el) => el.name === 'message' && el.attrs.id === 'nb1' && el.attrs.type === 'error');
    expect(error.attrs.from).toBe('nobody@b.test');
    await ca.close();
  });
});
