import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { eventsNamed, killDriver, killDrivers, PYTHON, runDriver, succeeded, type PyEvent, type PyRun } from '../helpers/py-driver';
import { metricValue, startServer, type TestServer } from '../helpers/server';

/**
 * Interop with a client nobody here wrote: slixmpp from Debian (python3-slixmpp), driven by
 * slix_client.py, against a real Vigil that requires STARTTLS as production does.
 * VIGIL_SLIX_DEBUG=1 prints every client's events and slixmpp stream log when it exits.
 */

const SCRIPT = join(__dirname, 'slix_client.py');
const INSTALL = 'the interop tests need slixmpp for /usr/bin/python3: apt-get install python3-slixmpp';

jest.setTimeout(40000);

type Action = Record<string, unknown> & { do: string };

function slix(port: number, jid: string, password: string, actions: Action[], extra: string[] = []): PyRun {
  if (process.env.VIGIL_SLIX_DEBUG) extra = [...extra, '--verbose'];
  return runDriver(SCRIPT, ['--jid', jid, '--password', password, '--port', String(port), '--host', '127.0.0.1', ...extra, JSON.stringify(actions)], `slixmpp ${jid}`, !!process.env.VIGIL_SLIX_DEBUG);
}

const of = eventsNamed;

/** The other's item in the last full roster the client fetched (the 'roster' event of get_roster). */
function lastRosterItem(events: PyEvent[], jid: string): Record<string, unknown> | undefined {
  const rosters = of(events, 'roster');
  const items = (rosters[rosters.length - 1]?.items ?? []) as Record<string, unknown>[];
  return items.find((i) => i.jid === jid);
}

const presencesFrom = (events: PyEvent[], jid: string) => of(events, 'presence').filter((p) => p.from === jid);

let srv: TestServer;

beforeAll(async () => {
  const probe = spawnSync(PYTHON, ['-c', 'import slixmpp; print(slixmpp.__version__)'], { encoding: 'utf8', timeout: 15000 });
  if (probe.error || probe.status !== 0) {
    throw new Error(`${INSTALL}\n(${probe.error?.message ?? probe.stderr.trim()})`);
  }
  srv = await startServer({ c2s: { allowPlainWithoutTls: false } }, { tls: true });
  await srv.addUser('alice', 'wonderland');
  await srv.addUser('bob', 'builder');
  await srv.addUser('carol', 'christmas');
  await srv.addUser('dave', 'diver');
  await srv.addUser('erin', 'earnest');
  await srv.addUser('frank', 'furter');
  await srv.addUser('grace', 'hopper');
  await srv.addUser('heidi', 'alps');
  await srv.addUser('ivan', 'terrible');
});

afterEach(() => killDrivers());

afterAll(async () => {
  await killDrivers();
  await srv?.stop();
});

