import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Element } from 'ltx';
import * as XMPP from 'stanza';
import type { ReceivedMessage, ReceivedPresence } from 'stanza/protocol';
import { SM_NS } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventsNamed, PYTHON, killDrivers, runDriver, succeeded, type PyEvent, type PyRun } from '../helpers/py-driver';
import { eventually } from '../helpers/sockets';
import { client, xml, type XmppClient } from '../helpers/xmpp-js';

/**
 * XMPP over WebSocket (RFC 7395) with clients nobody here wrote: @xmpp/client (xmpp.js 0.14) and StanzaJS 12,
 * each chatting with a slixmpp user (python3-slixmpp, driven by slix_client.py) logged in over TCP with
 * STARTTLS. Mutual contacts are made straight in storage, so presence flows both ways from the start.
 * VIGIL_SLIX_DEBUG=1 prints slixmpp's events and stream log when it exits.
 */

const SCRIPT = join(__dirname, 'slix_client.py');

jest.setTimeout(40000);

// xmpp.js's WebSocket transport uses the global WebSocket, which Node 20 only has behind --experimental-websocket;
// `ws` is the implementation xmpp.js documents for older Node (and the one StanzaJS itself uses on Node).

/** slixmpp over TCP with STARTTLS and SCRAM (slix_client.py's only way in), running the actions in order. */
function slix(jid: string, actions: Record<string, unknown>[]): PyRun & { succeeded(): Promise<PyEvent[]> } {
  const extra = process.env.VIGIL_SLIX_DEBUG ? ['--verbose'] : [];
  const run = runDriver(SCRIPT, ['--jid', jid, '--password', 'secret', '--port', String(srv.port), '--host', '127.0.0.1', ...extra, JSON.stringify(actions)], `slixmpp ${jid}`, !!process.env.VIGIL_SLIX_DEBUG);
  return { ...run, succeeded: () => succeeded(run) };
}

const of = eventsNamed;

async function until(what: string, predicate: () => boolean, timeout = 10000): Promise<void> {
  await eventually(predicate, timeout, 20);
  if (!predicate()) throw new Error(`timed out waiting for ${what}`);
}

let srv: TestServer;
const xmppJsClients: XmppClient[] = [];
const stanzaClients: XMPP.Agent[] = [];

const handshakesOk = async () => metricValue(await srv.metrics(), 'vigil_websocket_handshakes_total', { result: 'ok' });
const kindOf = (fullJid: string) => srv.server.ctx.registry.getByFullJid(fullJid)?.kind;

beforeAll(async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import slixmpp'], { encoding: 'utf8', timeout: 15000 });
  if (probe.error || probe.status !== 0) throw new Error(`these tests need slixmpp for ${PYTHON}: apt-get install python3-slixmpp\n(${probe.error?.message ?? probe.stderr.trim()})`);
  // TLS for slixmpp's STARTTLS; the WebSocket listener stays ws:// (listeners.websocket.tls is off), and the
  // helper's c2s.allowPlainWithoutTls lets the WebSocket clients authenticate there.
  srv = await startServer({}, { tls: true });
});

afterEach(async () => {
  await killDrivers();
  for (const x of xmppJsClients.splice(0)) {
    x.reconnect.stop();
    await x.stop().catch(() => undefined);
  }
  for (const s of stanzaClients.splice(0)) s.disconnect();
});

afterAll(async () => {
  await killDrivers();
  await srv?.stop();
});

