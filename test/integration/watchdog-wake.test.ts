import { isPing, SM_NS, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/*
 * The tick passes over a session until quietUntil() says something could be due. Each change that can bring
 * a verdict sooner must make it look again at once: here every one of them happens after the tick has
 * already reckoned the session quiet for an hour, and the verdict must still come within its own short
 * timeout. (Without the wake the first look would be an hour away: every long limit is an hour here, so
 * nothing else can stand in for it.)
 */
/** Every limit that could stand in for a wake is an hour away; each test shortens only the one it waits for. */
const HOUR = { probeAfter: '1h', probeTimeout: '1h', unauthenticatedTimeout: '1h', writeStallTimeout: '1h' };

/** A server of its own for one test, stopped however the test ends. */
async function serving(overrides: Parameters<typeof startServer>[0], body: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startServer(overrides);
  try {
    await body(srv);
  } finally {
    await srv.stop();
  }
}

/** Two more ticks have run: the second has looked at every session there is and reckoned it quiet. */
async function ticksPass(srv: TestServer): Promise<void> {
  const ticks = async () => metricValue(await srv.metrics(), 'vigil_watchdog_ticks_total');
  const start = await ticks();
  await eventually(async () => (await ticks()) >= start + 2, 5000, 20);
}
const smRequest = (c: TestClient) => c.waitFor((el) => el.name === 'r' && el.attrs.xmlns === SM_NS, 5000);

it('starts the probes of a session that binds after the tick has seen it negotiating', () =>
  serving({ watchdog: { interval: '100ms', c2s: { ...HOUR, probeAfter: '300ms' } } }, async (srv) => {
    const [[name]] = await srv.freshUsers('late');
    const c = await TestClient.connect(srv.port);
    await c.open();
    await c.authPlain(name, 'secret');
    await ticksPass(srv);
    await c.bind('r');
    // No presence, no roster: binding is the only change, and the ping comes probeAfter after it.
    const ping = await c.waitFor(isPing, 5000);
    expect(ping.attrs).toMatchObject({ type: 'get', to: c.jid });
    c.destroy();
  }));

it('asks for an ack when a stanza is queued for a stream-management session the tick reckoned quiet', () =>
  serving({ watchdog: { interval: '100ms', c2s: HOUR }, sm: { ackEvery: 1000, ackAfter: '200ms' } }, async (srv) => {
    const [[a], [b]] = await srv.freshUsers('quiet', 'talker');
    const alice = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
    await alice.enableSm();
    await ticksPass(srv);
    const bob = await TestClient.login(srv.port, b, 'secret', 'r', { presence: false });
    bob.send(`<message to='${alice.jid}' type='chat'><body>one</body></message>`);
    await alice.waitFor((el) => el.name === 'message');
    // One stanza, far below sm.ackEvery: its age (sm.ackAfter) is what asks.
    await smRequest(alice);
    alice.destroy();
    bob.destroy();
  }));

it('ends the presence grace of a session that hibernates when its socket goes', () =>
  serving({ watchdog: { interval: '100ms', c2s: HOUR }, sm: { resumeTimeout: '1h', presenceGrace: '300ms' } }, async (srv) => {
    const [[a], [b]] = await srv.freshUsers('gone', 'watcher');
    await srv.befriend(a, b);
    const watcher = await TestClient.login(srv.port, b, 'secret', 'desk');
    const phone = await TestClient.login(srv.port, a, 'secret', 'phone');
    await watcher.waitFor((el) => el.name === 'presence' && el.attrs.from === phone.jid && el.attrs.type === undefined);
    await phone.enableSm();
    await ticksPass(srv);
    phone.destroy(); // the socket goes without a stream close: the session hibernates
    // Only the watchdog ends the grace: contacts see the phone gone presenceGrace later, while it still waits to be resumed.
    const gone = await watcher.waitFor((el) => el.name === 'presence' && el.attrs.from === phone.jid && el.attrs.type === 'unavailable', 5000);
    expect(gone.attrs.type).toBe('unavailable');
    expect(srv.server.ctx.registry.getByFullJid(phone.jid)?.hibernatedUntil).toBeGreaterThan(Date.now());
    watcher.destroy();
  }));

it('probes a resumed session on its new connection, though the tick last saw it hibernating for an hour', () =>
  serving({ watchdog: { interval: '100ms', c2s: { ...HOUR, probeAfter: '300ms', probeTimeout: '300ms' } }, sm: { resumeTimeout: '1h', presenceGrace: '1h' } }, async (srv) => {
    const [[a]] = await srv.freshUsers('back');
    const phone = await TestClient.login(srv.port, a, 'secret', 'phone', { presence: false });
    const enabled = await phone.enableSm();
    // The phone never answers <r/>: the probe times out and the session hibernates.
    await eventually(async () => metricValue(await srv.metrics(), 'vigil_sm_hibernations_total', { reason: 'probe-timeout' }) >= 1, 5000);
    phone.destroy();
    await ticksPass(srv);
    const { client, reply } = await TestClient.resume(srv.port, a, enabled.attrs.id as string, 0);
    expect(reply.name).toBe('resumed');
    await smRequest(client);
    client.destroy();
  }));
