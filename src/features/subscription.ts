import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import type { RosterItem } from '../storage/storage.js';
import { SERVER } from '../router/origin.js';
import { NS } from '../xmpp/ns.js';
import { accountOf, newItem, type ContactRemover, type Rosters } from './roster.js';

/** Bytes of a pending request kept with its children (status, nick); larger ones are kept bare. */
const MAX_STORED_REQUEST = 4096;

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

/** The presence side effects of a subscription change, which the presence feature knows how to do. */
export interface PresenceRelay {
  /** Send the current presence of each available resource of `from` to `to`'s available resources. */
  sendCurrentPresence(from: string, to: string): void;
  /** Send unavailable presence from each available resource of `from` to `to`'s available resources. */
  sendUnavailable(from: string, to: string): void;
}

/**
 * The RFC 6121 §3 subscription state machine for accounts on this server (Appendix A's tables): a local
 * user's outbound subscription stanza changes their own roster item, then is processed as inbound on the
 * contact's side at once. Subscription stanzas travel stamped with bare JIDs. Pending inbound requests live
 * in the contact's roster item (hidden when the contact never added the requester) until answered, and are
 * bounded by c2s.maxPendingSubscriptions; new items are bounded by c2s.maxRosterItems.
 */
export class Subscriptions implements ContactRemover {
  constructor(
    private readonly ctx: Context,
    private readonly rosters: Rosters,
    private readonly relay: PresenceRelay,
  ) {}

  /** A subscription stanza a local session sent; `contact` is the bare JID it is addressed to. */
  async outbound(type: SubscriptionType, stanza: Element, from: Session, contact: string): Promise<void> {
    if (from.state !== 'active') return; // the session ended (or its account was removed) while this waited
    const user = from.bareJid!;
    if (contact === user || !contact.includes('@')) return; // to oneself or to a server: nothing to subscribe to
    if (!this.ctx.router.isLocal(contact) && !this.ctx.router.federates) return this.ctx.router.bounce(stanza, 'remote-server-not-found', 'this server does not federate');
    const out = stamped(stanza, user, contact);
    switch (type) {
      case 'subscribe':
        return this.sendSubscribe(from, contact, out, stanza);
      case 'subscribed':
        return this.sendSubscribed(from, contact, out, stanza);
      case 'unsubscribe':
        return this.sendUnsubscribe(user, contact, out);
      case 'unsubscribed':
        return this.sendUnsubscribed(user, contact, out);
    }
  }

  /**
   * A subscription stanza from a peer server for a local account (RFC 6121 §3, the contact's side); `from`
   * is the remote bare JID. An account that does not exist answers unsubscribed to a request (§3.1.3).
   */
  async inbound(type: SubscriptionType, stanza: Element, owner: string, from: string): Promise<void> {
    const out = stamped(stanza, from, owner);
    if ((await this.ctx.storage.getUser(accountOf(owner))) === undefined) {
      if (type === 'subscribe') this.toContact('unsubscribed', from, owner, subscription('unsubscribed', owner, from));
      return;
    }
    await this.toContact(type, owner, from, out);
  }

  /** RFC 6121 §2.5.2: removing an item cancels the subscriptions both ways, then the item goes. */
  async removeContact(owner: Session | string, item: RosterItem): Promise<void> {
    const user = typeof owner === 'string' ? owner : owner.bareJid!;
    if (item.subscription === 'to' || item.subscription === 'both' || item.ask) {
      await this.toContact('unsubscribe', item.jid, user, subscription('unsubscribe', user, item.jid));
    }
    if (item.subscription === 'from' || item.subscription === 'both' || item.pendingIn) {
      await this.toContact('unsubscribed', item.jid, user, subscription('unsubscribed', user, item.jid));
      if (item.subscription === 'from' || item.subscription === 'both') this.relay.sendUnavailable(user, item.jid);
    }
    await this.rosters.remove(accountOf(user), item);
  }

  /**
   * The contact's side of a subscription stanza `from` sent: run here for a local contact, or sent to the
   * contact's server, which runs its own (RFC 6121 §3: each server keeps its own user's roster).
   */
  private async toContact(type: SubscriptionType, contact: string, from: string, stanza: Element): Promise<void> {
    if (!this.ctx.router.isLocal(contact)) return this.ctx.router.route(stanza, SERVER);
    switch (type) {
      case 'subscribe':
        return this.receiveSubscribe(contact, from, stanza);
      case 'subscribed':
        return this.receiveSubscribed(contact, from, stanza);
      case 'unsubscribe':
        return this.receiveUnsubscribe(contact, from, stanza);
      case 'unsubscribed':
        return this.receiveUnsubscribed(contact, from, stanza);
    }
  }

