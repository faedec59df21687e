import { TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer();
  await srv.addUser('alice');
});
afterAll(() => srv.stop());

const get = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${srv.httpPort}${path}`, init);

describe('the HTTP listener', () => {
  it('answers /healthz and /readyz while serving', async () => {
    expect((await get('/healthz')).status).toBe(200);
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');
  });

  it('serves every vigil_ metric the operators rely on, in Prometheus text format', async () => {
    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    for (const name of [
      'vigil_sessions', 'vigil_connections_accepted_total', 'vigil_sessions_closed_total', 'vigil_dead_session_lifetime_seconds',
      'vigil_watchdog_probes_total', 'vigil_watchdog_probe_rtt_seconds', 'vigil_watchdog_tick_seconds', 'vigil_watchdog_ticks_total',
      'vigil_messages_salvaged_total', 'vigil_stanzas_total', 'vigil_bytes_total', 'vigil_send_queue_bytes', 'vigil_event_loop_delay_seconds', 'process_resident_memory_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('counts sessions by state, connections, stanzas and bytes as they happen', async () => {
    const before = await srv.metrics();
    const c = await TestClient.login(srv.port, 'alice');
    await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    const during = await srv.metrics();
    expect(metricValue(during, 'vigil_sessions', { kind: 'c2s', state: 'active' })).toBe(1);
    expect(metricValue(during, 'vigil_connections_accepted_total', { kind: 'c2s' })).toBe(metricValue(before, 'vigil_connections_accepted_total', { kind: 'c2s' }) + 1);
    expect(metricValue(during, 'vigil_stanzas_total', { kind: 'c2s', direction: 'in' })).toBeGreaterThan(metricValue(before, 'vigil_stanzas_total', { kind: 'c2s', direction: 'in' }));
    // At least the ping's result went out to the client.
    expect(metricValue(during, 'vigil_stanzas_total', { kind: 'c2s', direction: 'out' })).toBeGreaterThanOrEqual(metricValue(before, 'vigil_stanzas_total', { kind: 'c2s', direction: 'out' }) + 1);
    expect(metricValue(during, 'vigil_bytes_total', { kind: 'c2s', direction: 'in' })).toBeGreaterThan(0);
    expect(metricValue(during, 'vigil_bytes_total', { kind: 'c2s', direction: 'out' })).toBeGreaterThan(0);
    await c.close();
    const after = await srv.metrics();
    expect(metricValue(after, 'vigil_sessions', { kind: 'c2s', state: 'active' })).toBe(0);
    expect(metricValue(after, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'peer-closed' })).toBe(metricValue(before, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'peer-closed' }) + 1);
    expect(metricValue(after, 'vigil_bytes_total', { kind: 'c2s', direction: 'in' })).toBeGreaterThanOrEqual(metricValue(during, 'vigil_bytes_total', { kind: 'c2s', direction: 'in' }));
  });

  it('shows a block of the event loop in the maximum delay since the previous scrape', async () => {
    await srv.metrics(); // each scrape starts a new period, counted from the sampler's next run
    // The sampler's timer is due within 100 ms, so it runs before this one.
    await new Promise((r) => setTimeout(r, 250));
    // The server runs in this process: hold its loop for 400 ms, as one expensive request would.
    const until = Date.now() + 400;
    while (Date.now() < until);
    // To the loop's next round of timers, where the overdue sampler runs: a scrape sent now would be read
    // before it. Sampled every 100 ms, a block shows at no less than its length minus that: 300 ms here,
    // less the millisecond the clock above may cut it short by.
    await new Promise((r) => setTimeout(r, 0));
    expect(metricValue(await srv.metrics(), 'vigil_event_loop_delay_seconds', { quantile: '1' })).toBeGreaterThanOrEqual(0.25);
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    expect((await get('/nothing')).status).toBe(404);
    expect((await get('/metrics', { method: 'POST' })).status).toBe(405);
  });
});
