import type { WatchdogPolicy } from '../../src/config/types';
import { decide, type WatchState } from '../../src/watchdog/decide';

const s = 1000;
const policy: WatchdogPolicy = {
  probeAfter: 120 * s, probe: 'xmpp-ping', probeTimeout: 30 * s, maxIdle: 0, keepaliveAfter: 0,
  unauthenticatedTimeout: 30 * s, writeStallTimeout: 30 * s, maxSendQueue: 1024 * 1024, closeTimeout: 5 * s, tcpKeepAlive: 60 * s,
};
const interval = 1 * s;

/** A session without stream management unless told otherwise: any proof of life answers a probe. */
function state(over: Partial<WatchState> = {}): WatchState {
  const base = { bound: true, acceptedAt: 0, lastAliveAt: 0, lastSentAt: 0, pendingBytes: 0, sendAllowance: 0, lastWriteProgressAt: 0, probeSentAt: 0 };
  const plain = { acksProbes: false, ackDueAt: 0, hibernatedUntil: 0, presenceGraceUntil: 0, lastAnswerAt: over.lastAliveAt ?? 0 };
  return { ...base, ...plain, ...over };
}

/**
 * A fake session driven tick by tick the way the Watchdog drives a real one: probes are recorded when
 * decided, an answering peer "replies" some ms after each probe, and the run stops at the first close.
 */
function simulate(p: WatchdogPolicy, opts: { answersAfter?: number; until: number; lastAliveAt?: number }): { closedAt: number; reason: string; probes: number } {
  const st = { ...state({ lastAliveAt: opts.lastAliveAt ?? 0 }) };
  let probes = 0;
  for (let now = 0; now <= opts.until; now += interval) {
    if (opts.answersAfter !== undefined && st.probeSentAt > 0 && now >= st.probeSentAt + opts.answersAfter) st.lastAliveAt = st.lastAnswerAt = st.probeSentAt + opts.answersAfter;
    if (st.probeSentAt > 0 && st.lastAliveAt >= st.probeSentAt) st.probeSentAt = 0;
    const action = decide(now, st, p);
    if (action === 'probe') {
      st.probeSentAt = now;
      probes++;
    } else if (action !== 'none' && action !== 'keepalive') return { closedAt: now, reason: action, probes };
  }
  return { closedAt: -1, reason: 'none', probes };
}