  // Outbound: the user's side (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2)

  /** A step that would add a visible roster item to a full roster is refused; true when it was. */
  private async refuseNewItem(from: Session, mine: RosterItem | undefined, original: Element): Promise<boolean> {
    if ((mine && !mine.hidden) || !(await this.rosters.full(from.username!))) return false;
    this.ctx.router.bounce(original, 'not-allowed', `your roster is full (${this.ctx.config.c2s.maxRosterItems} items)`, 'cancel');
    return true;
  }

  /** `original` is the stanza as the session sent it: errors go back to that resource. */
  private async sendSubscribe(from: Session, contact: string, out: Element, original: Element): Promise<void> {
    const user = from.bareJid!;
    const username = from.username!;
    const mine = await this.rosters.item(username, contact);
    if (await this.refuseNewItem(from, mine, original)) return;
    const contactUser = accountOf(contact);
    const local = this.ctx.router.isLocal(contact);
    // A remote contact's server decides for itself; a local one must exist.
    const exists = !local || (await this.ctx.storage.getUser(contactUser)) !== undefined;
    if (exists && local) {
      const theirs = await this.rosters.item(contactUser, user);
      const answered = theirs && (theirs.subscription === 'from' || theirs.subscription === 'both' || theirs.approved || theirs.pendingIn);
      if (!answered && (await this.ctx.storage.countRoster(contactUser)).pendingIn >= this.ctx.config.c2s.maxPendingSubscriptions) {
        this.ctx.log.info({ event: 'subscription.refused', from: user, to: contact, reason: 'too many pending requests' }, 'subscription request dropped');
        this.ctx.router.bounce(original, 'resource-constraint', `${contact} has too many unanswered subscription requests`, 'wait');
        return;
      }
    }
    if (!mine || (!mine.ask && (mine.subscription === 'none' || mine.subscription === 'from'))) {
      await this.rosters.put(username, { ...(mine ?? newItem(contact)), ask: true, hidden: false });
    }
    if (exists) await this.toContact('subscribe', contact, user, out);
    else await this.receiveUnsubscribed(user, contact, subscription('unsubscribed', contact, user)); // §3.1.3: no such account
  }

  private async sendSubscribed(from: Session, contact: string, out: Element, original: Element): Promise<void> {
    const user = from.bareJid!;
    const username = from.username!;
    const mine = await this.rosters.item(username, contact);
    if (await this.refuseNewItem(from, mine, original)) return;
    if (mine?.pendingIn) {
      // Approval of a pending request: None -> From, To -> Both.
      await this.rosters.put(username, { ...mine, subscription: mine.subscription === 'to' ? 'both' : 'from', pendingIn: null, approved: false, hidden: false });
      await this.toContact('subscribed', contact, user, out);
      this.relay.sendCurrentPresence(user, contact);
      return;
    }
    if (mine && (mine.subscription === 'from' || mine.subscription === 'both' || mine.approved)) return;
    // Pre-approval (RFC 6121 §3.4): not routed; the contact's later request is approved at once.
    await this.rosters.put(username, { ...(mine ?? newItem(contact)), approved: true, hidden: false });
  }

  private async sendUnsubscribe(user: string, contact: string, out: Element): Promise<void> {
    const username = accountOf(user);
    const mine = await this.rosters.item(username, contact);
    if (mine && (mine.ask || mine.subscription === 'to' || mine.subscription === 'both')) {
      await this.rosters.put(username, { ...mine, ask: false, subscription: mine.subscription === 'both' ? 'from' : 'none' });
    }
    await this.toContact('unsubscribe', contact, user, out);
  }

  private async sendUnsubscribed(user: string, contact: string, out: Element): Promise<void> {
    const username = accountOf(user);
    const mine = await this.rosters.item(username, contact);
    if (!mine) return;
    const hadFrom = mine.subscription === 'from' || mine.subscription === 'both';
    const hadPending = mine.pendingIn !== null;
    if (!hadFrom && !hadPending && !mine.approved) return;
    const next: RosterItem = { ...mine, subscription: mine.subscription === 'both' ? 'to' : 'none', pendingIn: null, approved: false };
    if (next.hidden) await this.rosters.remove(username, next); // a refused request from a stranger leaves nothing
    else if (hadFrom || mine.approved) await this.rosters.put(username, next);
    else await this.ctx.storage.putRosterItem(username, next); // only the hidden pending request changed: no push
    if (hadFrom || hadPending) await this.toContact('unsubscribed', contact, user, out);
    if (hadFrom) this.relay.sendUnavailable(user, contact);
  }

