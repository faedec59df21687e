import { IpLimits, SessionShaper, countingStanzas, type RateLimit } from '../../src/c2s/rate-limit';
import { loadConfig } from '../../src/config/load';
import type { Config, ConfigOverrides } from '../../src/config/types';
import { XmlStreamFraming } from '../../src/framing/xml-stream';
import { Connection, type ConnectionEvents } from '../../src/transport/connection';
import { TokenBucket } from '../../src/transport/token-bucket';
import { MemoryTransport } from '../helpers/memory-transport';
import type { TransportEvents } from '../../src/transport/transport';
import { Element } from 'ltx';

/* Rate limits on a fake clock: how long a client waits, and who is refused at accept. */

const configWith = (overrides: ConfigOverrides): Config => loadConfig({ overrides, env: {} });

describe('TokenBucket', () => {
  it('gives its burst at once, then refills at its rate, never above the burst', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.tryTake(0), b.tryTake(0), b.tryTake(0), b.tryTake(0)]).toEqual([true, true, true, false]);
    expect(b.tryTake(99)).toBe(false); // 0.99 of a token
    expect(b.tryTake(100)).toBe(true);
    // A long quiet spell refills to the burst, not beyond.
    const taken = [1, 2, 3, 4].map(() => b.tryTake(60_000));
    expect(taken).toEqual([true, true, true, false]);
  });

  it('goes into debt rather than refusing, and says how long until the debt is paid', () => {
    const b = new TokenBucket(100, 200, 0);
    expect(b.take(200, 0)).toBe(0);
    expect(b.take(50, 0)).toBe(500); // 50 tokens at 100/s
    expect(b.waitMs(250)).toBe(250);
    expect(b.waitMs(500)).toBe(0);
  });

  it('does not drain when the clock steps back', () => {
    const b = new TokenBucket(1, 1, 1000);
    expect(b.waitMs(0)).toBe(0);
    expect(b.tryTake(0)).toBe(true);
  });
});

describe('SessionShaper', () => {
  const rate = (r: Partial<Config['c2s']['rate']>) => ({ stanzasPerSecond: 10, stanzaBurst: 5, bytesPerSecond: 1000, byteBurst: 1000, ...r });

  it('waits for whichever limit is the further over, and counts each episode once per limit', () => {
    const throttled: RateLimit[] = [];
    const s = new SessionShaper(rate({}), 0, (l) => throttled.push(l));
    for (let i = 0; i < 7; i++) s.stanza();
    expect(s.charge(100, 0)).toBe(200); // 2 stanzas over at 10/s; bytes within
    expect(s.charge(1400, 0)).toBe(500); // now 500 bytes over at 1000/s
    s.stanza();
    s.charge(0, 100); // still in stanza debt: the same episode
    expect(throttled).toEqual(['stanzas', 'bytes']);
    expect(s.wait(600)).toBe(0);
    for (let i = 0; i < 6; i++) s.stanza();
    expect(s.charge(0, 10_000)).toBeGreaterThan(0);
    expect(throttled).toEqual(['stanzas', 'bytes', 'stanzas']);
  });

  it('is off for a limit set to 0, and for loopback unless exemptLoopback is false', () => {
    const off = new SessionShaper(rate({ stanzasPerSecond: 0, bytesPerSecond: 0 }), 0, () => undefined);
    for (let i = 0; i < 1000; i++) off.stanza();
    expect(off.charge(1 << 30, 0)).toBe(0);
    expect(SessionShaper.for(configWith({}), '127.0.0.1', 0, () => undefined)).toBeUndefined();
    expect(SessionShaper.for(configWith({}), '::ffff:127.0.0.1', 0, () => undefined)).toBeUndefined();
    expect(SessionShaper.for(configWith({}), '198.51.100.1', 0, () => undefined)).toBeDefined();
    expect(SessionShaper.for(configWith({ limits: { exemptLoopback: false } }), '::1', 0, () => undefined)).toBeDefined();
  });
});

