import type { Element } from 'ltx';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Registry } from '../sessions/registry.js';
import type { Session } from '../sessions/session.js';
import { stanzaError, type StanzaErrorCondition, type StanzaErrorType } from '../xmpp/errors.js';
import { parseJid, type Jid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';
import { clientOf, SERVER, type Origin } from './origin.js';
import { PendingReplies } from './replies.js';
import { randomId } from '../xmpp/random-id.js';

/** Answers an iq get or set; an Element returned is sent as the reply, undefined means it replied itself. */
export type IqHandler<From> = (iq: Element, from: From, payload: Element) => Promise<Element | undefined> | Element | undefined;

/** RFC 6121 §4 presence, which the presence feature handles on both sides. */
export interface PresenceHandler {
  /** Presence a local client sent; `to` undefined is a broadcast. */
  outbound(presence: Element, from: Session, to: Jid | undefined): void;
  /** Presence for a local account or resource, from the server itself or a server peer. */
  inbound(presence: Element, to: Jid, origin: Origin): void;
}

/** A message for an account with no resource to take it; true when it was kept (offline storage). */
export type UndeliverableHandler = (username: string, message: Element) => Promise<boolean>;

/** Told of every message a local client sends and of every one delivered to local resources (XEP-0280). */
export interface MessageObserver {
  sent(message: Element, from: Session): void;
  /** `resources`: the sessions of `to`'s account that got the message itself. */
  delivered(message: Element, to: Jid, resources: readonly Session[]): void;
}

/** Stanzas for other domains. */
export type RemoteHandler = (stanza: Element, to: Jid, origin: Origin) => void;

export interface RouterDeps {
  registry: Registry;
  log: Logger;
  readonly config: Config;
}

/**
 * Addressing (RFC 6120 §10, RFC 6121 §8) for stanzas from any origin: a client session, a server stream, or
 * the server itself. `to` is parsed and normalised first; then the stanza is for another domain (the remote
 * slot), the server itself (any resource), an account, or one resource. Errors are stanzas too: they go back
 * through route() to the sender, wherever it is. Features declare what they handle; the router holds no
 * protocol of its own.
 */
export class Router {
  private readonly serverIq = new Map<string, IqHandler<Origin>>();
  private readonly clientIq = new Map<string, IqHandler<Session>>();
  private readonly accountIq = new Map<string, IqHandler<Session>>();
  private readonly replies = new PendingReplies();
  readonly discoFeatures = new Set<string>([NS.DISCO_INFO, NS.DISCO_ITEMS, NS.STANZA_ID]);
  private presence: PresenceHandler | undefined;
  private observer: MessageObserver | undefined;
  private undeliverable: UndeliverableHandler = async () => false;
  private remote: RemoteHandler = (stanza) => this.bounce(stanza, 'remote-server-not-found', 'this server does not federate');
  private federating = false;

  constructor(private readonly deps: RouterDeps) {}

  get domain(): string {
    return this.deps.config.domain;
  }

  // What features declare

  /** An iq get/set to the server from anyone (ping, disco, version), by its payload's namespace. */
  handleServerIq(ns: string, handler: IqHandler<Origin>, advertise = true): void {
    this.serverIq.set(ns, handler);
    if (advertise) this.discoFeatures.add(ns);
  }

  /** An iq get/set to the server that only a local client may send (in-band registration changes). */
  handleClientIq(ns: string, handler: IqHandler<Session>, advertise = true): void {
    this.clientIq.set(ns, handler);
    if (advertise) this.discoFeatures.add(ns);
  }

  /** An iq get/set a client sends to its own account (no 'to', or its bare JID), such as the roster. */
  handleAccountIq(ns: string, handler: IqHandler<Session>, advertise = true): void {
    this.accountIq.set(ns, handler);
    if (advertise) this.discoFeatures.add(ns);
  }

  handlePresence(handler: PresenceHandler): void {
    this.presence = handler;
  }

  observeMessages(observer: MessageObserver): void {
    this.observer = observer;
  }

  handleUndeliverable(handler: UndeliverableHandler): void {
    this.undeliverable = handler;
  }

  /** The one slot for other domains; until federation, everything there bounces remote-server-not-found. */
  handleRemote(handler: RemoteHandler): void {
    this.remote = handler;
    this.federating = true;
  }

  /** Whether stanzas for other domains go anywhere (a remote handler is installed). */
  get federates(): boolean {
    return this.federating;
  }

  /**
   * Wait for the result or error of an iq the server sent, from `from` (a full JID or a domain), by id. A
   * reply that comes resolves; none within `timeout` ms rejects.
   */
  expectReply(id: string, from: string, timeout: number): Promise<Element> {
    return this.replies.expect(id, from, timeout);
  }

  // Routing

  /** A stanza from `origin`. A client's `from` is already stamped with its bound JID. */
  route(stanza: Element, origin: Origin): void {
    const client = clientOf(origin);
    let to: Jid | undefined;
    const toText = stanza.attrs.to as string | undefined;
    if (toText !== undefined) {
      to = parseJid(toText);
      if (!to) return this.bounce(stanza, 'jid-malformed', `'${toText}' is not a valid JID`);
      stanza.attrs.to = to.full;
    }
    if (client && stanza.name === 'message') this.observer?.sent(stanza, client);
    // A client's presence goes through the presence feature wherever it is addressed: subscriptions and
    // directed presence keep state on the sender's side first (RFC 6121 §3, §4.6).
    if (client && stanza.name === 'presence') return this.presence?.outbound(stanza, client, to);
    if (to && to.domain !== this.domain) return this.remote(stanza, to, origin);
    switch (stanza.name) {
      case 'message':
        return this.routeMessage(stanza, to ?? client?.jid);
      case 'presence':
        if (to && to.local !== '') this.presence?.inbound(stanza, to, origin);
        return; // presence to the server itself has no reader
      case 'iq':
        return void this.routeIq(stanza, origin, client, to);
    }
  }

  /**
   * The error reply to a stanza, routed back to its sender (RFC 6120 §8.3.1); nothing for an error or an iq
   * result, which would only start a loop.
   */
  bounce(stanza: Element, condition: StanzaErrorCondition, text?: string, type?: StanzaErrorType): void {
    if (stanza.attrs.type === 'error' || (stanza.name === 'iq' && stanza.attrs.type === 'result')) return;
    if (stanza.attrs.from === undefined) return;
    const error = stanzaError(stanza, condition, text, type);
    if (error.attrs.from === undefined) error.attrs.from = this.domain;
    this.route(error, SERVER);
  }

  isLocal(jid: string): boolean {
    return parseJid(jid)?.domain === this.domain;
  }

  /** Available resources of an account with the highest non-negative priority (RFC 6121 §8.5.2.1.1). */
  private preferredResources(bare: string): Session[] {
    let best = -1;
    const out: Session[] = [];
    for (const s of this.deps.registry.getByBareJid(bare)) {
      if (!s.im.available || s.im.priority < 0 || !s.isBound) continue;
      if (s.im.priority > best) {
        best = s.im.priority;
        out.length = 0;
      }
      if (s.im.priority === best) out.push(s);
    }
    return out;
  }

  private availableResources(bare: string): Session[] {
    return [...this.deps.registry.getByBareJid(bare)].filter((s) => s.im.available && s.im.priority >= 0 && s.isBound);
  }

  // Messages (RFC 6121 §8.5)

  private routeMessage(message: Element, to: Jid | undefined): void {
    if (!to || to.local === '') return; // messages to the server itself have no reader
    if (message.attrs.type !== 'error') stampStanzaId(message, to.bare);
    if (to.resource) {
      const session = this.deps.registry.getByFullJid(to.full);
      if (session?.isBound) {
        session.send(message);
        this.observer?.delivered(message, to, [session]);
        return;
      }
    }
    void this.messageToAccount(message, to);
  }

  /** To a bare JID, or a full JID with no such resource. */
  private async messageToAccount(message: Element, to: Jid): Promise<void> {
    const type = message.attrs.type ?? 'normal';
    if (type === 'groupchat') return this.bounce(message, 'service-unavailable');
    if (type === 'headline') {
      for (const s of this.availableResources(to.bare)) s.send(message);
      return;
    }
    const targets = this.preferredResources(to.bare);
    if (targets.length > 0) {
      for (const s of targets) s.send(message);
      this.observer?.delivered(message, to, targets);
      return;
    }
    if (type === 'error') return;
    if (!(await this.undeliverable(to.local, message))) this.bounce(message, 'service-unavailable');
  }

  // IQs (RFC 6120 §8.2.3, §10.5)

  private async routeIq(iq: Element, origin: Origin, client: Session | undefined, to: Jid | undefined): Promise<void> {
    const type = iq.attrs.type;
    if (type !== 'get' && type !== 'set' && type !== 'result' && type !== 'error') return this.bounce(iq, 'bad-request', 'iq type must be get, set, result or error');
    if (iq.attrs.id === undefined) return this.bounce(iq, 'bad-request', 'iq needs an id');
    const toServer = to === undefined || to.local === '';
    const toOwnAccount = client !== undefined && (to === undefined || (to.resource === '' && to.bare === client.jid!.bare));
    if (type === 'result' || type === 'error') {
      if (toServer || toOwnAccount) {
        // Only a reply that came in from a peer answers: an error this server made up for a stanza it could
        // not deliver proves nothing about the peer it was meant for.
        const from = iq.attrs.from as string | undefined;
        if (from !== undefined && origin !== SERVER) this.replies.match(iq, from);
        return;
      }
      const session = to!.resource ? this.deps.registry.getByFullJid(to!.full) : undefined;
      if (session?.isBound) session.send(iq);
      return;
    }
    const payloads = iq.getChildElements();
    const ns = payloads[0]?.attrs.xmlns as string | undefined;
    if (payloads.length !== 1 || ns === undefined) return this.bounce(iq, 'bad-request', 'an iq get or set carries exactly one payload');
    const payload = payloads[0];
    if (toOwnAccount) {
      // The account's own namespaces (the roster) first, then the server's (RFC 6120 §10.3.3, §10.5.3).
      const handler = this.accountIq.get(ns);
      if (handler) return this.answer(iq, client, handler, payload);
    }
    if (toServer || toOwnAccount) {
      const forClients = this.clientIq.get(ns);
      if (forClients) return client ? this.answer(iq, client, forClients, payload) : this.bounce(iq, 'service-unavailable');
      const handler = this.serverIq.get(ns);
      return handler ? this.answer(iq, origin, handler, payload) : this.bounce(iq, 'service-unavailable');
    }
    if (!to!.resource) {
      // The server answers for another account (RFC 6120 §10.5.4); what is private to an account, such as its
      // roster, only the account itself may touch (RFC 6121 §2.3.3).
      return this.bounce(iq, this.accountIq.has(ns) ? 'forbidden' : 'service-unavailable');
    }
    const session = this.deps.registry.getByFullJid(to!.full);
    if (session?.isBound) return session.send(iq);
    this.bounce(iq, 'service-unavailable');
  }

  private async answer<From>(iq: Element, from: From, handler: IqHandler<From>, payload: Element): Promise<void> {
    try {
      const reply = await handler(iq, from, payload);
      if (reply) this.route(reply, SERVER);
    } catch (err) {
      this.deps.log.error({ event: 'iq.error', from: iq.attrs.from, ns: payload.attrs.xmlns, err: (err as Error).message }, 'iq handler failed');
      this.bounce(iq, 'internal-server-error');
    }
  }
}

/**
 * XEP-0359: the recipient's server names each message it accepts, so a client that gets it twice (live, then
 * again from offline storage after its session was reaped) can tell. A stanza-id claiming to be ours that
 * the sender put there is removed first.
 */
function stampStanzaId(message: Element, by: string): void {
  const claimsOurs = (c: Element | string): boolean => typeof c !== 'string' && c.name === 'stanza-id' && c.attrs.xmlns === NS.STANZA_ID && c.attrs.by === by;
  if (message.children.some(claimsOurs)) message.children = message.children.filter((c) => !claimsOurs(c));
  message.c('stanza-id', { xmlns: NS.STANZA_ID, id: randomId(12), by });
}