describe('XMPP over WebSocket with @xmpp/client', () => {
  it('logs in, gets XEP-0198, and chats and shares presence with a slixmpp user on TCP', async () => {
    const [[js, jsBare], [py, pyBare]] = await srv.freshUsers('wsjs', 'wsslix');
    await srv.befriend(js, py);
    const before = await srv.metrics();

    const x = client({ service: `ws://127.0.0.1:${srv.server.addresses.websocket}/xmpp-websocket`, domain: 'localhost', username: js, password: 'secret', resource: 'browser' });
    xmppJsClients.push(x);
    const stanzas: Element[] = [];
    const received: Element[] = [];
    const errors: Error[] = [];
    x.on('stanza', (el) => stanzas.push(el));
    x.on('element', (el) => received.push(el));
    x.on('error', (err) => errors.push(err));
    await x.start();
    expect(x.jid?.toString()).toBe(`${jsBare}/browser`);
    expect(x.status).toBe('online');

    // xmpp.js enables stream management on its own, resumable.
    await until('SM enabled', () => x.streamManagement.enabled);
    const enabled = received.find((el) => el.name === 'enabled' && el.attrs.xmlns === SM_NS);
    expect(enabled?.attrs.resume).toBe('true');
    expect(x.streamManagement.id).toBe(enabled?.attrs.id);
    await x.send(xml('presence'));

    // The server saw one WebSocket upgrade, and holds the session as a WebSocket one with SM on.
    const mid = await srv.metrics();
    expect(metricValue(mid, 'vigil_websocket_handshakes_total', { result: 'ok' }) - metricValue(before, 'vigil_websocket_handshakes_total', { result: 'ok' })).toBe(1);
    expect(metricValue(mid, 'vigil_sm_sessions', { state: 'active' }) - metricValue(before, 'vigil_sm_sessions', { state: 'active' })).toBe(1);
    expect(metricValue(mid, 'vigil_sessions', { kind: 'websocket', state: 'active' }) - metricValue(before, 'vigil_sessions', { kind: 'websocket', state: 'active' })).toBe(1);
    expect(kindOf(`${jsBare}/browser`)).toBe('websocket');
    expect(srv.server.ctx.registry.getByFullJid(`${jsBare}/browser`)?.sm).toBeDefined();

    // slixmpp comes online on TCP, waits to see the WebSocket user's presence, writes first, then waits for the answer.
    const s = slix(`${pyBare}/desk`, [
      { do: 'wait_presence', from: `${jsBare}/browser`, type: 'available' },
      { do: 'send', to: jsBare, body: 'hello over TCP, from slixmpp' },
      { do: 'wait_messages', count: 1 },
      { do: 'disconnect' },
    ]);
    await s.waitFor((e) => e.event === 'ready', 'slixmpp ready');
    expect(kindOf(`${pyBare}/desk`)).toBe('c2s');

    const fromPy = (el: Element) => el.attrs.from === `${pyBare}/desk`;
    await until('slixmpp presence', () => stanzas.some((el) => el.name === 'presence' && fromPy(el) && el.attrs.type === undefined));
    await until('the chat from slixmpp', () => stanzas.some((el) => el.name === 'message' && fromPy(el)));
    const chats = stanzas.filter((el) => el.name === 'message' && fromPy(el));
    expect(chats).toHaveLength(1);
    // Sent to the bare JID: delivered to the one available resource, 'to' as written (RFC 6120 §8.5.2.1).
    expect(chats[0].attrs).toMatchObject({ type: 'chat', to: jsBare });
    expect(chats[0].getChildText('body')).toBe('hello over TCP, from slixmpp');

    await x.send(xml('message', { to: `${pyBare}/desk`, type: 'chat' }, xml('body', {}, 'hello over WebSocket, from xmpp.js')));
    const events = await s.succeeded();
    expect(of(events, 'message')).toEqual([expect.objectContaining({ from: `${jsBare}/browser`, body: 'hello over WebSocket, from xmpp.js', type: 'chat', delay: false })]);
    expect(of(events, 'presence').filter((p) => p.from === `${jsBare}/browser`)[0]).toMatchObject({ type: 'available' });

    // slixmpp left: xmpp.js hears it.
    await until('slixmpp unavailable', () => stanzas.some((el) => el.name === 'presence' && fromPy(el) && el.attrs.type === 'unavailable'));
    expect(stanzas.filter((el) => el.name === 'message' && el.attrs.type === 'error')).toEqual([]);
    expect(errors).toEqual([]);
    expect(x.status).toBe('online');
  });
});

