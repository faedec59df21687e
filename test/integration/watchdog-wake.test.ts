import { SM_NS, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/*
 * The tick passes over a session until quietUntil() says something could be due. Each change that can bring
 * a verdict sooner must make it look again at once: here every one of them happens after the tick has
 * already reckoned the session quiet for an hour, and the verdict must still come within its own short
 * timeout. (Without the wake the first look would be an hour away: every long limit is an hour here, so
 * nothing else can stand in for it.)
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({
    watchdog: { interval: '100ms', c2s: { probeAfter: '1h', probeTimeout: '1h', unauthenticatedTimeout: '1h', writeStallTimeout: '1h' } },
    sm: { ackEvery: 1000, ackAfter: '200ms', resumeTimeout: '1h', presenceGrace: '1h' },
  });
});
afterAll(() => srv.stop());

/** Two more ticks have run: the second has looked at every session there is and reckoned it quiet. */
async function ticksPass(server: TestServer = srv): Promise<void> {
  const ticks = async () => metricValue(await server.metrics(), 'vigil_watchdog_ticks_total');
  const start = await ticks();
  await eventually(async () => (await ticks()) >= start + 2, 5000, 20);
}
const smRequest = (c: TestClient) => c.waitFor((el) => el.name === 'r' && el.attrs.xmlns === SM_NS, 5000);

it('starts the probes of a session that binds after the tick has seen it negotiating', async () => {
  const short = await startServer({ watchdog: { interval: '100ms', c2s: { probeAfter: '300ms', probeTimeout: '1h', unauthenticatedTimeout: '1h', writeStallTimeout: '1h' } } });
  try {
    const [[name]] = await short.freshUsers('late');
    const c = await TestClient.connect(short.port);
    await c.open();
    await c.authPlain(name, 'secret');
    await ticksPass(short);
    await c.bind('r');
    // No presence, no roster: binding is the only change, and the ping comes probeAfter after it.
    const ping = await c.waitFor((el) => el.name === 'iq' && el.getChild('ping', 'urn:xmpp:ping') !== undefined, 5000);
    expect(ping.attrs).toMatchObject({ type: 'get', to: c.jid });
    c.destroy();
  } finally {
    await short.stop();
  }
});

it('asks for an ack when a stanza is queued for a stream-management session the tick reckoned quiet', async () => {
  const [[a], [b]] = await srv.freshUsers('quiet', 'talker');
  const alice = await TestClient.login(srv.port, a, 'secret', 'r', { presence: false });
  await alice.enableSm();
  await ticksPass();
  const bob = await TestClient.login(srv.port, b, 'secret', 'r', { presence: false });
  bob.send(`<message to='${alice.jid}' type='chat'><body>one</body></message>`);
  await alice.waitFor((el) => el.name === 'message');
  // One stanza, far below sm.ackEvery: its age (sm.ackAfter) is what asks.
  await smRequest(alice);
  alice.destroy();
  bob.destroy();
});

it('ends the presence grace of a session that hibernates when its socket goes', async () => {
  const graced = await startServer({
    watchdog: { interval: '100ms', c2s: { probeAfter: '1h', probeTimeout: '1h', writeStallTimeout: '1h' } },
    sm: { resumeTimeout: '1h', presenceGrace: '300ms' },
  });
  try {
    const [[a], [b]] = await graced.freshUsers('gone', 'watcher');
    await graced.befriend(a, b);
    const watcher = await TestClient.login(graced.port, b, 'secret', 'desk');
    const phone = await TestClient.login(graced.port, a, 'secret', 'phone');
    await watcher.waitFor((el) => el.name === 'presence' && el.attrs.from === phone.jid && el.attrs.type === undefined);
    await phone.enableSm();
    await ticksPass(graced);
    phone.destroy(); // the socket goes without a stream close: the session hibernates
    // Only the watchdog ends the grace: contacts see the phone gone presenceGrace later.
    const gone = await watcher.waitFor((el) => el.name === 'presence' && el.attrs.from === phone.jid && el.attrs.type === 'unavailable', 5000);
    expect(gone.attrs.type).toBe('unavailable');
    watcher.destroy();
  } finally {
    await graced.stop();
  }
});

it('probes a resumed session on its new connection, though the tick last saw it hibernating for an hour', async () => {
  const resumed = await startServer({
    watchdog: { interval: '100ms', c2s: { probeAfter: '300ms', probeTimeout: '300ms', writeStallTimeout: '1h' } },
    sm: { resumeTimeout: '1h', presenceGrace: '1h' },
  });
  try {
    const [[a]] = await resumed.freshUsers('back');
    const phone = await TestClient.login(resumed.port, a, 'secret', 'phone', { presence: false });
    const enabled = await phone.enableSm();
    // The phone never answers <r/>: the probe times out and the session hibernates.
    await eventually(async () => metricValue(await resumed.metrics(), 'vigil_sm_hibernations_total', { reason: 'probe-timeout' }) >= 1, 5000);
    phone.destroy();
    await ticksPass(resumed);
    const { client, reply } = await TestClient.resume(resumed.port, a, enabled.attrs.id as string, 0);
    expect(reply.name).toBe('resumed');
    await smRequest(client);
    client.destroy();
  } finally {
    await resumed.stop();
  }
});
