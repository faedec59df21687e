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
    await ca.close();
    await cb.close();
  });
});
