import { Element, parse } from 'ltx';
import type { Context } from '../context.js';
import { SERVER, type Origin } from '../router/origin.js';
import type { PresenceHandler } from '../router/router.js';
import type { Session } from '../sessions/session.js';
import type { RosterItem } from '../storage/storage.js';
import { parseJid, type Jid } from '../xmpp/jid.js';
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
export class Presence implements PresenceRelay, PresenceHandler {
  readonly rosters: Rosters;
  readonly subscriptions: Subscriptions;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: Context, private readonly offline: OfflineMessages) {
    this.rosters = new Rosters(ctx);
    this.subscriptions = new Subscriptions(ctx, this.rosters, this);
    installRoster(ctx, this.rosters, this.subscriptions, (task) => this.serial(task));
  }

  /** Run a roster or presence task after every one queued before it. */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch((err: Error) => this.ctx.log.error({ event: 'presence.error', err: err.message, stack: err.stack }, 'presence task failed'));
    return run;
  }

  /** Presence a local client sent (RFC 6121 §4.2-4.6 outbound); `to` undefined is a broadcast. */
  outbound(presence: Element, from: Session, jid: Jid | undefined): void {
    const type = presence.attrs.type as string | undefined;
    let to = jid?.full;
    if (to === from.bareJid && (type === undefined || type === 'unavailable')) to = undefined; // to oneself: a broadcast
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      if (jid === undefined) return this.ctx.router.bounce(presence, 'bad-request', 'a subscription stanza needs a to');
      void this.serial(() => this.subscriptions.outbound(type as SubscriptionType, presence, from, jid.bare));
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
        if (jid !== undefined) void this.serial(() => this.probe(jid.bare, from));
        return;
      case 'error':
        if (jid !== undefined) this.ctx.router.route(presence, SERVER);
        return;
      default:
        this.ctx.router.bounce(presence, 'bad-request', `presence type '${type}' does not exist`);
    }
  }

  /**
   * Presence for a local account or resource that this server (or, later, a peer server) already processed
   * on the sender's side: handed to the resources that should see it (RFC 6121 §8.5.2.1.3, §8.5.3).
   */
  inbound(presence: Element, to: Jid, origin: Origin): void {
    const type = presence.attrs.type as string | undefined;
    if (origin !== SERVER) return this.fromPeer(presence, to, type);
    if (to.resource) {
      const session = this.ctx.registry.getByFullJid(to.full);
      if (session?.isBound) return session.send(presence);
      // No such resource: subscription stanzas go to the account; anything else has no reader (§8.5.3.2.3).
      if (type === undefined || !SUBSCRIPTION_TYPES.has(type)) return;
    }
    // A probe asks the server, not the user: local probes are answered where they are sent (probe()).
    if (type === 'probe') return;
    for (const s of this.ctx.registry.getByBareJid(to.bare)) if (s.im.available && s.isBound) s.send(presence);
  }

  /**
   * Presence a peer server sent for a local account: subscription stanzas run the contact's side of the
   * state machine here, probes are answered for the contact, the rest is delivered like local presence.
   */
  private fromPeer(presence: Element, to: Jid, type: string | undefined): void {
    const from = parseJid(presence.attrs.from ?? '');
    if (!from) return;
    if (type !== undefined && SUBSCRIPTION_TYPES.has(type)) {
      void this.serial(() => this.subscriptions.inbound(type as SubscriptionType, presence, to.bare, from.bare));
      return;
    }
    if (type === 'probe') {
      void this.serial(() => this.answerRemoteProbe(to.bare, from));
      return;
    }
    this.inbound(presence, to, SERVER);
  }

  /**
   * RFC 6121 §4.3.2: a remote subscriber's probe gets the current presence of each available resource, or
   * unavailable when there is none; someone not subscribed gets nothing, so presence leaks to no one.
   */
  private async answerRemoteProbe(contact: string, prober: Jid): Promise<void> {
    const item = await this.rosters.item(accountOf(contact), prober.bare);
    if (!item || (item.subscription !== 'from' && item.subscription !== 'both')) return;
    const available = [...this.ctx.registry.getByBareJid(contact)].filter((s) => s.im.available && s.im.last && !s.im.hidden);
    if (available.length === 0) return this.ctx.router.route(new Element('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: contact, to: prober.full }), SERVER);
    for (const s of available) this.ctx.router.route(withTo(s.im.last!, prober.full), SERVER);
  }

  /** The session is gone, whatever the reason; whoever saw it available must now see it unavailable. */
  sessionEnded(session: Session): void {
    const wasAvailable = session.im.available;
    session.im.available = false;
    if (!wasAvailable && !session.im.directedTo) return;
    const presence = new Element('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: session.fullJid });
    void this.serial(() => this.broadcast(presence, session, true));
  }

  /**
   * A hibernated session outlived its presence grace: its contacts see it unavailable, as if it had gone,
   * and it stops receiving their presence. Its last presence is kept for a resume.
   */
  sessionHidden(session: Session): void {
    if (!session.im.available) return;
    session.im.hidden = true;
    this.sessionEnded(session);
  }

  /**
   * A hidden session resumed: its last presence counts as initial presence again, so contacts see it back
   * and it learns their presence (and gets what went to offline storage meanwhile).
   */
  sessionResumed(session: Session): void {
    if (!session.im.hidden) return;
    session.im.hidden = false;
    const last = session.im.last;
    if (last) void this.serial(() => this.available(last, session));
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
      if (s.im.available && s.im.last) this.toAccount(s.im.last, to);
    }
  }

  sendUnavailable(from: string, to: string): void {
    for (const s of this.ctx.registry.getByBareJid(from)) {
      if (s.im.available) this.toAccount(new Element('presence', { xmlns: NS.CLIENT, type: 'unavailable', from: s.fullJid }), to);
    }
  }

  // Presence from a session

  private async available(presence: Element, from: Session): Promise<void> {
    if (from.state !== 'active') return;
    const initial = !from.im.available;
    from.im.available = true;
    from.im.priority = parsePriority(presence);
    from.im.last = presence;
    const { items } = await this.rosters.all(from.username!);
    if (from.state !== 'active') return;
    await this.broadcast(presence, from, false, items);
    if (!initial) return;
    // The account's other resources, then every contact it is subscribed to (RFC 6121 §4.2.2, §4.3).
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) {
      if (s !== from && s.im.available && s.im.last) this.ctx.router.route(withTo(s.im.last, from.fullJid!), SERVER);
    }
    for (const item of items) {
      if (item.subscription !== 'to' && item.subscription !== 'both') continue;
      // A remote contact's server answers for it (RFC 6121 §4.3.1): the probe goes from the bare JID.
      if (!this.ctx.router.isLocal(item.jid)) this.ctx.router.route(new Element('presence', { xmlns: NS.CLIENT, type: 'probe', from: from.bareJid, to: item.jid }), SERVER);
      else await this.answerProbe(item.jid, from);
      if (from.state !== 'active') return;
    }
    // Requests that waited for this user (RFC 6121 §3.1.3), then offline messages.
    for (const item of items) if (item.pendingIn) this.ctx.router.route(withTo(parse(item.pendingIn) as Element, from.fullJid!), SERVER);
    void this.offline.deliver(from);
  }

  private async unavailable(presence: Element, from: Session): Promise<void> {
    if (!from.im.available && !from.im.directedTo) return;
    from.im.available = false;
    await this.broadcast(presence, from, true);
    from.im.last = undefined;
  }

  private async directed(presence: Element, from: Session, to: string): Promise<void> {
    if (from.state !== 'active') return;
    const reaches = this.reaches(to);
    this.ctx.router.route(presence, SERVER);
    // RFC 6121 §4.6.3: who got directed availability gets the unavailable too, and nothing else.
    if (presence.attrs.type === 'unavailable') from.im.directedTo?.delete(to);
    else if (reaches) (from.im.directedTo ??= new Set()).add(to);
  }

  /** Whether presence to `to` finds a reader: a local resource that is there, or another domain's server. */
  private reaches(to: string): boolean {
    const jid = parseJid(to);
    if (!jid) return false;
    if (jid.domain !== this.ctx.router.domain) return true;
    if (jid.resource) return this.ctx.registry.getByFullJid(jid.full)?.isBound === true;
    for (const s of this.ctx.registry.getByBareJid(jid.bare)) if (s.im.available && s.isBound) return true;
    return false;
  }

  /** A client's own probe (RFC 6121 §4.3): answered only when it may see that presence. */
  private async probe(contact: string, from: Session): Promise<void> {
    if (contact === from.bareJid) return;
    if (!this.ctx.router.isLocal(contact)) {
      return this.ctx.router.route(new Element('presence', { xmlns: NS.CLIENT, type: 'probe', from: from.bareJid, to: contact }), SERVER);
    }
    const item = await this.rosters.item(from.username!, contact);
    if (item && (item.subscription === 'to' || item.subscription === 'both')) await this.answerProbe(contact, from);
  }

  /** The contact's server answers a probe: its current presence, if the prober is its subscriber. */
  private async answerProbe(contact: string, to: Session): Promise<void> {
    const sessions = [...this.ctx.registry.getByBareJid(contact)].filter((s) => s.im.available && s.im.last);
    if (sessions.length === 0) return;
    const theirs = await this.rosters.item(accountOf(contact), to.bareJid!);
    if (!theirs || (theirs.subscription !== 'from' && theirs.subscription !== 'both')) return;
    for (const s of sessions) if (s.im.available && s.im.last) this.ctx.router.route(withTo(s.im.last, to.fullJid!), SERVER);
  }

  /**
   * Broadcast presence (RFC 6121 §4.2.2, §4.4.2, §4.5.2): to the account's other available resources and
   * to every available resource of each subscriber; an unavailable also to whoever got directed presence.
   */
  private async broadcast(presence: Element, from: Session, unavailable: boolean, roster?: RosterItem[]): Promise<void> {
    const items = roster ?? (await this.rosters.all(from.username!)).items;
    // Available presence goes back to the sending resource too (RFC 6121 §4.2.2, §4.4.2): it learns what
    // its contacts see. An unavailable one does not: the sender is leaving.
    const sent = new Set<Session>(unavailable ? [from] : []);
    const sendTo = (s: Session | undefined) => {
      if (!s || sent.has(s) || !s.isBound) return;
      sent.add(s);
      this.ctx.router.route(withTo(presence, s.fullJid!), SERVER);
    };
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) if (s.im.available) sendTo(s);
    for (const item of items) {
      if (item.subscription !== 'from' && item.subscription !== 'both') continue;
      // A remote subscriber's server delivers to its resources: one stanza per contact (RFC 6121 §4.2.2).
      if (!this.ctx.router.isLocal(item.jid)) this.ctx.router.route(withTo(presence, item.jid), SERVER);
      else for (const s of this.ctx.registry.getByBareJid(item.jid)) if (s.im.available) sendTo(s);
    }
    if (unavailable && from.im.directedTo) {
      for (const jid of from.im.directedTo) {
        if (!this.ctx.router.isLocal(jid)) this.ctx.router.route(withTo(presence, jid), SERVER);
        else if (jid.includes('/')) sendTo(this.ctx.registry.getByFullJid(jid));
        else for (const s of this.ctx.registry.getByBareJid(jid)) sendTo(s);
      }
      from.im.directedTo = undefined;
    }
  }

  /** Presence from another account, to each available resource of `to`; a remote account's server fans it out. */
  private toAccount(presence: Element, to: string): void {
    if (!this.ctx.router.isLocal(to)) return this.ctx.router.route(withTo(presence, to), SERVER);
    for (const s of this.ctx.registry.getByBareJid(to)) if (s.im.available && s.isBound) this.ctx.router.route(withTo(presence, s.fullJid!), SERVER);
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

/** RFC 6121 presence, with the roster and subscriptions; announces the end of every bound session. */
export function installPresence(ctx: Context, offline: OfflineMessages): Presence {
  const presence = new Presence(ctx, offline);
  ctx.router.handlePresence(presence);
  ctx.sessions.onEnded((session) => {
    if (session.jid) presence.sessionEnded(session);
  });
  ctx.sessions.onHidden((session) => presence.sessionHidden(session));
  ctx.sessions.onResumed((session) => presence.sessionResumed(session));
  return presence;
}
