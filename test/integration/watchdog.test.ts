import { isPing, TestClient } from '../helpers/client';
import { metricValue, startServer, type TestServer } from '../helpers/server';
import { eventually, serverSocketStates } from '../helpers/sockets';

/** Short, real timeouts: the rules are the production ones, only the numbers are small. */
const fast = {
  watchdog: {
    interval: '100ms',
    c2s: { probeAfter: '400ms', probeTimeout: '400ms', unauthenticatedTimeout: '600ms', closeTimeout: '300ms', writeStallTimeout: '600ms', maxSendQueue: '256KiB' },
  },
};

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer(fast as never);
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) await srv.addUser(u);
});
afterAll(() => srv.stop());

async function closedCount(reason: string): Promise<number> {
  return metricValue(await srv.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason });
}

async function expectNoServerSocket(c: TestClient): Promise<void> {
  const port = c.localPort;
  await c.closed;
  // The server closed (or reset) its side; nothing of it may linger in any state.
  await eventually(() => serverSocketStates(srv.port, port).length === 0);
  expect(serverSocketStates(srv.port, port)).toEqual([]);
}

describe('a silent client', () => {
  it('is pinged, then closed with <connection-timeout/> saying why, and leaves no socket behind', async () => {
    const before = await closedCount('probe-timeout');
    const c = await TestClient.login(srv.port, 'alice');
    const ping = await c.waitFor(isPing);
    expect(ping.attrs).toMatchObject({ type: 'get', from: 'localhost', to: c.jid });
    expect(ping.attrs.id).toMatch(/^vigil-ping-/);
    const err = await c.streamError();
    expect(err.condition).toBe('connection-timeout');
    expect(err.text).toMatch(/^probe-timeout: no answer to a ping within 0 s; nothing received for \d+ s$/);
    await c.until(() => c.streamEnded);
    await expectNoServerSocket(c);
    const metrics = await srv.metrics();
    expect(metricValue(metrics, 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(before + 1);
    expect(metricValue(metrics, 'vigil_dead_session_lifetime_seconds_count', { kind: 'c2s', reason: 'probe-timeout' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'vigil_watchdog_probes_total', { kind: 'c2s', probe: 'xmpp-ping' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'vigil_watchdog_ticks_total')).toBeGreaterThan(0);
  });

  it('gets the messages it never confirmed from offline storage at its next login, with the same stanza-id', async () => {
    const bob = await TestClient.login(srv.port, 'bob', 'secret', 'silent');
    const carol = await TestClient.login(srv.port, 'carol');
    carol.answerPings();
    carol.send("<message to='bob@localhost' type='chat'><body>one</body></message>");
    carol.send("<message to='bob@localhost' type='chat'><body>two</body></message>");
    const live = [await bob.waitFor((el) => el.name === 'message'), await bob.waitFor((el) => el.name === 'message')];
    // bob received them on the wire but never said a word after: the server cannot know they arrived.
    expect((await bob.streamError()).condition).toBe('connection-timeout');
    await bob.closed;
    await bob.until(() => false, 200).catch(() => undefined);
    expect(metricValue(await srv.metrics(), 'vigil_messages_salvaged_total', { kind: 'c2s' })).toBeGreaterThanOrEqual(2);

    const again = await TestClient.login(srv.port, 'bob', 'secret', 'back');
    const stored = [await again.waitFor((el) => el.name === 'message'), await again.waitFor((el) => el.name === 'message')];
    expect(stored.map((m) => m.getChildText('body'))).toEqual(['one', 'two']);
    const ids = (list: typeof live) => list.map((m) => m.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id);
    expect(ids(stored)).toEqual(ids(live));
    for (const m of stored) expect(m.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp).toBeDefined();
    await again.close();
    await carol.close();
  });
});

describe('a live client', () => {
  it('that answers every ping stays through many probe cycles', async () => {
    const before = await closedCount('probe-timeout');
    const c = await TestClient.login(srv.port, 'dave');
    const answering = c.answerPings();
    await c.until(() => answering.count >= 6, 15_000);
    const pong = await c.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
    expect(pong.attrs.type).toBe('result');
    expect(c.socketClosed).toBe(false);
    expect(await closedCount('probe-timeout')).toBe(before);
    answering.stop();
    await c.close();
  });

  it('that answers pings with an iq error stays too: any reply proves life', async () => {
    const c = await TestClient.login(srv.port, 'erin');
    const answering = c.answerPings(true);
    await c.until(() => answering.count >= 4, 15_000);
    expect(c.socketClosed).toBe(false);
    expect(c.elements.find((el) => el.name === 'stream:error')).toBeUndefined();
    answering.stop();
    await c.close();
  });

  it('that keeps talking on its own is never pinged', async () => {
    const c = await TestClient.login(srv.port, 'frank');
    for (let i = 0; i < 12; i++) {
      c.send(' ');
      await c.until(() => false, 100).catch(() => undefined);
    }
    expect(c.elements.find((el) => el.name === 'iq' && el.getChild('ping'))).toBeUndefined();
    expect(c.socketClosed).toBe(false);
    await c.close();
  });
});

describe('an unauthenticated connection', () => {
  it('that opens a stream and stops is closed with <connection-timeout/>', async () => {
    const before = await closedCount('unauthenticated');
    const c = await TestClient.connect(srv.port);
    await c.open();
    const err = await c.streamError();
    expect(err).toEqual({ condition: 'connection-timeout', text: 'unauthenticated: not authenticated within 1 s' });
    await expectNoServerSocket(c);
    expect(await closedCount('unauthenticated')).toBe(before + 1);
  });

  it('that never sends a byte gets a stream header, the error, and a closed socket', async () => {
    const c = await TestClient.connect(srv.port);
    expect((await c.streamError()).condition).toBe('connection-timeout');
    expect(c.headers).toHaveLength(1);
    await expectNoServerSocket(c);
  });

  it('that authenticates but never binds is closed too', async () => {
    const c = await TestClient.connect(srv.port);
    await c.open();
    await c.authPlain('alice', 'secret');
    expect((await c.streamError()).condition).toBe('connection-timeout');
    await expectNoServerSocket(c);
  });
});

describe('a client that does not read', () => {
  /**
   * A client that stops reading while another sends it 100 KiB messages, until the server closes it for
   * `reason`; then its socket must be gone in every state, although our FIN could never get through.
   */
  async function starve(watchdog: object, reason: string): Promise<void> {
    const s = await startServer({ watchdog: { interval: '100ms', c2s: { closeTimeout: '300ms', ...watchdog } } } as never);
    try {
      await s.addUser('alice');
      await s.addUser('carol');
      const sink = await TestClient.login(s.port, 'alice', 'secret', 'sink');
      sink.pauseReading();
      const sender = await TestClient.login(s.port, 'carol');
      const body = 'y'.repeat(100 * 1024);
      const count = async () => metricValue(await s.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason });
      for (let i = 0; i < 400 && (await count()) === 0; i++) {
        sender.send(`<message to='alice@localhost/sink' type='chat'><body>${body}</body></message>`);
        await sender.iq("<ping xmlns='urn:xmpp:ping'/>", "type='get'");
      }
      await eventually(async () => (await count()) === 1);
      expect(await count()).toBe(1);
      await eventually(() => serverSocketStates(s.port, sink.localPort).length === 0);
      expect(serverSocketStates(s.port, sink.localPort)).toEqual([]);
      expect(sender.socketClosed).toBe(false);
      sink.destroy();
      await sender.close();
    } finally {
      await s.stop();
    }
  }

  it('is closed for send-queue-overflow when too much waits for it, and reset', () => starve({ maxSendQueue: '256KiB', writeStallTimeout: '1h' }, 'send-queue-overflow'));

  it('is closed for write-stall when the queue stops moving, and reset', () => starve({ maxSendQueue: '512MiB', writeStallTimeout: '500ms' }, 'write-stall'));
});

describe('keepalives and limits', () => {
  it('advertises idle-seconds in the stream features (XEP-0478)', async () => {
    const c = await TestClient.connect(srv.port);
    const features = await c.open();
    expect(features.getChild('limits', 'urn:xmpp:stream-limits:0')?.getChildText('idle-seconds')).toBe('0');
    await c.close();
  });

  it('sends whitespace keepalives when nothing has been sent for keepaliveAfter', async () => {
    const ka = await startServer({ watchdog: { interval: '100ms', c2s: { keepaliveAfter: '200ms', probe: 'none' } } } as never);
    try {
      await ka.addUser('alice');
      const c = await TestClient.login(ka.port, 'alice');
      await c.until(() => c.whitespaceBytes >= 3, 5000);
      expect(c.socketClosed).toBe(false);
      await c.close();
    } finally {
      await ka.stop();
    }
  });

  it('applies a reloaded policy to sessions that are already live', async () => {
    const calm = await startServer({ watchdog: { interval: '100ms', c2s: { probeAfter: '1h' } } } as never);
    try {
      await calm.addUser('alice');
      const c = await TestClient.login(calm.port, 'alice');
      await expect(c.waitFor((el) => el.name === 'iq' && el.getChild('ping') !== undefined, 500)).rejects.toThrow('timed out');
      const next = { ...calm.config, watchdog: { ...calm.config.watchdog, c2s: { ...calm.config.watchdog.c2s, probeAfter: 200, probeTimeout: 200 } } };
      calm.server.reload(next);
      await c.waitFor((el) => el.name === 'iq' && el.getChild('ping') !== undefined);
      expect((await c.streamError()).condition).toBe('connection-timeout');
      await c.closed;
    } finally {
      await calm.stop();
    }
  });
});
