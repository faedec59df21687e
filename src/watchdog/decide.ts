import type { WatchdogPolicy } from '../config/types.js';

/** What the watchdog reads of a session; all times in ms on one clock. */
export interface WatchState {
  /** Authenticated and bound: probes only make sense then, and the unauthenticated limit stops applying. */
  readonly bound: boolean;
  readonly acceptedAt: number;
  /**
   * The last proof of life: bytes received from the peer, or a reply or ack matched to it. Our own writes
   * never count.
   */
  readonly lastAliveAt: number;
  readonly lastSentAt: number;
  readonly pendingBytes: number;
  /** Bytes of one stanza larger than the whole queue still waiting: allowed on top of maxSendQueue. */
  readonly sendAllowance: number;
  readonly lastWriteProgressAt: number;
  /** When the outstanding probe was sent; 0 when none is. */
  readonly probeSentAt: number;
  /**
   * What answers a probe, as a time: with stream management only an ack (<r/> is the probe), otherwise the
   * same as lastAliveAt.
   */
  readonly lastAnswerAt: number;
  /** Stream management is on: the probe is <r/>, which waits for its ack whatever probe the policy names. */
  readonly acksProbes: boolean;
  /** Stream management: when an ack is due for unacked stanzas that have waited long enough (0: none). */
  readonly ackDueAt: number;
  /** Hibernated (waiting for a resume): when the wait ends (0: not hibernated). */
  readonly hibernatedUntil: number;
  /** Hibernated and still shown available: when contacts should see it gone (0: nothing to hide). */
  readonly presenceGraceUntil: number;
}

export type CloseAction = 'send-queue-overflow' | 'write-stall' | 'unauthenticated' | 'probe-timeout' | 'idle' | 'resume-timeout';
export type Action = 'none' | 'probe' | 'keepalive' | 'presence-grace' | CloseAction;

/**
 * The watchdog's whole judgement, pure so it can be tested on a fake clock. Returns constant strings: the
 * tick calls it for every session every interval and must not allocate.
 *
 * Close reasons are checked in a fixed order, the first that applies wins. A probe counts as answered by any
 * proof of life after it was sent (in the same millisecond counts: a loopback peer answers that fast), or,
 * with stream management, by an ack; a WebSocket ping by its pong. A whitespace probe asks for no answer, so it never times out on its
 * own: it only makes TCP notice a dead peer, and maxIdle bounds the rest. A hibernated session has no
 * connection to watch: only its resume window and its presence grace run.
 */
export function decide(now: number, s: WatchState, p: WatchdogPolicy): Action {
  if (s.hibernatedUntil > 0) {
    if (now >= s.hibernatedUntil) return 'resume-timeout';
    if (s.presenceGraceUntil > 0 && now >= s.presenceGraceUntil) return 'presence-grace';
    return 'none';
  }
  // The allowance is read only for a queue over the limit: the tick must stay cheap for idle sessions.
  if (s.pendingBytes > p.maxSendQueue && s.pendingBytes - s.sendAllowance > p.maxSendQueue) return 'send-queue-overflow';
  if (s.pendingBytes > 0 && p.writeStallTimeout > 0 && now - s.lastWriteProgressAt >= p.writeStallTimeout) return 'write-stall';
  if (!s.bound) {
    if (p.unauthenticatedTimeout > 0 && now - s.acceptedAt >= p.unauthenticatedTimeout) return 'unauthenticated';
    return 'none';
  }
  const silent = now - s.lastAliveAt;
  const probing = s.probeSentAt > 0 && s.lastAnswerAt < s.probeSentAt;
  if (probing && (s.acksProbes || p.probe === 'xmpp-ping' || p.probe === 'websocket-ping') && now - s.probeSentAt >= p.probeTimeout) return 'probe-timeout';
  if (p.maxIdle > 0 && silent >= p.maxIdle) return 'idle';
  // With stream management the probe is due after probeAfter without an ack, whatever else arrives: a
  // WebSocket whose pongs still come while the page behind it takes nothing in is as lost as a silent one.
  if (!probing && p.probe !== 'none' && now - s.lastAnswerAt >= p.probeAfter) return 'probe';
  if (!probing && s.ackDueAt > 0 && now >= s.ackDueAt) return 'probe';
  if (p.keepaliveAfter > 0 && now - s.lastSentAt >= p.keepaliveAfter) return 'keepalive';
  return 'none';
}

/**
 * For a session decide() has just answered 'none' for at `now`: the earliest time it could answer anything
 * else if only time passes and the peer proves life, which only moves deadlines later (lastAliveAt,
 * lastAnswerAt, lastSentAt grow). The tick skips the session until then; `now` means at the next tick.
 *
 * What could bring a verdict sooner calls Session.wake(): a stanza for its ledger or ack queue, a hibernation
 * or a resume, a new policy. A session still negotiating, one with bytes waiting and one with a probe out
 * are looked at every tick (they are few, and a probe's round trip is read at the first tick after it). A
 * write that bypasses the session (a stream feature, an ack) could start a stall at any moment from now on,
 * so the wait never outlasts writeStallTimeout: a stall is still seen, and closed, on time.
 */
export function quietUntil(now: number, s: WatchState, p: WatchdogPolicy): number {
  if (s.hibernatedUntil > 0) return s.presenceGraceUntil > 0 ? Math.min(s.hibernatedUntil, s.presenceGraceUntil) : s.hibernatedUntil;
  if (!s.bound || s.pendingBytes > 0 || s.probeSentAt > 0) return now;
  let at = p.writeStallTimeout > 0 ? now + p.writeStallTimeout : Infinity;
  if (p.maxIdle > 0) at = Math.min(at, s.lastAliveAt + p.maxIdle);
  if (p.probe !== 'none') at = Math.min(at, s.lastAnswerAt + p.probeAfter);
  const ackDueAt = s.ackDueAt;
  if (ackDueAt > 0) at = Math.min(at, ackDueAt);
  if (p.keepaliveAfter > 0) at = Math.min(at, s.lastSentAt + p.keepaliveAfter);
  return at;
}
