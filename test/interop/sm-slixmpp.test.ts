import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventsNamed, killDrivers, PYTHON, runDriver, succeeded, type PyEvent, type PyRun } from '../helpers/py-driver';
import { eventually } from '../helpers/sockets';

/**
 * XEP-0198 (stream management) and XEP-0280 (carbons) with a client nobody here wrote: slixmpp from Debian
 * (python3-slixmpp) with its xep_0198 and xep_0280 plugins, driven by slix_sm_client.py, over STARTTLS as in
 * slixmpp.test.ts. The other party is the hand-driven TestClient. VIGIL_SLIX_DEBUG=1 prints each run.
 */

const SCRIPT = join(__dirname, 'slix_sm_client.py');

jest.setTimeout(30000);

type Action = Record<string, unknown> & { do: string };

function slix(port: number, jid: string, actions: Action[]): PyRun {
  const extra = process.env.VIGIL_SLIX_DEBUG ? ['--verbose'] : [];
  return runDriver(SCRIPT, ['--jid', jid, '--password', 'secret', '--port', String(port), '--host', '127.0.0.1', '--wait', '8', ...extra, JSON.stringify(actions)], `slixmpp ${jid}`, !!process.env.VIGIL_SLIX_DEBUG);
}

const of = eventsNamed;
const wire = (events: PyEvent[], dir: 'in' | 'out', what: 'r' | 'a') => of(events, 'sm_wire').filter((e) => e.dir === dir && e.what === what);
const bodiesFrom = (c: TestClient, from: string) => c.elements.filter((el) => el.name === 'message' && el.attrs.from === from).map((el) => el.getChildText('body'));
const chatTo = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;

let srv: TestServer;

beforeAll(async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import slixmpp; print(slixmpp.__version__)'], { encoding: 'utf8', timeout: 15000 });
  if (probe.error || probe.status !== 0) throw new Error(`the interop tests need slixmpp: apt-get install python3-slixmpp\n(${probe.error?.message ?? probe.stderr.trim()})`);
  // sm.ackEvery 2: the server asks for acks often enough for a short test to see it.
  srv = await startServer({ c2s: { allowPlainWithoutTls: false }, sm: { ackEvery: 2 } }, { tls: true });
});

afterEach(() => killDrivers());

afterAll(async () => {
  await killDrivers();
  await srv?.stop();
});

const others: TestClient[] = [];
afterEach(() => {
  for (const c of others.splice(0)) c.destroy();
});

/** The raw other party; the test server allows PLAIN without TLS only for it (allowPlainWithoutTls is off, so STARTTLS first). */
async function otherParty(name: string, resource: string): Promise<TestClient> {
  const c = await TestClient.login(srv.port, name, 'secret', resource, { tls: true });
  c.answerPings();
  others.push(c);
  return c;
}

const hibernated = async () => metricValue(await srv.metrics(), 'vigil_sm_sessions', { state: 'hibernated' });