describe('interop with slixmpp (python3-slixmpp)', () => {
  it('logs in over STARTTLS with SCRAM and gets a bound JID', async () => {
    const events = await succeeded(slix(srv.port, 'alice@localhost', 'wonderland', [{ do: 'disconnect' }]));
    const [start] = of(events, 'session_start');
    expect(start).toBeDefined();
    expect(start.tls).toBe(true);
    expect(start.mechanism).toMatch(/^SCRAM-SHA-(256|1)$/);
    // The stream log and slixmpp's own state agree, and SCRAM was the only thing tried.
    expect(start.plugin_mechanism).toBe(start.mechanism);
    expect(start.mechanisms_sent).toEqual([start.mechanism]);
    expect(start.jid).toMatch(/^alice@localhost\/[^/]+$/);
    expect(of(events, 'ready')).toHaveLength(1);
    expect(of(events, 'disconnected')).toHaveLength(1);
    expect(of(events, 'done')).toHaveLength(1);
  });

  it('exchanges chat messages both ways between two slixmpp users', async () => {
    const bob = slix(srv.port, 'bob@localhost/bench', 'builder', [
      { do: 'wait_messages', count: 1 },
      { do: 'send', to: 'alice@localhost', body: 'hello alice, from bob' },
      { do: 'sleep', seconds: 0.5 },
      { do: 'disconnect' },
    ]);
    await bob.waitFor((e) => e.event === 'ready', 'bob ready');
    const alice = slix(srv.port, 'alice@localhost/desk', 'wonderland', [
      { do: 'send', to: 'bob@localhost', body: 'hello bob, from alice' },
      { do: 'wait_messages', count: 1 },
      { do: 'disconnect' },
    ]);
    const [aliceEvents, bobEvents] = await Promise.all([succeeded(alice), succeeded(bob)]);

    const toBob = of(bobEvents, 'message');
    expect(toBob).toHaveLength(1);
    expect(toBob[0]).toMatchObject({ from: 'alice@localhost/desk', body: 'hello bob, from alice', type: 'chat', delay: false });
    const toAlice = of(aliceEvents, 'message');
    expect(toAlice).toHaveLength(1);
    expect(toAlice[0]).toMatchObject({ from: 'bob@localhost/bench', body: 'hello alice, from bob', type: 'chat', delay: false });
    expect(of(aliceEvents, 'session_start')[0].jid).toBe('alice@localhost/desk');
    expect(of(bobEvents, 'session_start')[0].jid).toBe('bob@localhost/bench');
  });

  it('delivers messages sent while the recipient was offline, in order, with delay stamps', async () => {
    const alice = slix(srv.port, 'alice@localhost/desk', 'wonderland', [
      { do: 'send', to: 'carol@localhost', body: 'first, while you were away' },
      { do: 'send', to: 'carol@localhost', body: 'second, while you were away' },
      { do: 'disconnect' },
    ]);
    const aliceEvents = await succeeded(alice);
    expect(of(aliceEvents, 'message_error')).toEqual([]);

    const before = Date.now();
    const carol = slix(srv.port, 'carol@localhost/home', 'christmas', [{ do: 'wait_messages', count: 2 }, { do: 'disconnect' }]);
    const messages = of(await succeeded(carol), 'message');
    expect(messages.map((m) => m.body)).toEqual(['first, while you were away', 'second, while you were away']);
    for (const m of messages) {
      expect(m.from).toBe('alice@localhost/desk');
      expect(m.delay).toBe(true);
      const stamp = Date.parse(String(m.stamp));
      expect(Number.isNaN(stamp)).toBe(false);
      expect(stamp).toBeLessThanOrEqual(before);
    }
    expect(Date.parse(String(messages[0].stamp))).toBeLessThanOrEqual(Date.parse(String(messages[1].stamp)));
  });

  it('reports failed_auth on a wrong password and exits non-zero', async () => {
    const run = slix(srv.port, 'alice@localhost', 'not-the-password', [{ do: 'disconnect' }]);
    const { code, events } = await run.exited;
    expect(code).not.toBe(0);
    expect(code).toBe(2);
    const failures = of(events, 'failed_auth');
    expect(failures.length).toBeGreaterThanOrEqual(1);
    expect(failures[0].mechanism).toMatch(/^SCRAM-SHA-(256|1)$/);
    expect(failures[0].condition).toBe('not-authorized');
    expect(of(events, 'session_start')).toEqual([]);
  });

  it('tells a peer holding directed presence that a SIGKILLed slixmpp client is unavailable', async () => {
    // No roster needed: RFC 6121 §4.6 directed presence. Dave dies with no closing stanza; the server must
    // notice the dead socket and send Erin unavailable presence for him.
    const erin = slix(srv.port, 'erin@localhost/watch', 'earnest', [
      { do: 'wait_presence', from: 'dave@localhost/boat', type: 'available' },
      { do: 'presence', to: 'dave@localhost/boat' },
      { do: 'wait_presence', from: 'dave@localhost/boat', type: 'unavailable' },
      { do: 'disconnect' },
    ]);
    await erin.waitFor((e) => e.event === 'ready', 'erin ready');
    const dave = slix(srv.port, 'dave@localhost/boat', 'diver', [
      { do: 'presence', to: 'erin@localhost/watch' },
      { do: 'wait_presence', from: 'erin@localhost/watch', type: 'available' },
      { do: 'die' },
    ]);
    const daveExit = await dave.exited;
    expect(daveExit.signal).toBe('SIGKILL');
    const [dying] = of(daveExit.events, 'dying');
    expect(dying).toBeDefined();
    expect(of(daveExit.events, 'disconnected')).toEqual([]);

    const erinEvents = await succeeded(erin);
    const fromDave = of(erinEvents, 'presence').filter((p) => p.from === 'dave@localhost/boat');
    expect(fromDave.map((p) => p.type)).toEqual(['available', 'unavailable']);
    // The socket closed with the process: no watchdog timeout should be needed to notice.
    expect(Number(fromDave[1].t) - Number(dying.t)).toBeLessThan(5);
  });

  it('two slixmpp users add each other, end with subscription both, see each other online and chat', async () => {
    // Both send a subscription request at once (grace while frank is still offline: hers waits for him), and
    // slixmpp approves each incoming one and asks back (auto_authorize, auto_subscribe). The server's roster
    // is the judge: 'both' on each side, from the pushes and from a fresh roster fetch.
    const grace = slix(srv.port, 'grace@localhost/desk', 'hopper', [
      { do: 'add_contact', jid: 'frank@localhost', until: ['both'], timeout: 15 },
      { do: 'wait_presence', from: 'frank@localhost/laptop', type: 'available' },
      { do: 'send', to: 'frank@localhost', body: 'hi frank, grace here' },
      { do: 'wait_messages', count: 1 },
      { do: 'get_roster', full: true },
      { do: 'disconnect' },
    ]);
    await grace.waitFor((e) => e.event === 'ready', 'grace ready');
    const frank = slix(srv.port, 'frank@localhost/laptop', 'furter', [
      { do: 'add_contact', jid: 'grace@localhost', until: ['both'], timeout: 15 },
      { do: 'wait_presence', from: 'grace@localhost/desk', type: 'available' },
      { do: 'send', to: 'grace@localhost', body: 'hi grace, frank here' },
      { do: 'wait_messages', count: 1 },
      { do: 'get_roster', full: true },
      { do: 'disconnect' },
    ]);
    const [graceEvents, frankEvents] = await Promise.all([succeeded(grace), succeeded(frank)]);

    for (const [events, other] of [
      [graceEvents, 'frank@localhost'],
      [frankEvents, 'grace@localhost'],
    ] as const) {
      expect(of(events, 'roster_set_failed')).toEqual([]);
      expect(of(events, 'subscribed')).toEqual([expect.objectContaining({ jid: other, subscription: 'both' })]);
      expect(lastRosterItem(events, other)).toEqual({ jid: other, subscription: 'both', ask: null });
      expect(of(events, 'message_error')).toEqual([]);
    }
    expect(presencesFrom(graceEvents, 'frank@localhost/laptop').map((p) => p.type)).toContain('available');
    expect(presencesFrom(frankEvents, 'grace@localhost/desk').map((p) => p.type)).toContain('available');
    expect(of(graceEvents, 'message')).toEqual([expect.objectContaining({ from: 'frank@localhost/laptop', body: 'hi grace, frank here', type: 'chat' })]);
    expect(of(frankEvents, 'message')).toEqual([expect.objectContaining({ from: 'grace@localhost/desk', body: 'hi frank, grace here', type: 'chat' })]);
  });

  it('tells a contact that a SIGKILLed slixmpp client is unavailable', async () => {
    // Mutual subscription this time (not directed presence): heidi adds ivan, ivan's slixmpp approves and asks back.
    const heidi = slix(srv.port, 'heidi@localhost/hut', 'alps', [
      { do: 'add_contact', jid: 'ivan@localhost', until: ['both'], timeout: 15 },
      { do: 'wait_presence', from: 'ivan@localhost/raft', type: 'available' },
      { do: 'send', to: 'ivan@localhost', body: 'I see you online' },
      { do: 'wait_presence', from: 'ivan@localhost/raft', type: 'unavailable', timeout: 10 },
      { do: 'disconnect' },
    ]);
    const ivan = slix(srv.port, 'ivan@localhost/raft', 'terrible', [
      { do: 'wait_subscription', jid: 'heidi@localhost', until: ['both'], timeout: 15 },
      { do: 'wait_presence', from: 'heidi@localhost/hut', type: 'available' },
      { do: 'wait_messages', count: 1 },
      { do: 'die' },
    ]);
    const ivanExit = await ivan.exited;
    expect(ivanExit.signal).toBe('SIGKILL');
    const [dying] = of(ivanExit.events, 'dying');
    expect(dying).toBeDefined();
    expect(of(ivanExit.events, 'disconnected')).toEqual([]);

    const heidiEvents = await succeeded(heidi);
    expect(of(heidiEvents, 'subscribed')).toEqual([expect.objectContaining({ jid: 'ivan@localhost', subscription: 'both' })]);
    const types = presencesFrom(heidiEvents, 'ivan@localhost/raft').map((p) => p.type);
    expect(types).toContain('available');
    // One unavailable, last: nothing says he is back.
    expect(types.filter((t) => t === 'unavailable')).toHaveLength(1);
    expect(types[types.length - 1]).toBe('unavailable');
    const gone = presencesFrom(heidiEvents, 'ivan@localhost/raft').find((p) => p.type === 'unavailable')!;
    // The kernel closed the socket with the process: RFC 6121 work is owed within a second, no watchdog needed.
    expect(Number(gone.t) - Number(dying.t)).toBeLessThan(2);
  });

  describe('with a short watchdog', () => {
    let fast: TestServer;

    beforeAll(async () => {
      fast = await startServer({ c2s: { allowPlainWithoutTls: false }, watchdog: { interval: '100ms', c2s: { probeAfter: '1s', probeTimeout: '1s' } } } as never, { tls: true });
      await fast.addUser('judy', 'justice');
      await fast.addUser('mallory', 'malice');
    });

    afterAll(async () => {
      await killDrivers();
      await fast?.stop();
    });

    it('reaps a frozen slixmpp client, tells its contact it is unavailable, and keeps the contact that answers pings', async () => {
      // Mallory's event loop blocks with her socket open: the kernel still takes the server's bytes, but she reads
      // nothing and answers no ping. Judy answers every ping (xep_0199) and stays silent otherwise.
      const judy = slix(fast.port, 'judy@localhost/bench', 'justice', [
        { do: 'add_contact', jid: 'mallory@localhost', until: ['both'], timeout: 15 },
        { do: 'wait_presence', from: 'mallory@localhost/den', type: 'available' },
        { do: 'send', to: 'mallory@localhost', body: 'freeze now' },
        { do: 'wait_presence', from: 'mallory@localhost/den', type: 'unavailable', timeout: 10 },
        // Stay on, silent, long enough to be probed again and again: a live client must not be reaped.
        { do: 'sleep', seconds: 4 },
        { do: 'get_roster', full: true },
        { do: 'disconnect' },
      ]);
      const mallory = slix(fast.port, 'mallory@localhost/den', 'malice', [
        { do: 'wait_subscription', jid: 'judy@localhost', until: ['both'], timeout: 15 },
        { do: 'wait_presence', from: 'judy@localhost/bench', type: 'available' },
        { do: 'wait_messages', count: 1 },
        { do: 'freeze', seconds: 30 },
      ]);
      const frozen = await mallory.waitFor((e) => e.event === 'freezing', 'mallory freezing');

      const judyEvents = await succeeded(judy);
      const types = presencesFrom(judyEvents, 'mallory@localhost/den').map((p) => p.type);
      expect(types.filter((t) => t === 'unavailable')).toHaveLength(1);
      expect(types[types.length - 1]).toBe('unavailable');
      const gone = presencesFrom(judyEvents, 'mallory@localhost/den').find((p) => p.type === 'unavailable')!;
      // Silent for probeAfter, then probeTimeout without an answer, then the next tick: about 2 s, never a ghost.
      const after = Number(gone.t) - Number(frozen.t);
      expect(after).toBeGreaterThan(0);
      expect(after).toBeLessThan(5);

      // Judy was probed while silent and answered: she is still on, and left by her own clean disconnect.
      const pings = of(judyEvents, 'pinged');
      expect(pings.length).toBeGreaterThanOrEqual(2);
      for (const p of pings) expect(p.from).toBe('localhost');
      expect(of(judyEvents, 'stream_error')).toEqual([]);
      expect(of(judyEvents, 'disconnected')).toHaveLength(1);
      expect(of(judyEvents, 'done')).toHaveLength(1);
      expect(lastRosterItem(judyEvents, 'mallory@localhost')).toEqual({ jid: 'mallory@localhost', subscription: 'both', ask: null });

      // Exactly one session was reaped for not answering its probe: mallory's.
      expect(metricValue(await fast.metrics(), 'vigil_sessions_closed_total', { kind: 'c2s', reason: 'probe-timeout' })).toBe(1);
      // Mallory is still frozen (her process alive): it was the watchdog, not her socket closing, that ended her session.
      expect(mallory.proc.exitCode).toBeNull();
      expect(mallory.proc.signalCode).toBeNull();
      killDriver(mallory.proc);
    });
  });
});
