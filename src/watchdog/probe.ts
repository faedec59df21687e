import { Element } from 'ltx';
import type { Session } from '../sessions/session.js';
import { NS } from '../xmpp/ns.js';

let counter = 0;

/** XEP-0199 ping (any reply, even an error, proves life) or a single space. */
export function sendProbe(session: Session, domain: string, now: number): void {
  session.probeSentAt = now;
  if (session.policy.probe === 'xmpp-ping') {
    session.probeId = `vigil-ping-${(++counter).toString(36)}`;
    const iq = new Element('iq', { type: 'get', id: session.probeId, from: domain, to: session.fullJid });
    iq.c('ping', { xmlns: NS.PING });
    session.send(iq);
  } else {
    session.sendRaw(' ');
  }
}