describe('decide()', () => {
  it('does nothing for a peer heard from recently', () => {
    expect(decide(10 * s, state({ lastAliveAt: 5 * s }), policy)).toBe('none');
  });

  it('probes once nothing has been received for probeAfter', () => {
    expect(decide(119 * s, state(), policy)).toBe('none');
    expect(decide(120 * s, state(), policy)).toBe('probe');
  });

  it('does not probe again while a probe is outstanding', () => {
    expect(decide(130 * s, state({ probeSentAt: 120 * s }), policy)).toBe('none');
  });

  it('closes with probe-timeout when nothing arrives within probeTimeout of the probe', () => {
    expect(decide(149 * s, state({ probeSentAt: 120 * s }), policy)).toBe('none');
    expect(decide(150 * s, state({ probeSentAt: 120 * s }), policy)).toBe('probe-timeout');
  });

  it('treats any byte received after the probe as an answer', () => {
    expect(decide(200 * s, state({ probeSentAt: 120 * s, lastAliveAt: 121 * s }), policy)).toBe('none');
  });

  it('treats an answer in the same millisecond as the probe as an answer', () => {
    expect(decide(150 * s, state({ probeSentAt: 120 * s, lastAliveAt: 120 * s }), policy)).toBe('none');
  });

  it('counts only received bytes: our own writes never keep a session alive', () => {
    expect(decide(150 * s, state({ probeSentAt: 120 * s, lastSentAt: 149 * s }), policy)).toBe('probe-timeout');
  });

  it('closes a silent dead peer no later than probeAfter + probeTimeout + interval', () => {
    for (const lastAliveAt of [0, 250, 999, 1000, 1500]) {
      const run = simulate(policy, { until: 400 * s, lastAliveAt });
      expect(run.reason).toBe('probe-timeout');
      expect(run.closedAt - lastAliveAt).toBeLessThanOrEqual(policy.probeAfter + policy.probeTimeout + interval);
      expect(run.probes).toBe(1);
    }
  });

  it('never closes a peer that answers every probe, however long it runs', () => {
    for (const answersAfter of [0, 5, 1 * s, 29 * s]) {
      const run = simulate(policy, { answersAfter, until: 24 * 3600 * s });
      expect(run.reason).toBe('none');
      expect(run.probes).toBeGreaterThan(100);
    }
  });

  it('closes with idle after maxIdle whatever the probes did, within maxIdle + interval', () => {
    const p = { ...policy, maxIdle: 600 * s };
    expect(decide(599 * s, state({ lastAliveAt: 0 }), { ...p, probe: 'none' })).toBe('none');
    expect(decide(600 * s, state({ lastAliveAt: 0 }), { ...p, probe: 'none' })).toBe('idle');
    const run = simulate({ ...p, probe: 'whitespace' }, { until: 2000 * s });
    expect(run).toMatchObject({ reason: 'idle', closedAt: 600 * s });
  });

  it('never times out a whitespace probe on its own (it asks for no answer)', () => {
    const p: WatchdogPolicy = { ...policy, probe: 'whitespace' };
    expect(decide(120 * s, state(), p)).toBe('probe');
    expect(decide(10_000 * s, state({ probeSentAt: 120 * s }), p)).toBe('none');
  });

  it('sends no probe when the policy says none', () => {
    expect(decide(10_000 * s, state(), { ...policy, probe: 'none' })).toBe('none');
  });

  it('sends a keepalive when nothing has been sent for keepaliveAfter', () => {
    const p = { ...policy, keepaliveAfter: 50 * s };
    expect(decide(49 * s, state({ lastAliveAt: 49 * s, lastSentAt: 0 }), p)).toBe('none');
    expect(decide(50 * s, state({ lastAliveAt: 49 * s, lastSentAt: 0 }), p)).toBe('keepalive');
  });

  it('closes an unauthenticated stream after unauthenticatedTimeout, even if it keeps talking', () => {
    expect(decide(29 * s, state({ bound: false, lastAliveAt: 29 * s }), policy)).toBe('none');
    expect(decide(30 * s, state({ bound: false, lastAliveAt: 30 * s }), policy)).toBe('unauthenticated');
  });

  it('does not probe a stream that has not bound', () => {
    expect(decide(29 * s, state({ bound: false, lastAliveAt: -1000 * s }), policy)).toBe('none');
  });

  it('closes with write-stall when bytes wait and the peer took none for writeStallTimeout', () => {
    const st = state({ lastAliveAt: 100 * s, pendingBytes: 10, lastWriteProgressAt: 70 * s });
    expect(decide(99 * s, st, policy)).toBe('none');
    expect(decide(100 * s, st, policy)).toBe('write-stall');
    expect(decide(100 * s, { ...st, pendingBytes: 0 }, policy)).toBe('none');
  });

  it('closes with send-queue-overflow above maxSendQueue, at once', () => {
    expect(decide(1, state({ pendingBytes: 1024 * 1024 }), policy)).toBe('none');
    expect(decide(1, state({ pendingBytes: 1024 * 1024 + 1, lastWriteProgressAt: 1 }), policy)).toBe('send-queue-overflow');
  });

  it('allows what is left of one stanza larger than the whole queue on top of maxSendQueue', () => {
    const big = 3 * 1024 * 1024;
    expect(decide(1, state({ pendingBytes: big, sendAllowance: big, lastWriteProgressAt: 1 }), policy)).toBe('none');
    expect(decide(1, state({ pendingBytes: big + 1024 * 1024 + 1, sendAllowance: big, lastWriteProgressAt: 1 }), policy)).toBe('send-queue-overflow');
  });

  it('picks the first reason in the documented order when several apply', () => {
    const everything = state({ bound: false, pendingBytes: 2 * 1024 * 1024, lastWriteProgressAt: 0, probeSentAt: 1, acceptedAt: 0 });
    const now = 10_000 * s;
    const p = { ...policy, maxIdle: 1 * s };
    expect(decide(now, everything, p)).toBe('send-queue-overflow');
    expect(decide(now, { ...everything, pendingBytes: 10 }, p)).toBe('write-stall');
    expect(decide(now, { ...everything, pendingBytes: 0 }, p)).toBe('unauthenticated');
    expect(decide(now, { ...everything, pendingBytes: 0, bound: true }, p)).toBe('probe-timeout');
    expect(decide(now, { ...everything, pendingBytes: 0, bound: true, probeSentAt: 0 }, p)).toBe('idle');
  });

  it('applies a changed policy at the next decision (reload)', () => {
    const st = state({ lastAliveAt: 0 });
    expect(decide(60 * s, st, policy)).toBe('none');
    expect(decide(60 * s, st, { ...policy, probeAfter: 30 * s })).toBe('probe');
    expect(decide(60 * s, state({ probeSentAt: 31 * s }), { ...policy, probeAfter: 30 * s, probeTimeout: 20 * s })).toBe('probe-timeout');
  });
});

