import { addHosts } from '../helpers/etc-hosts';
import { selfSignedFor } from '../helpers/federation';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { bare, PeerClient } from './peers/client';
import { startEjabberd } from './peers/ejabberd';
import type { PeerOptions, PeerServer } from './peers/peer';
import { startProsody } from './peers/prosody';

/**
 * Federation with servers nobody here wrote: Prosody 0.12 and ejabberd 23.01 from Debian, each with its own
 * config in a temp dir and its own loopback address, found (both ways) through /etc/hosts: no s2s.routes,
 * so Vigil resolves them as it would on the Internet (no SRV records, then the address on 5269). Both
 * require STARTTLS and accept our self-signed certificate through dialback, as we accept theirs.
 */

const VIGIL = { domain: 'vigil.test', address: '127.0.0.4' };
const PEERS: [string, (o: PeerOptions) => Promise<PeerServer>, string, string][] = [
  ['Prosody', startProsody, 'prosody.test', '127.0.0.2'],
  ['ejabberd', startEjabberd, 'ejabberd.test', '127.0.0.3'],
];

let removeHosts: () => void;
let vigil: TestServer;
const peers = new Map<string, PeerServer>();

beforeAll(async () => {
  removeHosts = addHosts(Object.fromEntries([[VIGIL.domain, VIGIL.address], ...PEERS.map(([, , domain, address]) => [domain, address])]));
  vigil = await startServer(
    { domain: VIGIL.domain, listeners: { c2s: { host: '127.0.0.1', port: 0 }, s2s: { host: VIGIL.address, port: 5269 } } },
    { tls: true, certificate: await selfSignedFor(VIGIL.domain) },
  );
  for (const name of ['alice', 'amy', 'ann']) await vigil.addUser(name);
  const users = ['bob', 'bea', 'ben'].map((user) => ({ user, password: 'secret' }));
  await Promise.all(PEERS.map(async ([name, start, domain, address]) => peers.set(name, await start({ domain, address, users }))));
}, 60_000);

afterAll(async () => {
  await Promise.all([...peers.values()].map((p) => p.stop()));
  await vigil?.stop();
  removeHosts?.();
}, 30_000);

const onVigil = (user: string, resource = 'r') => PeerClient.login({ jid: `${user}@${VIGIL.domain}/${resource}`, password: 'secret', host: '127.0.0.1', port: vigil.port });

describe.each(PEERS)('federation with %s', (name, _start, domain, address) => {
  const onPeer = (user: string, resource = 'r') => PeerClient.login({ jid: `${user}@${domain}/${resource}`, password: 'secret', host: address, port: peers.get(name)!.c2sPort });
  const peerUser = (u: string) => `${u}@${domain}`;
  const vigilUser = (u: string) => `${u}@${VIGIL.domain}`;

  it('subscriptions both ways end as both on both rosters, and presence flows online and offline', async () => {
    const alice = await onVigil('alice');
    const bob = await onPeer('bob');
    alice.subscribe(peerUser('bob'));
    await bob.waitForPresence(vigilUser('alice'), 'subscribe', 15_000);
    bob.approve(vigilUser('alice'));
    await alice.waitForPresence(peerUser('bob'), 'subscribed');
    await alice.waitForPresence(peerUser('bob'));
    bob.subscribe(vigilUser('alice'));
    await alice.waitForPresence(peerUser('bob'), 'subscribe');
    alice.approve(peerUser('bob'));
    await bob.waitForPresence(vigilUser('alice'));
    expect((await alice.rosterUntil(peerUser('bob'), (i) => i?.subscription === 'both'))?.subscription).toBe('both');
    expect((await bob.rosterUntil(vigilUser('alice'), (i) => i?.subscription === 'both'))?.subscription).toBe('both');

    // Offline and back, each way: the unavailable is broadcast, and the probe at login brings the contact's presence.
    await bob.close();
    await alice.waitForPresence(peerUser('bob'), 'unavailable');
    const bob2 = await onPeer('bob', 'again');
    await bob2.waitForPresence(vigilUser('alice'));
    await alice.waitFor((el) => el.name === 'presence' && el.attrs.from === `${peerUser('bob')}/again` && el.attrs.type === undefined);
    await alice.close();
    await bob2.waitForPresence(vigilUser('alice'), 'unavailable');
    const alice2 = await onVigil('alice', 'again');
    await alice2.waitFor((el) => el.name === 'presence' && bare(el.attrs.from ?? '') === peerUser('bob') && el.attrs.type === undefined);
    await bob2.waitFor((el) => el.name === 'presence' && el.attrs.from === `${vigilUser('alice')}/again` && el.attrs.type === undefined);
    await alice2.close();
    await bob2.close();
  }, 60_000);

  it('messages both ways, and a ping to each domain answered by its server', async () => {
    const amy = await onVigil('amy');
    const bea = await onPeer('bea');
    amy.message(`${peerUser('bea')}/r`, `hello ${name}`);
    expect((await bea.waitForMessage(vigilUser('amy'), 15_000)).getChildText('body')).toBe(`hello ${name}`);
    bea.message(`${vigilUser('amy')}/r`, 'hello Vigil');
    expect((await amy.waitForMessage(peerUser('bea'))).getChildText('body')).toBe('hello Vigil');
    expect(await amy.ping(domain)).toBe('result');
    expect(await bea.ping(VIGIL.domain)).toBe('result');
    await amy.close();
    await bea.close();
  }, 60_000);

  it('offline delivery on both sides: a message to a user who is not logged in arrives at their next login', async () => {
    const ann = await onVigil('ann');
    ann.message(peerUser('ben'), `stored on ${name}`);
    // ben's server has it once its stream from us carried it: a round trip over the same link proves that.
    expect(await ann.ping(domain)).toBe('result');
    const ben = await onPeer('ben');
    expect((await ben.waitForMessage(vigilUser('ann'), 15_000)).getChildText('body')).toBe(`stored on ${name}`);
    await ann.close();
    for (let i = 0; i < 100 && (await vigil.storage.countOffline('ann')) === 0; i++) {
      if (i === 0) ben.message(vigilUser('ann'), `stored on Vigil from ${name}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const ann2 = await onVigil('ann', 'back');
    expect((await ann2.waitForMessage(peerUser('ben'))).getChildText('body')).toBe(`stored on Vigil from ${name}`);
    await ann2.close();
    await ben.close();
  }, 60_000);
});

it('counts the streams by kind, and every stanza on them went over TLS', async () => {
  const text = await vigil.metrics();
  expect(metricValue(text, 'vigil_connections_accepted_total', { kind: 's2sOut' })).toBeGreaterThanOrEqual(2);
  expect(metricValue(text, 'vigil_connections_accepted_total', { kind: 's2sIn' })).toBeGreaterThanOrEqual(2);
  for (const s of vigil.server.ctx.registry.ofKind('s2sOut')) expect({ domain: s.domain, tls: s.conn?.encrypted }).toEqual({ domain: s.domain, tls: true });
});