  // Inbound: the contact's side (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3). `owner` is the local account
  // receiving the stanza, `from` the bare JID that sent it.

  private async receiveSubscribe(owner: string, from: string, stanza: Element): Promise<void> {
    const username = accountOf(owner);
    const item = await this.rosters.item(username, from);
    if (item && (item.subscription === 'from' || item.subscription === 'both')) {
      // Already subscribed: the server answers for the contact.
      await this.toContact('subscribed', from, owner, subscription('subscribed', owner, from));
      this.relay.sendCurrentPresence(owner, from);
      return;
    }
    if (item?.approved) {
      await this.rosters.put(username, { ...item, subscription: item.subscription === 'to' ? 'both' : 'from', approved: false, pendingIn: null, hidden: false });
      await this.toContact('subscribed', from, owner, subscription('subscribed', owner, from));
      this.relay.sendCurrentPresence(owner, from);
      return;
    }
    const first = !item?.pendingIn;
    const pending: RosterItem = { ...(item ?? { ...newItem(from), hidden: true }), pendingIn: storable(stanza) };
    await this.ctx.storage.putRosterItem(username, pending); // pending in is not part of the visible item: no push
    // Delivered now to every available resource, and again at each initial presence until answered.
    if (first) this.deliver(stanza);
  }

  private async receiveSubscribed(owner: string, from: string, stanza: Element): Promise<void> {
    const username = accountOf(owner);
    const item = await this.rosters.item(username, from);
    if (!item?.ask) return; // §3.1.6: a 'subscribed' nobody asked for is ignored
    await this.rosters.put(username, { ...item, ask: false, subscription: item.subscription === 'from' ? 'both' : 'to', hidden: false });
    this.deliver(stanza);
  }

  private async receiveUnsubscribe(owner: string, from: string, stanza: Element): Promise<void> {
    const username = accountOf(owner);
    const item = await this.rosters.item(username, from);
    if (!item) return;
    const hadFrom = item.subscription === 'from' || item.subscription === 'both';
    if (!hadFrom && !item.pendingIn) return;
    const next: RosterItem = { ...item, subscription: item.subscription === 'both' ? 'to' : 'none', pendingIn: null };
    if (next.hidden) await this.rosters.remove(username, next);
    else if (hadFrom) await this.rosters.put(username, next);
    else await this.ctx.storage.putRosterItem(username, next);
    this.deliver(stanza);
    if (hadFrom) this.relay.sendUnavailable(owner, from);
  }

  private async receiveUnsubscribed(owner: string, from: string, stanza: Element): Promise<void> {
    const username = accountOf(owner);
    const item = await this.rosters.item(username, from);
    if (!item || !(item.ask || item.subscription === 'to' || item.subscription === 'both')) return;
    await this.rosters.put(username, { ...item, ask: false, subscription: item.subscription === 'both' ? 'from' : 'none' });
    this.deliver(stanza);
  }

  /**
   * Subscription stanzas go to every available resource of the account they are stamped to (RFC 6121
   * §3.1.3): the router hands them to the presence feature's inbound side for that account.
   */
  private deliver(stanza: Element): void {
    this.ctx.router.route(stanza, SERVER);
  }
}

/** A copy of a client's subscription stanza as it travels: bare JIDs both ways, its children kept. */
function stamped(stanza: Element, from: string, to: string): Element {
  const copy = new Element('presence', { ...stanza.attrs, xmlns: NS.CLIENT, from, to });
  for (const child of stanza.children) copy.children.push(child);
  return copy;
}

/**
 * The request as it is kept until answered. Its status or nickname is worth keeping, but a request may be as
 * large as a stanza may be, times c2s.maxPendingSubscriptions per user: past MAX_STORED_REQUEST bytes only
 * the bare request is kept.
 */
function storable(stanza: Element): string {
  const xml = stanza.toString();
  if (Buffer.byteLength(xml) <= MAX_STORED_REQUEST) return xml;
  return subscription('subscribe', stanza.attrs.from as string, stanza.attrs.to as string).toString();
}

function subscription(type: SubscriptionType, from: string, to: string): Element {
  return new Element('presence', { xmlns: NS.CLIENT, type, from, to });
}
