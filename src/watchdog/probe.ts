import type { Router } from '../router/router.js';
import type { Session } from '../sessions/session.js';

let counter = 0;

/**
 * With stream management an ack request, answered only by an ack. Otherwise an XEP-0199 ping, whose reply
 * (a result or an error) proves life wherever it arrives; or the framing's keepalive, which asks for no
 * answer and only makes the transport notice a dead peer; on a WebSocket, a ping frame, whose pong proves life.
 * Returns the probe sent, for the metrics.
 */
export function sendProbe(session: Session, router: Router, now: number): 'sm-ack' | 'xmpp-ping' | 'whitespace' | 'websocket-ping' {
  if (session.sm) {
    session.requestAck(now);
    return 'sm-ack';
  }
  session.probeSentAt = now;
  // A client's full JID, or a peer server's domain: its reply comes back on the peer's own stream to us.
  const to = session.jid?.full ?? (session.kind === 's2sOut' ? session.domain : undefined);
  if (session.policy.probe !== 'xmpp-ping' || to === undefined) {
    // The framing's keepalive: a space on an XML stream, a ping frame (answered by a pong) on a WebSocket.
    session.keepalive();
    return session.kind === 'websocket' ? 'websocket-ping' : 'whitespace';
  }
  const id = `vigil-ping-${(++counter).toString(36)}`;
  const upTo = session.writtenCount;
  if (session.kind === 's2sOut') {
    // A peer server answers on its own stream to us, not on this one: the router matches the reply.
    router.expectReply(id, to, session.policy.probeTimeout).then(
      () => session.answered(upTo, Date.now()),
      () => undefined, // no answer: decide() sees the probe time out
    );
  } else session.expectPing(id, upTo);
  // Straight to the session it probes: routing would only parse the JID it already has.
  session.ping(id, router.domain, to);
  return 'xmpp-ping';
}