describe('decide() with stream management', () => {
  const sm = (over: Partial<WatchState> = {}) => state({ acksProbes: true, ...over });

  it('probes with an ack request that only an ack answers, and times it out whatever probe the policy names', () => {
    // Bytes arrived after the <r/> (a message from the client), but no <a/>: still unanswered.
    const st = sm({ probeSentAt: 100 * s, lastAliveAt: 110 * s, lastAnswerAt: 90 * s });
    expect(decide(129 * s, st, policy)).toBe('none');
    expect(decide(130 * s, st, policy)).toBe('probe-timeout');
    expect(decide(130 * s, st, { ...policy, probe: 'whitespace' })).toBe('probe-timeout');
    expect(decide(130 * s, { ...st, lastAnswerAt: 101 * s }, policy)).toBe('none');
  });

  it('probes after probeAfter without an ack, though other traffic (pongs, stanzas) keeps arriving', () => {
    expect(decide(119 * s, sm({ lastAliveAt: 119 * s, lastAnswerAt: 0 }), policy)).toBe('none');
    expect(decide(120 * s, sm({ lastAliveAt: 119 * s, lastAnswerAt: 0 }), policy)).toBe('probe');
    // Without stream management the same traffic is the answer: nothing is due.
    expect(decide(120 * s, state({ lastAliveAt: 119 * s }), policy)).toBe('none');
  });

  it('asks for an ack once the oldest unacked stanza has waited ackAfter, not while one request is out', () => {
    expect(decide(29 * s, sm({ lastAliveAt: 29 * s, lastAnswerAt: 0, ackDueAt: 30 * s }), policy)).toBe('none');
    expect(decide(30 * s, sm({ lastAliveAt: 29 * s, lastAnswerAt: 0, ackDueAt: 30 * s }), policy)).toBe('probe');
    expect(decide(31 * s, sm({ lastAliveAt: 29 * s, lastAnswerAt: 0, ackDueAt: 30 * s, probeSentAt: 30 * s }), policy)).toBe('none');
  });

  it('watches a hibernated session only for its resume window and its presence grace', () => {
    const h = sm({ hibernatedUntil: 400 * s, presenceGraceUntil: 160 * s, lastAliveAt: 0, probeSentAt: 1, pendingBytes: 0 });
    // Long silent, a probe long out: none of it matters without a connection.
    expect(decide(159 * s, h, policy)).toBe('none');
    expect(decide(160 * s, h, policy)).toBe('presence-grace');
    expect(decide(161 * s, { ...h, presenceGraceUntil: 0 }, policy)).toBe('none');
    expect(decide(400 * s, h, policy)).toBe('resume-timeout');
    expect(decide(400 * s, { ...h, presenceGraceUntil: 0 }, policy)).toBe('resume-timeout');
  });

  it('ends a hibernated session resumeTimeout after the loss, stepping the watchdog on a fake clock', () => {
    const lostAt = 1234;
    const st = { ...sm({ hibernatedUntil: lostAt + 300 * s, presenceGraceUntil: lostAt + 60 * s }) };
    const events: [string, number][] = [];
    for (let now = lostAt; now <= lostAt + 400 * s; now += interval) {
      const action = decide(now, st, policy);
      if (action === 'presence-grace') {
        st.presenceGraceUntil = 0;
        events.push([action, now - lostAt]);
      } else if (action !== 'none') {
        events.push([action, now - lostAt]);
        break;
      }
    }
    expect(events).toEqual([['presence-grace', 60 * s], ['resume-timeout', 300 * s]]);
  });
});
