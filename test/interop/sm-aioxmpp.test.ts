import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventsNamed, killDrivers, PYTHON, runDriver, succeeded, type PyRun } from '../helpers/py-driver';
import { eventually } from '../helpers/sockets';

/**
 * XEP-0198 with aioxmpp 0.13 from Debian (python3-aioxmpp), a client nobody here wrote, whose stream
 * management is built in: it enables SM when offered, requests and answers acks, and on a lost connection
 * reconnects and resumes by itself. Driven by aioxmpp_sm_client.py over STARTTLS with SCRAM. The other party
 * is the hand-driven TestClient. VIGIL_AIOXMPP_DEBUG=1 prints each run.
 */

const SCRIPT = join(__dirname, 'aioxmpp_sm_client.py');

jest.setTimeout(30000);

type Action = Record<string, unknown> & { do: string };

function aio(port: number, jid: string, actions: Action[]): PyRun {
  return runDriver(SCRIPT, ['--jid', jid, '--password', 'secret', '--port', String(port), '--host', '127.0.0.1', '--wait', '8', JSON.stringify(actions)], `aioxmpp ${jid}`, !!process.env.VIGIL_AIOXMPP_DEBUG);
}

const of = eventsNamed;
const bodiesFrom = (c: TestClient, from: string) => c.elements.filter((el) => el.name === 'message' && el.attrs.from === from).map((el) => el.getChildText('body'));
const chatTo = (to: string, body: string) => `<message to='${to}' type='chat'><body>${body}</body></message>`;


let srv: TestServer;
const others: TestClient[] = [];

beforeAll(async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import aioxmpp; print(aioxmpp.__version__)'], { encoding: 'utf8', timeout: 15000, cwd: __dirname });
  if (probe.error || probe.status !== 0) throw new Error(`these tests need aioxmpp: apt-get install python3-aioxmpp\n(${probe.error?.message ?? probe.stderr.trim()})`);
  // sm.ackEvery 2 so the server asks for acks; the watchdog probes a client silent for 1 s, with SM on by <r/>.
  srv = await startServer({ c2s: { allowPlainWithoutTls: false }, sm: { ackEvery: 2 }, watchdog: { interval: '100ms', c2s: { probeAfter: '1s', probeTimeout: '1s' } } }, { tls: true });
});

afterEach(async () => {
  await killDrivers();
  for (const c of others.splice(0)) c.destroy();
});

afterAll(async () => {
  await killDrivers();
  await srv?.stop();
});

async function otherParty(name: string, resource: string): Promise<TestClient> {
  const c = await TestClient.login(srv.port, name, 'secret', resource, { tls: true });
  c.answerPings();
  others.push(c);
  return c;
}

const metric = async (name: string, labels: Record<string, string>) => metricValue(await srv.metrics(), name, labels);