describe('XEP-0198 with slixmpp (xep_0198)', () => {
  it('enables resumable stream management; the server answers its <r/> and it answers the server\'s', async () => {
    const [[, aJid], [b, bJid]] = await srv.freshUsers('slixack', 'slixother');
    const other = await otherParty(b, 'desk');
    const a = slix(srv.port, `${aJid}/phone`, [
      { do: 'wait_sm' },
      { do: 'send', to: bJid, body: 'one' },
      { do: 'send', to: bJid, body: 'two' },
      { do: 'send', to: bJid, body: 'three' },
      { do: 'wait_acked', body: 'three' },
      { do: 'wait_messages', count: 4 },
      { do: 'request_ack' },
      { do: 'sleep', seconds: 0.3 },
      { do: 'disconnect' },
    ]);
    const enabled = await a.waitFor((e) => e.event === 'sm_enabled', 'sm_enabled');
    expect(enabled.resume).toBe('true');
    expect(enabled.id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await a.waitFor((e) => e.event === 'acked' && e.body === 'three', 'three acked');
    for (const n of [1, 2, 3, 4]) other.send(chatTo(`${aJid}/phone`, `to slix ${n}`));
    const events = await succeeded(a);

    expect(of(events, 'sm_failed')).toEqual([]);
    // Everything slixmpp sent after <enable/> was acked by the server's <a/>s (its roster fetch and presence came before).
    expect(of(events, 'acked').filter((e) => e.name === 'message').map((e) => e.body)).toEqual(['one', 'two', 'three']);
    const serverAcks = wire(events, 'in', 'a').map((e) => Number(e.h));
    expect(serverAcks.length).toBeGreaterThanOrEqual(1);
    expect(serverAcks).toEqual([...serverAcks].sort((p, q) => p - q));
    // The server asked (ackEvery 2, four chats) and slixmpp answered each <r/> with the count it handled.
    expect(wire(events, 'in', 'r').length).toBeGreaterThanOrEqual(1);
    const clientAcks = wire(events, 'out', 'a').map((e) => Number(e.h));
    expect(clientAcks.length).toBeGreaterThanOrEqual(wire(events, 'in', 'r').length);
    expect(clientAcks).toEqual([...clientAcks].sort((p, q) => p - q));
    expect(of(events, 'message').map((m) => m.body)).toEqual(['to slix 1', 'to slix 2', 'to slix 3', 'to slix 4']);
    expect(bodiesFrom(other, `${aJid}/phone`)).toEqual(['one', 'two', 'three']);
    expect(of(events, 'stream_error')).toEqual([]);
  });

  it('resumes after its TCP connection is reset, and gets what was sent meanwhile exactly once', async () => {
    const [[, aJid], [b, bJid]] = await srv.freshUsers('slixres', 'slixsender');
    const other = await otherParty(b, 'desk');
    const before = await srv.metrics();
    const hibernatedBefore = await hibernated();
    const a = slix(srv.port, `${aJid}/phone`, [
      { do: 'wait_sm' },
      { do: 'wait_messages', count: 1 },
      { do: 'drop' },
      { do: 'wait_line' },
      { do: 'reconnect' },
      { do: 'wait_messages', count: 3 },
      { do: 'send', to: bJid, body: 'back again' },
      { do: 'wait_acked', body: 'back again' },
      { do: 'disconnect' },
    ]);
    await a.waitFor((e) => e.event === 'sm_enabled', 'sm_enabled');
    other.send(chatTo(`${aJid}/phone`, 'before the drop'));
    await a.waitFor((e) => e.event === 'dropped', 'dropped');
    // The server noticed the lost connection and keeps the session for a resume.
    await eventually(async () => (await hibernated()) > hibernatedBefore, 5000, 50);
    expect(await hibernated()).toBe(hibernatedBefore + 1);

    other.send(chatTo(`${aJid}/phone`, 'while away 1'));
    other.send(chatTo(`${aJid}/phone`, 'while away 2'));
    await other.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    a.go();
    const events = await succeeded(a);

    const [resumed] = of(events, 'session_resumed');
    expect(resumed).toBeDefined();
    expect(resumed.previd).toBe(of(events, 'sm_enabled')[0].id);
    expect(of(events, 'sm_failed')).toEqual([]);
    // One session all along: bound once, never started again.
    expect(of(events, 'session_start')).toHaveLength(1);
    expect(of(events, 'message').map((m) => m.body)).toEqual(['before the drop', 'while away 1', 'while away 2']);
    for (const m of of(events, 'message')) expect(m.from).toBe(`${bJid}/desk`);
    await other.until(() => bodiesFrom(other, `${aJid}/phone`).length >= 1);
    expect(bodiesFrom(other, `${aJid}/phone`)).toEqual(['back again']);
    expect(other.elements.filter((el) => el.name === 'message' && el.attrs.type === 'error')).toEqual([]);

    const after = await srv.metrics();
    expect(metricValue(after, 'vigil_sm_resumes_total', { result: 'ok' }) - metricValue(before, 'vigil_sm_resumes_total', { result: 'ok' })).toBe(1);
    expect(metricValue(after, 'vigil_sm_hibernations_total', { reason: 'peer-closed' }) - metricValue(before, 'vigil_sm_hibernations_total', { reason: 'peer-closed' })).toBe(1);
    expect(await hibernated()).toBe(hibernatedBefore);
  });
});

describe('XEP-0280 with slixmpp (xep_0280)', () => {
  it('copies chats to the account\'s other slixmpp resource: received and sent carbons', async () => {
    const [[, aJid], [c, cJid]] = await srv.freshUsers('slixcarbon', 'slixthird');
    const third = await otherParty(c, 'desk');
    const tablet = slix(srv.port, `${aJid}/tablet`, [{ do: 'enable_carbons' }, { do: 'wait_carbons', count: 2 }, { do: 'sleep', seconds: 0.3 }, { do: 'disconnect' }]);
    await tablet.waitFor((e) => e.event === 'carbons_enabled', 'tablet carbons');
    const phone = slix(srv.port, `${aJid}/phone`, [
      { do: 'enable_carbons' },
      { do: 'wait_messages', count: 1 },
      { do: 'send', to: cJid, body: 'reply from the phone' },
      { do: 'sleep', seconds: 0.3 },
      { do: 'disconnect' },
    ]);
    await phone.waitFor((e) => e.event === 'carbons_enabled', 'phone carbons');
    third.send(chatTo(`${aJid}/phone`, 'hello phone'));
    const [tabletEvents, phoneEvents] = await Promise.all([succeeded(tablet), succeeded(phone)]);

    expect(of(tabletEvents, 'carbons_failed')).toEqual([]);
    expect(of(tabletEvents, 'carbon')).toEqual([
      expect.objectContaining({ direction: 'received', wrapper_from: aJid, from: `${cJid}/desk`, to: `${aJid}/phone`, body: 'hello phone', type: 'chat' }),
      expect.objectContaining({ direction: 'sent', wrapper_from: aJid, from: `${aJid}/phone`, to: cJid, body: 'reply from the phone', type: 'chat' }),
    ]);
    // The tablet was not addressed: the chat reached it only as a carbon.
    expect(of(tabletEvents, 'message').filter((m) => m.body)).toEqual([]);
    // The phone got the chat itself, and no carbon of its own traffic.
    expect(of(phoneEvents, 'message').map((m) => m.body)).toEqual(['hello phone']);
    expect(of(phoneEvents, 'carbon')).toEqual([]);
    await third.until(() => bodiesFrom(third, `${aJid}/phone`).length >= 1);
    expect(bodiesFrom(third, `${aJid}/phone`)).toEqual(['reply from the phone']);
  });
});
