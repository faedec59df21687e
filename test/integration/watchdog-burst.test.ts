import { isPing, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';
import { PROBES_PER_TURN } from '../../src/watchdog/watchdog';

/*
 * Sessions that logged in together fall due for a probe in the same tick, more of them than one turn of the
 * event loop sends. Each is probed exactly once all the same: the rest in the turns after, or, if the next
 * tick comes first, by that tick before it judges anything. The watchdog is driven on a clock of our own;
 * its own timer is an hour away.
 */
const COUNT = 2 * PROBES_PER_TURN + 1;

let srv: TestServer;
let clients: TestClient[] = [];
beforeEach(async () => {
  srv = await startServer({ watchdog: { interval: '1h', c2s: { probeAfter: '1h', probeTimeout: '1h' } } });
  const users = await srv.freshUsers(...Array.from({ length: COUNT }, () => 'burst'));
  clients = await Promise.all(users.map(([name]) => TestClient.login(srv.port, name, 'secret', 'r', { presence: false })));
});
afterEach(async () => {
  for (const c of clients) c.destroy();
  await srv.stop();
});

/** A moment at which every session is due for its probe, an hour after the last one was heard. */
function allDue(): number {
  const sessions = [...srv.server.ctx.registry.all()];
  expect(sessions).toHaveLength(COUNT);
  return Math.max(...sessions.map((s) => s.lastAliveAt)) + srv.config.watchdog.c2s.probeAfter + 1;
}
const probesSent = async () => metricValue(await srv.metrics(), 'vigil_watchdog_probes_total', { kind: 'c2s', probe: 'xmpp-ping' });

it('probes every session that falls due in one tick, with no tick after it', async () => {
  srv.server.watchdog.tick(allDue());
  const pings = await Promise.all(clients.map((c) => c.waitFor(isPing, 5000)));
  expect(pings.map((p) => p.attrs.to)).toEqual(clients.map((c) => c.jid));
  await eventually(async () => (await probesSent()) === COUNT, 5000, 20);
});

it('probes each of them once when the next tick comes before the rest went out', async () => {
  const due = allDue();
  srv.server.watchdog.tick(due);
  srv.server.watchdog.tick(due + 1);
  expect(await probesSent()).toBe(COUNT);
  await Promise.all(clients.map((c) => c.waitFor(isPing, 5000)));
  srv.server.watchdog.tick(due + 2);
  expect(await probesSent()).toBe(COUNT);
});
