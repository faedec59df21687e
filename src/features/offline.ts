import { clone, parse, type Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import { NS } from '../xmpp/ns.js';

/**
 * XEP-0160: messages for an account with no available resource are stored and delivered, oldest first,
 * when the user next sends initial presence, each with an XEP-0203 delay stamp of when it arrived.
 */
export class OfflineMessages {
  constructor(private readonly ctx: Context) {
    ctx.router.offlineHandler = (username, message) => this.store(username, message, new Date());
    ctx.router.discoFeatures.add(NS.OFFLINE);
  }

  /** false when the account does not exist or its store is full: the sender then gets an error. */
  async store(username: string, message: Element, receivedAt: Date): Promise<boolean> {
    if (!(await this.ctx.storage.getUser(username))) return false;
    const copy = withDelay(message, this.ctx.config.domain, receivedAt);
    const ok = await this.ctx.storage.storeOffline(username, copy.toString(), receivedAt, this.ctx.config.c2s.maxOfflineMessages);
    if (ok) this.ctx.metrics.offlineStored.inc();
    return ok;
  }

  async deliver(session: Session): Promise<void> {
    if (!session.username) return;
    const messages = await this.ctx.storage.takeOffline(session.username);
    for (const m of messages) {
      const stanza = parse(m.xml) as Element;
      if (session.state !== 'active') {
        // The session ended while we read: put the message back rather than lose it.
        await this.ctx.storage.storeOffline(session.username, m.xml, m.stamp, Number.MAX_SAFE_INTEGER);
        continue;
      }
      session.send(stanza);
    }
  }
}

/** A copy with one XEP-0203 delay stamp (an existing one from an earlier hop is kept as it is). */
export function withDelay(message: Element, domain: string, stamp: Date): Element {
  const copy = clone(message);
  if (!copy.getChild('delay', NS.DELAY)) copy.c('delay', { xmlns: NS.DELAY, from: domain, stamp: stamp.toISOString() }).t('Offline storage');
  return copy;
}
