import type { Socket } from 'node:net';
import type { Element } from 'ltx';
import { SM_NS, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';
import { client, xml, type XmppClient } from '../helpers/xmpp-js';

/**
 * XEP-0198 with a client nobody here wrote: @xmpp/client (xmpp.js 0.14) and its stream-management plugin,
 * over plain TCP (the test server allows PLAIN without TLS; xmpp.js picks SCRAM-SHA-1 when offered).
 * The other party is the hand-driven TestClient.
 */


jest.setTimeout(30000);

let srv: TestServer;
const started: XmppClient[] = [];
const others: TestClient[] = [];

beforeAll(async () => {
  // The watchdog probes a client silent for 1 s: with SM on, its probe is an <r/> and only an <a/> answers it.
  srv = await startServer({ sm: { ackEvery: 2 }, watchdog: { interval: '100ms', c2s: { probeAfter: '1s', probeTimeout: '1s' } } });
});

afterEach(async () => {
  for (const x of started.splice(0)) {
    x.reconnect.stop();
    await x.stop().catch(() => undefined);
  }
  for (const c of others.splice(0)) c.destroy();
});

afterAll(() => srv?.stop());

interface Run {
  x: XmppClient;
  stanzas: Element[];
  received: Element[];
  sent: Element[];
  errors: Error[];
  acked: Element[];
  failed: Element[];
}

async function xmppJs(username: string, resource: string): Promise<Run> {
  const x = client({ service: `xmpp://127.0.0.1:${srv.port}`, domain: 'localhost', username, password: 'secret', resource });
  started.push(x);
  const run: Run = { x, stanzas: [], received: [], sent: [], errors: [], acked: [], failed: [] };
  x.reconnect.delay = 200;
  x.on('stanza', (el) => run.stanzas.push(el));
  x.on('element', (el) => run.received.push(el));
  x.on('send', (el) => run.sent.push(el));
  x.on('error', (err) => run.errors.push(err));
  x.streamManagement.on('ack', (el) => run.acked.push(el));
  x.streamManagement.on('fail', (el) => run.failed.push(el));
  // xmpp.js asks for an ack 250 ms after it sends stanzas, and every 30 s otherwise; nothing changed here.
  await x.start();
  return run;
}

const bodiesFrom = (stanzas: Element[], from: string) => stanzas.filter((el) => el.name === 'message' && el.attrs.from === from).map((el) => el.getChildText('body'));
const chat = (to: string, body: string) => xml('message', { to, type: 'chat' }, xml('body', {}, body));

async function until(what: string, predicate: () => boolean, timeout = 5000): Promise<void> {
  await eventually(predicate, timeout, 20);
  if (!predicate()) throw new Error(`timed out waiting for ${what}`);
}

describe('XEP-0198 with @xmpp/client', () => {
  it('enables resumable stream management, and acks work both ways', async () => {
    const [[a, aJid], [b, bJid]] = await srv.freshUsers('jsack', 'jsother');
    const other = await TestClient.login(srv.port, b, 'secret', 'desk');
    others.push(other);
    other.answerPings();
    const before = await srv.metrics();
    const run = await xmppJs(a, 'laptop');
    const sm = run.x.streamManagement;
    expect(run.x.jid?.toString()).toBe(`${aJid}/laptop`);
    await until('SM enabled', () => sm.enabled);
    const enabled = run.received.find((el) => el.name === 'enabled' && el.attrs.xmlns === SM_NS)!;
    expect(enabled.attrs.resume).toBe('true');
    expect(sm.id).toBe(enabled.attrs.id);
    expect(sm.id).not.toBe('');

    // The client's own requests: three chats, then xmpp.js's <r/>; the server's <a/> confirms all three.
    for (const n of [1, 2, 3]) await run.x.send(chat(bJid, `js ${n}`));
    await until('acks for the three chats', () => run.acked.length >= 3);
    expect(run.acked.map((el) => el.getChildText('body'))).toEqual(['js 1', 'js 2', 'js 3']);
    expect(run.failed).toEqual([]);
    expect(sm.outbound_q).toEqual([]);
    const requests = run.sent.filter((el) => el.name === 'r' && el.attrs.xmlns === SM_NS);
    expect(requests.length).toBeGreaterThanOrEqual(1);
    // And the other party got each exactly once.
    await other.until(() => bodiesFrom(other.elements, `${aJid}/laptop`).length >= 3);
    expect(bodiesFrom(other.elements, `${aJid}/laptop`)).toEqual(['js 1', 'js 2', 'js 3']);

    // The server's requests: sm.ackEvery is 2, so four chats make it ask; xmpp.js answers with what it handled.
    for (const n of [1, 2, 3, 4]) other.send(`<message to='${aJid}/laptop' type='chat'><body>to js ${n}</body></message>`);
    await until('the four chats', () => bodiesFrom(run.stanzas, `${b}@localhost/desk`).length >= 4);
    await until('an <a/> answering the server', () => run.sent.some((el) => el.name === 'a' && el.attrs.xmlns === SM_NS));
    expect(bodiesFrom(run.stanzas, `${b}@localhost/desk`)).toEqual(['to js 1', 'to js 2', 'to js 3', 'to js 4']);
    const serverRequests = run.received.filter((el) => el.name === 'r' && el.attrs.xmlns === SM_NS);
    expect(serverRequests.length).toBeGreaterThanOrEqual(1);
    const answers = run.sent.filter((el) => el.name === 'a' && el.attrs.xmlns === SM_NS);
    // Each h counts stanzas handled since <enabled/>, so it never exceeds what arrived and never goes back.
    const hs = answers.map((el) => Number(el.attrs.h));
    expect(hs).toEqual([...hs].sort((p, q) => p - q));
    expect(hs[hs.length - 1]).toBeLessThanOrEqual(run.stanzas.length);

    // Now silent: the watchdog probes with <r/> after 1 s, and xmpp.js's <a/> keeps the session alive.
    const probes = () => srv.metrics().then((t) => metricValue(t, 'vigil_watchdog_probes_total', { kind: 'c2s', probe: 'sm-ack' }) - metricValue(before, 'vigil_watchdog_probes_total', { kind: 'c2s', probe: 'sm-ack' }));
    let probed = 0;
    await eventually(async () => (probed = await probes()) >= 2, 8000, 100);
    expect(probed).toBeGreaterThanOrEqual(2);
    const after = await srv.metrics();
    expect(metricValue(after, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(metricValue(before, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' }));
    expect(metricValue(after, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' })).toBe(metricValue(before, 'vigil_sm_hibernations_total', { reason: 'probe-timeout' }));
    expect(run.x.status).toBe('online');
    // Still the same stream: a chat goes through without any reconnect.
    await run.x.send(chat(bJid, 'still here'));
    await other.until(() => bodiesFrom(other.elements, `${aJid}/laptop`).includes('still here'));
    expect(run.errors).toEqual([]);
  });

  it('resumes after its socket is destroyed, and gets what was sent meanwhile exactly once', async () => {
    const [[a, aJid], [b, bJid]] = await srv.freshUsers('jsres', 'jssender');
    const other = await TestClient.login(srv.port, b, 'secret', 'desk');
    others.push(other);
    other.answerPings();
    const run = await xmppJs(a, 'phone');
    const sm = run.x.streamManagement;
    await until('SM enabled', () => sm.enabled);
    const id = sm.id;
    const resumed: number[] = [];
    sm.on('resumed', () => resumed.push(Date.now()));
    const before = await srv.metrics();
    const hibernated = async () => metricValue(await srv.metrics(), 'vigil_sm_sessions', { state: 'hibernated' });
    const hibernatedBefore = await hibernated();

    other.send(`<message to='${aJid}/phone' type='chat'><body>before the drop</body></message>`);
    await until('the first chat', () => bodiesFrom(run.stanzas, `${bJid}/desk`).length === 1);

    // The network goes: no </stream:stream>, the TCP connection just ends. Reconnection waits for the test.
    run.x.reconnect.delay = 1e9;
    const socket = run.x.socket as unknown as { socket?: Socket } & Socket;
    const raw: Socket = socket.socket ?? socket;
    raw.resetAndDestroy();
    await until('xmpp.js to notice', () => run.x.status === 'disconnect');
    await eventually(async () => (await hibernated()) > hibernatedBefore, 5000, 50);
    expect(await hibernated()).toBe(hibernatedBefore + 1);

    // Sent while the session waits to be resumed: the server must keep them for it, not error them back.
    other.send(`<message to='${aJid}/phone' type='chat'><body>while away 1</body></message>`);
    other.send(`<message to='${aJid}/phone' type='chat'><body>while away 2</body></message>`);
    const sent = await other.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    expect(sent.attrs.type).toBe('result');
    expect(other.elements.filter((el) => el.name === 'message' && el.attrs.type === 'error')).toEqual([]);

    // Back: xmpp.js reconnects and sends <resume previd h/> instead of binding.
    run.x.reconnect.delay = 50;
    void run.x.reconnect.reconnect().catch(() => undefined);
    await until('resumed', () => resumed.length === 1);
    const resumeSent = run.sent.find((el) => el.name === 'resume' && el.attrs.xmlns === SM_NS)!;
    expect(resumeSent.attrs).toMatchObject({ previd: id, h: '1' });
    const resumedEl = run.received.find((el) => el.name === 'resumed' && el.attrs.xmlns === SM_NS)!;
    expect(resumedEl.attrs.previd).toBe(id);
    // Bound once, on the first stream: the resumed one carries the same session.
    expect(run.sent.filter((el) => el.name === 'iq' && el.getChild('bind', 'urn:ietf:params:xml:ns:xmpp-bind'))).toHaveLength(1);
    expect(sm.enabled).toBe(true);
    expect(sm.id).toBe(id);

    await until('the chats sent meanwhile', () => bodiesFrom(run.stanzas, `${bJid}/desk`).length >= 3);
    // Settle: a round trip on the resumed stream comes after anything else the server had to send.
    await run.x.send(xml('iq', { type: 'get', id: 'settle', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await until('the settle reply', () => run.stanzas.some((el) => el.name === 'iq' && el.attrs.id === 'settle'));
    expect(bodiesFrom(run.stanzas, `${bJid}/desk`)).toEqual(['before the drop', 'while away 1', 'while away 2']);

    const after = await srv.metrics();
    expect(metricValue(after, 'vigil_sm_resumes_total', { result: 'ok' }) - metricValue(before, 'vigil_sm_resumes_total', { result: 'ok' })).toBe(1);
    expect(await hibernated()).toBe(hibernatedBefore);
    // The same session, the same full JID: the other party still reaches it, and its replies come from it.
    await run.x.send(chat(bJid, 'back'));
    await other.until(() => bodiesFrom(other.elements, `${aJid}/phone`).includes('back'));
    expect(bodiesFrom(other.elements, `${aJid}/phone`)).toEqual(['back']);
    expect(run.failed).toEqual([]);
  });
});