describe('Connection with a shaper', () => {
  const ignore: ConnectionEvents = { onStreamStart: () => undefined, onStanza: () => undefined, onStreamEnd: () => undefined, onTransportEnd: () => undefined, onError: () => undefined, onReceived: () => undefined, onClosed: () => undefined };

  /** A transport whose send queue the test sets, to hold back-pressure on or off. */
  class Backlogged extends MemoryTransport {
    pending = 0;
    private listener: TransportEvents | undefined;
    override get pendingBytes(): number {
      return this.pending;
    }
    override listen(events: TransportEvents): void {
      this.listener = events;
      super.listen(events);
    }
    /** The peer took everything. */
    drain(): void {
      this.pending = 0;
      this.listener?.onDrain();
    }
  }

  beforeEach(() => jest.useFakeTimers({ now: 0 }));
  afterEach(() => jest.useRealTimers());

  function setup() {
    const t = new Backlogged();
    const stanzas: string[] = [];
    const received: number[] = [];
    const handler = { ...ignore, onStanza: (el: { attrs: { id?: string } }) => void stanzas.push(el.attrs.id ?? ''), onReceived: (now: number) => void received.push(now) };
    const shaper = new SessionShaper({ stanzasPerSecond: 10, stanzaBurst: 2, bytesPerSecond: 0, byteBurst: 0 }, Date.now(), () => undefined);
    const conn = new Connection(t, new XmlStreamFraming(countingStanzas(handler, shaper), 1 << 16), handler, { closeTimeout: 1000, tcpKeepAlive: 0, pauseReadingAt: 100, shaper }, { xmlns: 'jabber:client' });
    t.push("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    return { t, conn, stanzas, received };
  }
  const pings = (n: number) => Array.from({ length: n }, (_, i) => `<iq type='get' id='p${i}'/>`).join('');

  it('parses everything it read, then stops reading until the client is back under its rate', () => {
    const { t, conn, stanzas } = setup();
    t.push(pings(5)); // burst 2: 3 over at 10/s
    expect(stanzas).toHaveLength(5); // nothing dropped
    expect(conn.throttled).toBe(true);
    expect(t.readingPaused).toBe(true);
    jest.advanceTimersByTime(299);
    expect(t.readingPaused).toBe(true);
    jest.advanceTimersByTime(1);
    expect(t.readingPaused).toBe(false);
    expect(conn.throttled).toBe(false);
  });

  it('composes with back-pressure: reading resumes only once neither holds', () => {
    const { t, conn } = setup();
    t.push(pings(5));
    t.pending = 1000;
    conn.send(new Element('message'));
    expect(conn.paused).toBe(true);
    jest.advanceTimersByTime(300); // the rate pause ends, the peer still has not read
    expect(conn.throttled).toBe(false);
    expect(t.readingPaused).toBe(true);
    t.drain();
    expect(t.readingPaused).toBe(false);

    // The other order: drained first, still over the rate.
    t.push(pings(5));
    t.pending = 1000;
    conn.send(new Element('message'));
    t.drain();
    expect(conn.paused).toBe(false);
    expect(t.readingPaused).toBe(true);
    jest.advanceTimersByTime(1000);
    expect(t.readingPaused).toBe(false);
  });

  it('holds what arrives while paused and parses it in order once under the rate, counting that as proof of life', () => {
    const { t, stanzas, received } = setup();
    t.push(pings(3)); // 1 over: 100 ms
    t.push(`<iq type='get' id='late'/>`);
    expect(stanzas).toEqual(['p0', 'p1', 'p2']);
    jest.advanceTimersByTime(100);
    expect(stanzas).toEqual(['p0', 'p1', 'p2', 'late']);
    expect(received.at(-1)).toBe(100);
  });

  it('charges bytes that arrive while paused and waits on for them', () => {
    const { t } = setup();
    t.push(pings(3)); // 1 over: 100 ms
    t.push(pings(2)); // already in flight when we paused: 3 over now
    jest.advanceTimersByTime(100);
    expect(t.readingPaused).toBe(true);
    jest.advanceTimersByTime(200);
    expect(t.readingPaused).toBe(false);
  });
});

describe('IpLimits', () => {
  function setup(limits: ConfigOverrides['limits']) {
    const config = configWith({ limits: { exemptLoopback: false, ...limits } });
    return new IpLimits(() => config);
  }

  it('refuses connections past the per-address rate, per address, and admits again as the bucket refills', () => {
    const ip = setup({ connectionsPerIp: 2, connectionsPerIpBurst: 3, unauthenticatedPerIp: 0 });
    const tries = (addr: string, now: number, n: number) => Array.from({ length: n }, () => ip.admit(addr, now) ?? 'ok');
    expect(tries('198.51.100.1', 0, 4)).toEqual(['ok', 'ok', 'ok', 'connections-per-ip']);
    expect(tries('198.51.100.2', 0, 1)).toEqual(['ok']);
    expect(tries('::ffff:198.51.100.1', 499, 1)).toEqual(['connections-per-ip']); // the same address over IPv6
    expect(tries('198.51.100.1', 500, 2)).toEqual(['ok', 'connections-per-ip']);
  });

  it('refuses a new connection from an address holding unauthenticatedPerIp unbound ones, until one binds or closes', () => {
    const ip = setup({ connectionsPerIp: 0, unauthenticatedPerIp: 2 });
    const a = {};
    const b = {};
    for (const conn of [a, b]) {
      expect(ip.admit('198.51.100.1', 0)).toBeUndefined();
      ip.opened(conn, '198.51.100.1');
    }
    expect(ip.admit('198.51.100.1', 0)).toBe('unauthenticated-per-ip');
    expect(ip.admit('198.51.100.2', 0)).toBeUndefined();
    ip.settled(a); // bound
    ip.settled(a); // and later closed: released once only
    expect(ip.admit('198.51.100.1', 0)).toBeUndefined();
    ip.opened({}, '198.51.100.1');
    expect(ip.admit('198.51.100.1', 0)).toBe('unauthenticated-per-ip');
  });

  it('exempts loopback by default', () => {
    const config = configWith({ limits: { connectionsPerIp: 1, connectionsPerIpBurst: 1, unauthenticatedPerIp: 1 } });
    const ip = new IpLimits(() => config);
    for (let i = 0; i < 5; i++) {
      expect(ip.admit('127.0.0.1', 0)).toBeUndefined();
      ip.opened({}, '127.0.0.1');
    }
  });
});
