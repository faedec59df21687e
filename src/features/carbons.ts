import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { MessageObserver } from '../router/router.js';
import type { Session } from '../sessions/session.js';
import { iqResult, stanzaError } from '../xmpp/errors.js';
import type { Jid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';

/**
 * XEP-0280 message carbons: every resource of an account that enabled them sees the account's chats, both
 * what its other resources sent and what was delivered to them, so a conversation continues on any device.
 */
export class Carbons implements MessageObserver {
  constructor(private readonly ctx: Context) {}

  sent(message: Element, from: Session): void {
    if (!eligible(message)) return;
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) {
      if (s !== from && s.im.carbons && s.isBound) this.copy('sent', message, s);
    }
  }

  delivered(message: Element, to: Jid, resources: readonly Session[]): void {
    if (!eligible(message)) return;
    for (const s of this.ctx.registry.getByBareJid(to.bare)) {
      if (!resources.includes(s) && s.im.carbons && s.isBound) this.copy('received', message, s);
    }
  }

  private copy(direction: 'sent' | 'received', message: Element, to: Session): void {
    const wrapper = new Element('message', { xmlns: NS.CLIENT, from: to.bareJid, to: to.fullJid, type: message.attrs.type ?? 'normal' });
    wrapper.c(direction, { xmlns: NS.CARBONS }).c('forwarded', { xmlns: NS.FORWARD }).cnode(message);
    to.send(wrapper);
    this.ctx.metrics.carbons.inc({ direction });
  }
}

/**
 * XEP-0280 §6: chat messages, and normal ones with a body; never errors or groupchat, nor a message marked
 * private or no-copy, nor a carbon itself.
 */
function eligible(message: Element): boolean {
  const type = message.attrs.type ?? 'normal';
  if (type !== 'chat' && type !== 'normal') return false;
  // One pass: each message is judged twice (sent and delivered), and a getChild each was a look at every child.
  let body = false;
  for (const child of message.children) {
    if (typeof child === 'string') continue;
    const name = child.getName();
    if (name === 'body') body = true;
    else if ((name === 'private' || name === 'sent' || name === 'received') && child.getNS() === NS.CARBONS) return false;
    else if (name === 'no-copy' && child.getNS() === NS.HINTS) return false;
  }
  return type === 'chat' || body;
}

export function installCarbons(ctx: Context): Carbons {
  const carbons = new Carbons(ctx);
  ctx.router.observeMessages(carbons);
  ctx.router.handleClientIq(NS.CARBONS, (iq, from, payload) => {
    if (iq.attrs.type !== 'set' || (payload.name !== 'enable' && payload.name !== 'disable')) {
      return stanzaError(iq, 'bad-request', 'carbons are turned on with an iq set of <enable/> and off with <disable/>');
    }
    from.im.carbons = payload.name === 'enable';
    return iqResult(iq);
  });
  return carbons;
}
