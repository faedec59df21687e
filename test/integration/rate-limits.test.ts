import { header, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually } from '../helpers/sockets';

/*
 * Rate limits as users see them: a flooding client is slowed, never dropped or closed, while everyone else
 * goes on; an address opening connections too fast, or holding too many unauthenticated ones, is refused
 * while other addresses connect. Each client comes from its own loopback address (exemptLoopback is off).
 */

const PING = "<ping xmlns='urn:xmpp:ping'/>";

/** Log in from `local` (an address in 127/8), as TestClient.login does from 127.0.0.1. */
async function loginFrom(srv: TestServer, local: string, user: string, resource: string): Promise<TestClient> {
  const c = await TestClient.connect(srv.port, '127.0.0.1', local);
  await c.open();
  await c.authPlain(user, 'secret');
  await c.bind(resource);
  c.send('<presence/>');
  return c;
}

/**
 * Connect from `local` and open a stream: accepted once the server answers with its header, refused if the
 * socket is reset first (on loopback the reset can even beat the client's own connect event).
 */
async function attempt(srv: TestServer, local: string): Promise<{ client?: TestClient; accepted: boolean }> {
  const client = await TestClient.connect(srv.port, '127.0.0.1', local).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET') return undefined;
    throw err;
  });
  if (!client) return { accepted: false };
  client.send(header());
  await client.until(() => client.headers.length > 0 || client.socketClosed);
  return { client, accepted: client.headers.length > 0 };
}

const refusals = async (srv: TestServer, reason: string) => metricValue(await srv.metrics(), 'vigil_connections_refused_total', { kind: 'c2s', reason });

describe('per-session rate limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ c2s: { rate: { stanzasPerSecond: 100, stanzaBurst: 20 } }, limits: { exemptLoopback: false, connectionsPerIp: 0, unauthenticatedPerIp: 0 } });
  });
  afterAll(() => srv.stop());

  it('slows a flooding client without dropping anything, while a healthy pair keeps talking', async () => {
    const [[f], [a], [b, bj]] = await srv.freshUsers('flooder', 'alice', 'bob');
    const flooder = await loginFrom(srv, '127.0.0.10', f, 'r');
    const alice = await loginFrom(srv, '127.0.0.11', a, 'r');
    const bob = await loginFrom(srv, '127.0.0.12', b, 'r');
    await alice.iq(PING, "type='get' to='localhost'");
    await bob.iq(PING, "type='get' to='localhost'");

    const N = 300; // 14 times the burst: reading from the flooder pauses again and again
    let flood = '';
    for (let i = 0; i < N; i++) flood += `<iq type='get' id='f${i}' to='localhost'>${PING}</iq>`;
    flooder.send(flood);
    const answered = () => flooder.elements.filter((el) => el.name === 'iq' && el.attrs.id?.startsWith('f')).length;

    // The healthy pair's round trips complete while the flooder is still being held back.
    for (let i = 0; i < 5; i++) {
      alice.send(`<message to='${bj}/r' type='chat' id='h${i}'><body>ping ${i}</body></message>`);
      await bob.waitFor((el) => el.name === 'message' && el.attrs.id === `h${i}`);
      bob.send(`<message to='${alice.jid}' type='chat' id='r${i}'><body>pong ${i}</body></message>`);
      await alice.waitFor((el) => el.name === 'message' && el.attrs.id === `r${i}`);
    }
    expect(answered()).toBeLessThan(N);
    expect(metricValue(await srv.metrics(), 'vigil_rate_limited_total', { kind: 'c2s', limit: 'stanzas' })).toBeGreaterThanOrEqual(1);

    // Every ping is answered in the end, in order, and the flooder was never closed.
    await flooder.until(() => answered() === N, 20_000);
    const ids = flooder.elements.filter((el) => el.name === 'iq' && el.attrs.id?.startsWith('f')).map((el) => el.attrs.id);
    expect(ids).toEqual(Array.from({ length: N }, (_, i) => `f${i}`));
    expect(flooder.elements.filter((el) => el.attrs.type === 'error' || el.name === 'stream:error')).toEqual([]);
    expect(flooder.socketClosed).toBe(false);
    expect((await flooder.iq(PING, "type='get' to='localhost'")).attrs.type).toBe('result');
    await Promise.all([flooder.close(), alice.close(), bob.close()]);
  });
});

describe('new connections per IP', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ limits: { exemptLoopback: false, connectionsPerIp: 1, connectionsPerIpBurst: 3, unauthenticatedPerIp: 0 } });
  });
  afterAll(() => srv.stop());

  it('refuses an address opening connections past its rate, while another address still connects', async () => {
    const held: (TestClient | undefined)[] = [];
    const outcomes: boolean[] = [];
    for (let i = 0; i < 8; i++) {
      const { client, accepted } = await attempt(srv, '127.0.0.20');
      outcomes.push(accepted);
      held.push(client);
    }
    // The burst is let in; then, at one a second, most of the rest are refused.
    expect(outcomes.slice(0, 3)).toEqual([true, true, true]);
    expect(outcomes.filter((ok) => !ok).length).toBeGreaterThanOrEqual(1);
    expect(await refusals(srv, 'connections-per-ip')).toBe(outcomes.filter((ok) => !ok).length);

    const other = await attempt(srv, '127.0.0.21');
    expect(other.accepted).toBe(true);

    // The address's bucket refills: it gets in again.
    let again = false;
    await eventually(async () => {
      const a = await attempt(srv, '127.0.0.20');
      held.push(a.client);
      again = a.accepted;
      return again;
    }, 5000, 300);
    expect(again).toBe(true);
    for (const c of [...held, other.client]) c?.destroy();
  });
});

describe('unauthenticated connections per IP', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ limits: { exemptLoopback: false, connectionsPerIp: 0, unauthenticatedPerIp: 3 } });
  });
  afterAll(() => srv.stop());

  it('refuses the N+1th unauthenticated connection from an address until one of its N closes or binds', async () => {
    const [[u]] = await srv.freshUsers('patient');
    const held: (TestClient | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const { client, accepted } = await attempt(srv, '127.0.0.30');
      expect(accepted).toBe(true);
      held.push(client);
    }
    const fourth = await attempt(srv, '127.0.0.30');
    expect(fourth.accepted).toBe(false);
    expect(await refusals(srv, 'unauthenticated-per-ip')).toBe(1);
    // Another address is not affected.
    const elsewhere = await attempt(srv, '127.0.0.31');
    expect(elsewhere.accepted).toBe(true);

    // One of the three goes away: its place is free.
    await held.shift()!.close();
    let next: { client?: TestClient; accepted: boolean } | undefined;
    await eventually(async () => {
      next = await attempt(srv, '127.0.0.30');
      return next.accepted;
    }, 5000, 100);
    expect(next?.accepted).toBe(true);
    held.push(next!.client);
    expect((await attempt(srv, '127.0.0.30')).accepted).toBe(false);

    // A connection that logs in no longer counts as unauthenticated, so a new one is let in at once.
    const first = held[0]!;
    await first.authPlain(u, 'secret');
    await first.bind('r');
    const after = await attempt(srv, '127.0.0.30');
    expect(after.accepted).toBe(true);
    for (const c of [...held, after.client, elsewhere.client, fourth.client]) c?.destroy();
  });
});
