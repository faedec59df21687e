import fc from 'fast-check';
import type { WatchdogPolicy } from '../../src/config/types';
import { decide, quietUntil, type WatchState } from '../../src/watchdog/decide';

const s = 1000;
const policy: WatchdogPolicy = {
  probeAfter: 120 * s, probe: 'xmpp-ping', probeTimeout: 30 * s, maxIdle: 0, keepaliveAfter: 0,
  unauthenticatedTimeout: 30 * s, writeStallTimeout: 30 * s, maxSendQueue: 1024 * 1024, closeTimeout: 5 * s, tcpKeepAlive: 60 * s,
};

function state(over: Partial<WatchState> = {}): WatchState {
  return {
    bound: true, acceptedAt: 0, lastAliveAt: 0, lastSentAt: 0, pendingBytes: 0, sendAllowance: 0, lastWriteProgressAt: 0, probeSentAt: 0,
    acksProbes: false, ackDueAt: 0, hibernatedUntil: 0, presenceGraceUntil: 0, lastAnswerAt: over.lastAliveAt ?? 0, ...over,
  };
}

const ms = (max: number) => fc.integer({ min: 0, max });
const duration = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 * s }));
const policies = fc.record({
  probeAfter: fc.integer({ min: 1, max: 300 * s }),
  probe: fc.constantFrom<WatchdogPolicy['probe']>('xmpp-ping', 'whitespace', 'websocket-ping', 'none'),
  probeTimeout: fc.integer({ min: 1, max: 120 * s }),
  maxIdle: duration,
  keepaliveAfter: duration,
  unauthenticatedTimeout: duration,
  writeStallTimeout: duration,
  maxSendQueue: fc.integer({ min: 1, max: 4096 }),
  closeTimeout: fc.constant(5 * s),
  tcpKeepAlive: fc.constant(60 * s),
});
/** Any state a session can be in at `now` = 600 s: times up to then, a queue or none, stream management or not, hibernated or not. */
const NOW = 600 * s;
const states = fc
  .record({
    bound: fc.boolean(),
    acceptedAt: ms(NOW),
    lastAliveAt: ms(NOW),
    lastSentAt: ms(NOW),
    pendingBytes: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 8192 })),
    sendAllowance: ms(8192),
    lastWriteProgressAt: ms(NOW),
    probeSentAt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: NOW })),
    acksProbes: fc.boolean(),
    lastAnswerAt: ms(NOW),
    ackDueAt: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * NOW })),
    hibernatedUntil: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * NOW })),
    presenceGraceUntil: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * NOW })),
  })
  // Without stream management a probe is answered by any proof of life.
  .map((st) => (st.acksProbes ? st : { ...st, lastAnswerAt: st.lastAliveAt }));

describe('quietUntil()', () => {
  it('is never later than the first verdict, while only time passes and the peer proves life', () => {
    fc.assert(
      fc.property(states, policies, fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (st, p, at, heard, wrote) => {
        fc.pre(decide(NOW, st, p) === 'none');
        const quiet = quietUntil(NOW, st, p);
        expect(quiet).toBeGreaterThanOrEqual(NOW);
        if (quiet === NOW) return;
        // Any moment before quiet, with proofs of life and our own writes since NOW at any point up to it.
        const t = NOW + Math.floor((Math.min(quiet, NOW + 1000 * s) - NOW - 1) * at);
        const aliveAt = Math.max(st.lastAliveAt, NOW + Math.floor((t - NOW) * heard));
        const later: WatchState = {
          ...st,
          lastAliveAt: aliveAt,
          lastAnswerAt: st.acksProbes ? st.lastAnswerAt : aliveAt,
          lastSentAt: Math.max(st.lastSentAt, NOW + Math.floor((t - NOW) * wrote)),
        };
        expect(decide(t, st, p)).toBe('none');
        expect(decide(t, later, p)).toBe('none');
        // The last moment before it, too: that is where an off-by-one would show.
        if (quiet !== Infinity) expect(decide(quiet - 1, st, p)).toBe('none');
      }),
      { numRuns: 20000 },
    );
  });

  it('lets the tick pass over an idle client until its probe is due, and no longer than a write could stall', () => {
    expect(quietUntil(10 * s, state({ lastAliveAt: 5 * s }), { ...policy, writeStallTimeout: 0 })).toBe(125 * s);
    expect(quietUntil(10 * s, state({ lastAliveAt: 5 * s }), policy)).toBe(40 * s);
  });

  it('looks at every tick while a session negotiates, bytes wait or a probe awaits its answer', () => {
    expect(quietUntil(10 * s, state({ bound: false }), policy)).toBe(10 * s);
    expect(quietUntil(10 * s, state({ pendingBytes: 10 }), policy)).toBe(10 * s);
    expect(quietUntil(10 * s, state({ probeSentAt: 9 * s }), policy)).toBe(10 * s);
  });

  it('takes the nearest deadline: keepalive, idle, an ack due, a hibernation', () => {
    const p = { ...policy, writeStallTimeout: 0 };
    expect(quietUntil(10 * s, state({ lastSentAt: 8 * s }), { ...p, keepaliveAfter: 25 * s })).toBe(33 * s);
    expect(quietUntil(10 * s, state({ lastAliveAt: 5 * s }), { ...p, maxIdle: 60 * s })).toBe(65 * s);
    expect(quietUntil(10 * s, state({ acksProbes: true, lastAnswerAt: 5 * s, ackDueAt: 40 * s }), p)).toBe(40 * s);
    expect(quietUntil(10 * s, state({ hibernatedUntil: 300 * s, presenceGraceUntil: 60 * s }), p)).toBe(60 * s);
    expect(quietUntil(10 * s, state({ hibernatedUntil: 300 * s }), p)).toBe(300 * s);
  });
});