describe('XMPP over WebSocket with StanzaJS', () => {
  it('logs in, and chats and shares presence with a slixmpp user on TCP, seeing it go offline', async () => {
    const [[js, jsBare], [py, pyBare]] = await srv.freshUsers('wsstanza', 'wsslix');
    await srv.befriend(js, py);
    const okBefore = await handshakesOk();

    const c = XMPP.createClient({
      jid: jsBare,
      password: 'secret',
      resource: 'tab',
      transports: { websocket: `ws://127.0.0.1:${srv.server.addresses.websocket}/xmpp-websocket`, bosh: false },
    });
    stanzaClients.push(c);
    const chats: ReceivedMessage[] = [];
    const available: ReceivedPresence[] = [];
    const unavailable: ReceivedPresence[] = [];
    const streamErrors: unknown[] = [];
    let disconnected = 0;
    c.on('chat', (m) => chats.push(m));
    c.on('available', (p) => available.push(p));
    c.on('unavailable', (p) => unavailable.push(p));
    c.on('stream:error', (e) => streamErrors.push(e));
    c.on('disconnected', () => disconnected++);
    const started = new Promise<string | void>((resolve) => c.once('session:started', resolve));
    c.connect();
    await started;
    expect(c.jid).toBe(`${jsBare}/tab`);
    expect(await handshakesOk()).toBe(okBefore + 1);
    expect(kindOf(`${jsBare}/tab`)).toBe('websocket');
    const roster = await c.getRoster();
    expect(roster.items.map((i) => [i.jid, i.subscription])).toEqual([[pyBare, 'both']]);
    c.sendPresence();

    const s = slix(`${pyBare}/desk`, [
      { do: 'wait_presence', from: `${jsBare}/tab`, type: 'available' },
      { do: 'send', to: jsBare, body: 'hi StanzaJS, slixmpp here' },
      { do: 'wait_messages', count: 1 },
      { do: 'disconnect' },
    ]);
    await s.waitFor((e) => e.event === 'ready', 'slixmpp ready');

    await until('slixmpp presence', () => available.some((p) => p.from === `${pyBare}/desk`));
    await until('the chat from slixmpp', () => chats.length >= 1);
    expect(chats).toHaveLength(1);
    expect(chats[0]).toMatchObject({ from: `${pyBare}/desk`, to: jsBare, type: 'chat', body: 'hi StanzaJS, slixmpp here' });

    c.sendMessage({ to: `${pyBare}/desk`, type: 'chat', body: 'hi slixmpp, StanzaJS here' });
    const events = await s.succeeded();
    expect(of(events, 'message')).toEqual([expect.objectContaining({ from: `${jsBare}/tab`, body: 'hi slixmpp, StanzaJS here', type: 'chat', delay: false })]);
    expect(of(events, 'presence').filter((p) => p.from === `${jsBare}/tab`)[0]).toMatchObject({ type: 'available' });

    // slixmpp disconnected: StanzaJS sees it go unavailable, and its own stream is untouched.
    await until('slixmpp unavailable', () => unavailable.some((p) => p.from === `${pyBare}/desk`));
    expect(unavailable.map((p) => p.from)).toEqual([`${pyBare}/desk`]);
    expect(streamErrors).toEqual([]);
    expect(disconnected).toBe(0);
    expect(kindOf(`${jsBare}/tab`)).toBe('websocket');

    // And closing it is clean: the server drops the WebSocket session.
    const ended = new Promise<void>((resolve) => c.once('disconnected', () => resolve()));
    c.disconnect();
    await ended;
    await until('the session gone', () => kindOf(`${jsBare}/tab`) === undefined);
  });
});
