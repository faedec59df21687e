import { Element, parse } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import type { RosterItem } from '../storage/storage.js';
import { stanzaError } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';
import type { OfflineMessages } from './offline.js';
import { accountOf, installRoster, Rosters } from './roster.js';
import { Subscriptions, type PresenceRelay, type SubscriptionType } from './subscription.js';

const SUBSCRIPTION_TYPES: ReadonlySet<string> = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/**
 * RFC 6121 §4 presence for one server, with the roster (§2) and subscriptions (§3) it rests on.
 *
 * Initial presence makes a resource available, probes the contacts it is subscribed to (their current
 * presence comes back from every available resource), broadcasts to its subscribers and the account's
 * other resources, then hands it the subscription requests waiting for it and its offline messages.
 * Updates go to subscribers and own resources; directed presence goes where it is addressed, and whoever
 * got it is owed the unavailable at the end. Every end of a session, for whatever reason, is announced.
 *
 * Everything that reads or changes rosters runs one task at a time (`serial`), so an unavailable never
 * overtakes the available it ends, and the state machine never sees half of another change.
 */
export class Presence implements PresenceRelay {
  readonly rosters: Rosters;
  readonly subscriptions: Subscriptions;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: Context, private readonly offline: OfflineMessages) {
    this.rosters = new Rosters(ctx);
    this.subscriptions = new Subscriptions(ctx, this.rosters, this);
    installRoster(ctx, this.rosters, this.subscriptions, (task) => this.serial(task));
    ctx.router.presenceHandler = (presence, from, to) => this.handle(presence, from, to);
  }

  /** Run a roster or presence task after every one queued before it. */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch((err: Error) => this.ctx.log.error({ event: 'presence.error', err: err.message, stack: err.stack }, 'presence task failed'));
    return run;
  }

  handle(presence: Element, from: Session, to: string | undefined): void {
    const type = presence.attrs.type as string | undefined;
    if (to === from.bareJid && (type === undefined || type === 'unavailable')) to = undefined; // to oneself: a broadcast
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      if (to === undefined) return this.ctx.router.bounce(presence, from, 'bad-request', 'a subscription stanza needs a to');
      const contact = to.includes('/') ? to.slice(0, to.indexOf('/')) : to;
      void this.serial(() => this.subscriptions.outbound(type as SubscriptionType, presence, from, contact));
      return;
    }
    switch (type) {
      case undefined:
        void this.serial(() => (to === undefined ? this.available(presence, from) : this.directed(presence, from, to)));
        return;
      case 'unavailable':
        void this.serial(() => (to === undefined ? this.unavailable(presence, from) : this.directed(presence, from, to)));
        return;
      case 'probe':
        if (to !== undefined) void this.serial(() => this.probe(to!.split('/')[0], from));
        return;
      case 'error':
        if (to !== undefined) this.ctx.registry.getByFullJid(to)?.send(presence);
        return;
      default:
        this.ctx.router.bounce(presence, from, 'bad-request', `presence type '${type}' does not exist`);
    }
  }

  /** The session is gone, whatever the reason; whoever saw it available must now see it unavailable. */
  sessionEnded(session: Session): void {
    const wasAvailable = session.available;
    session.available = false;
    if (!wasAvailable && !session.directedTo) return;
    const presence = new Element('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: session.fullJid });
    void this.serial(() => this.broadcast(presence, session, true));
  }

  /**
   * A local account is being deleted (XEP-0077 §3.2): undo its subscriptions both ways, delete it, then
   * `closeSessions`, all in one task, so nothing queued after it can write for the account again.
   */
  accountRemoved(username: string, closeSessions: () => void): Promise<void> {
    return this.serial(async () => {
      const bare = `${username}@${this.ctx.config.domain}`;
      const { items } = await this.rosters.all(username);
      for (const item of items) await this.subscriptions.removeContact(bare, item);
      await this.ctx.storage.deleteUser(username);
      closeSessions();
    });
  }

  // PresenceRelay, for the subscription state machine

  sendCurrentPresence(from: string, to: string): void {
    for (const s of this.ctx.registry.getByBareJid(from)) {
      if (s.available && s.presence) this.toAccount(s.presence, to);
    }
  }

  sendUnavailable(from: string, to: string): void {
    for (const s of this.ctx.registry.getByBareJid(from)) {
      if (s.available) this.toAccount(new Element('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: s.fullJid }), to);
    }
  }

  // Presence from a session

  private async available(presence: Element, from: Session): Promise<void> {
    if (from.state !== 'active') return;
    const initial = !from.available;
    from.available = true;
    from.priority = parsePriority(presence);
    from.presence = presence;
    const { items } = await this.rosters.all(from.username!);
    if (from.state !== 'active') return;
    await this.broadcast(presence, from, false, items);
    if (!initial) return;
    // The account's other resources, then every contact it is subscribed to (RFC 6121 §4.2.2, §4.3).
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) {
      if (s !== from && s.available && s.presence) from.send(withTo(s.presence, from.fullJid!));
    }
    for (const item of items) {
      if ((item.subscription === 'to' || item.subscription === 'both') && this.ctx.router.isLocal(item.jid)) await this.answerProbe(item.jid, from);
      if (from.state !== 'active') return;
    }
    // Requests that waited for this user (RFC 6121 §3.1.3), then offline messages.
    for (const item of items) if (item.pendingIn) from.send(parse(item.pendingIn) as Element);
    void this.offline.deliver(from);
  }

  private async unavailable(presence: Element, from: Session): Promise<void> {
    if (!from.available && !from.directedTo) return;
    from.available = false;
    await this.broadcast(presence, from, true);
    from.presence = undefined;
  }

  private async directed(presence: Element, from: Session, to: string): Promise<void> {
    if (from.state !== 'active') return;
    if (!this.ctx.router.isLocal(to)) {
      from.send(stanzaError(presence, 'remote-server-not-found', 'this server does not federate'));
      return;
    }
    const targets = to.includes('/') ? [this.ctx.registry.getByFullJid(to)] : [...this.ctx.registry.getByBareJid(to)].filter((s) => s.available);
    let delivered = false;
    for (const t of targets) {
      if (t?.isBound) {
        t.send(presence);
        delivered = true;
      }
    }
    // RFC 6121 §4.6.3: who got directed availability gets the unavailable too, and nothing else.
    if (presence.attrs.type === 'unavailable') from.directedTo?.delete(to);
    else if (delivered) (from.directedTo ??= new Set()).add(to);
  }

  /** A client's own probe (RFC 6121 §4.3): answered only when it may see that presence. */
  private async probe(contact: string, from: Session): Promise<void> {
    if (!this.ctx.router.isLocal(contact) || contact === from.bareJid) return;
    const item = await this.rosters.item(from.username!, contact);
    if (item && (item.subscription === 'to' || item.subscription === 'both')) await this.answerProbe(contact, from);
  }

  /** The contact's server answers a probe: its current presence, if the prober is its subscriber. */
  private async answerProbe(contact: string, to: Session): Promise<void> {
    const sessions = [...this.ctx.registry.getByBareJid(contact)].filter((s) => s.available && s.presence);
    if (sessions.length === 0) return;
    const theirs = await this.rosters.item(accountOf(contact), to.bareJid!);
    if (!theirs || (theirs.subscription !== 'from' && theirs.subscription !== 'both')) return;
    for (const s of sessions) if (s.available && s.presence) to.send(withTo(s.presence, to.fullJid!));
  }

  /**
   * Broadcast presence (RFC 6121 §4.2.2, §4.4.2, §4.5.2): to the account's other available resources and
   * to every available resource of each subscriber; an unavailable also to whoever got directed presence.
   */
  private async broadcast(presence: Element, from: Session, unavailable: boolean, roster?: RosterItem[]): Promise<void> {
    const items = roster ?? (await this.rosters.all(from.username!)).items;
    const sent = new Set<Session>([from]);
    const sendTo = (s: Session | undefined) => {
      if (!s || sent.has(s) || !s.isBound) return;
      sent.add(s);
      s.send(withTo(presence, s.fullJid!));
    };
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) if (s.available) sendTo(s);
    for (const item of items) {
      if (item.subscription !== 'from' && item.subscription !== 'both') continue;
      for (const s of this.ctx.registry.getByBareJid(item.jid)) if (s.available) sendTo(s);
    }
    if (unavailable && from.directedTo) {
      for (const jid of from.directedTo) {
        if (jid.includes('/')) sendTo(this.ctx.registry.getByFullJid(jid));
        else for (const s of this.ctx.registry.getByBareJid(jid)) sendTo(s);
      }
      from.directedTo = undefined;
    }
  }

  /** Presence from another account, to each available resource of `to`. */
  private toAccount(presence: Element, to: string): void {
    for (const s of this.ctx.registry.getByBareJid(to)) if (s.available && s.isBound) s.send(withTo(presence, s.fullJid!));
  }
}

function parsePriority(presence: Element): number {
  const text = presence.getChildText('priority');
  if (text === null) return 0;
  const n = Number.parseInt(text.trim(), 10);
  return Number.isFinite(n) ? Math.max(-128, Math.min(127, n)) : 0;
}

function withTo(presence: Element, to: string): Element {
  const copy = new Element(presence.name, { ...presence.attrs, to });
  for (const child of presence.children) copy.children.push(child);
  return copy;
}