describe('XEP-0198 with aioxmpp', () => {
  it('enables resumable stream management; its stanzas are acked, and its acks answer the server', async () => {
    const [[, aJid], [b, bJid]] = await srv.freshUsers('aioack', 'aioother');
    const other = await otherParty(b, 'desk');
    const probesBefore = await metric('vigil_watchdog_probes_total', { kind: 'c2s', probe: 'sm-ack' });
    const reapedBefore = await metric('vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' });
    const a = aio(srv.port, `${aJid}/phone`, [
      { do: 'send', to: bJid, body: 'one' },
      { do: 'send', to: bJid, body: 'two' },
      { do: 'send', to: bJid, body: 'three' },
      { do: 'wait_acked' },
      { do: 'wait_messages', count: 4 },
      // Silent long enough for the watchdog to probe it with <r/> twice: only aioxmpp's <a/> keeps it on.
      { do: 'sleep', seconds: 3.5 },
      { do: 'send', to: bJid, body: 'still here' },
      { do: 'wait_acked' },
    ]);
    const [established] = await Promise.all([a.waitFor((e) => e.event === 'established', 'established')]);
    expect(established).toMatchObject({ jid: `${aJid}/phone`, sm_enabled: true, sm_resumable: true });
    expect(established.sm_id).toMatch(/^[A-Za-z0-9_-]{24}$/);
    await a.waitFor((e) => e.event === 'acked' && e.body === 'three', 'three acked');
    for (const n of [1, 2, 3, 4]) other.send(chatTo(`${aJid}/phone`, `to aio ${n}`));
    const events = await succeeded(a);

    expect(of(events, 'acked').map((e) => e.body)).toEqual(['one', 'two', 'three', 'still here']);
    expect(of(events, 'message').map((m) => m.body)).toEqual(['to aio 1', 'to aio 2', 'to aio 3', 'to aio 4']);
    expect(of(events, 'suspended')).toEqual([]);
    expect(of(events, 'failure')).toEqual([]);
    expect(await metric('vigil_watchdog_probes_total', { kind: 'c2s', probe: 'sm-ack' })).toBeGreaterThanOrEqual(probesBefore + 2);
    expect(await metric('vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(reapedBefore);
    await other.until(() => bodiesFrom(other, `${aJid}/phone`).length >= 4);
    expect(bodiesFrom(other, `${aJid}/phone`)).toEqual(['one', 'two', 'three', 'still here']);
  });

  it('resumes by itself after its TCP connection ends without a stream close (FIN), and gets what was sent meanwhile exactly once', async () => {
    const [[, aJid], [b, bJid]] = await srv.freshUsers('aiores', 'aiosender');
    const other = await otherParty(b, 'desk');
    const okBefore = await metric('vigil_sm_resumes_total', { result: 'ok' });
    const hibernatedBefore = await metric('vigil_sm_sessions', { state: 'hibernated' });
    const a = aio(srv.port, `${aJid}/phone`, [
      { do: 'wait_messages', count: 1 },
      { do: 'drop' },
      { do: 'wait_resumed' },
      { do: 'wait_messages', count: 3 },
      { do: 'send', to: bJid, body: 'back again' },
      { do: 'wait_acked' },
    ]);
    const established = await a.waitFor((e) => e.event === 'established', 'established');
    expect(established).toMatchObject({ sm_enabled: true, sm_resumable: true });
    other.send(chatTo(`${aJid}/phone`, 'before the drop'));
    await a.waitFor((e) => e.event === 'reconnecting', 'reconnecting');
    // XEP-0198 §5: a stream ended without </stream:stream> is resumable; the server must keep the session.
    await eventually(async () => (await metric('vigil_sm_sessions', { state: 'hibernated' })) > hibernatedBefore, 5000, 50);
    expect(await metric('vigil_sm_sessions', { state: 'hibernated' })).toBe(hibernatedBefore + 1);

    other.send(chatTo(`${aJid}/phone`, 'while away 1'));
    other.send(chatTo(`${aJid}/phone`, 'while away 2'));
    await other.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get' to='localhost'");
    a.go();
    const events = await succeeded(a);

    expect(of(events, 'suspended')).toHaveLength(1);
    expect(of(events, 'resumed')).toHaveLength(1);
    // The stream is destroyed once, when the driver stops the client at the end, never before.
    const stopping = events.findIndex((e) => e.event === 'sm_counters' && e.sm_id === undefined);
    expect(stopping).toBeGreaterThan(0);
    expect(of(events.slice(0, stopping), 'destroyed')).toEqual([]);
    expect(of(events, 'sm_counters').find((e) => e.sm_id !== undefined)?.sm_id).toBe(established.sm_id);
    expect(of(events, 'message').map((m) => m.body)).toEqual(['before the drop', 'while away 1', 'while away 2']);
    await other.until(() => bodiesFrom(other, `${aJid}/phone`).length >= 1);
    expect(bodiesFrom(other, `${aJid}/phone`)).toEqual(['back again']);
    expect(await metric('vigil_sm_resumes_total', { result: 'ok' })).toBe(okBefore + 1);
    expect(await metric('vigil_sm_sessions', { state: 'hibernated' })).toBe(hibernatedBefore);
  });
});
