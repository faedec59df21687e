import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import { stanzaError } from '../xmpp/errors.js';
import { fullOf, tryParseJid } from '../xmpp/jid.js';
import { NS } from '../xmpp/ns.js';

/** Answers an iq; returning an Element sends it as the reply, undefined means the handler replied itself. */
export type IqHandler = (iq: Element, session: Session, payload: Element) => Promise<Element | undefined> | Element | undefined;

/** Handles presence stanzas (RFC 6121 §3-4); the presence feature installs it. */
export type PresenceHandler = (presence: Element, from: Session, to: string | undefined) => void;

/** Where a message to an account with no available resource goes; the offline feature installs it. */
export type OfflineHandler = (username: string, message: Element) => Promise<boolean>;

/**
 * RFC 6121 §8 routing between local sessions, and dispatch of stanzas addressed to the server or to the
 * sender's own account. Features register what they handle; the router holds no protocol of its own.
 */
export class Router {
  private readonly serverIq = new Map<string, IqHandler>();
  private readonly accountIq = new Map<string, IqHandler>();
  private readonly resultHooks: ((iq: Element, from: Session) => boolean)[] = [];
  readonly discoFeatures = new Set<string>([NS.DISCO_INFO, NS.DISCO_ITEMS, NS.STANZA_ID]);
  presenceHandler: PresenceHandler = () => undefined;
  offlineHandler: OfflineHandler = async () => false;

  constructor(private readonly ctx: Pick<Context, 'registry' | 'log' | 'metrics'> & { readonly config: Context['config'] }) {}

  /** An iq get/set addressed to the server (no 'to', or the domain), keyed by its payload's namespace. */
  serverIqHandler(ns: string, handler: IqHandler, advertise = true): void {
    this.serverIq.set(ns, handler);
    if (advertise) this.discoFeatures.add(ns);
  }

  /** An iq get/set a client sends to its own account (no 'to', or its bare JID), such as the roster. */
  accountIqHandler(ns: string, handler: IqHandler, advertise = true): void {
    this.accountIq.set(ns, handler);
    if (advertise) this.discoFeatures.add(ns);
  }

  /** Sees iq results and errors addressed to the server; returns true when it consumed one. */
  onIqResult(hook: (iq: Element, from: Session) => boolean): void {
    this.resultHooks.push(hook);
  }

  get domain(): string {
    return this.ctx.config.domain;
  }

  /** A stanza from a bound client session, 'from' already stamped. */
  route(stanza: Element, from: Session): void {
    const to = stanza.attrs.to as string | undefined;
    let target: string | undefined;
    if (to !== undefined) {
      const parsed = tryParseJid(to);
      if (!parsed) {
        this.bounce(stanza, from, 'jid-malformed');
        return;
      }
      target = fullOf(parsed);
      stanza.attrs.to = target;
    }
    switch (stanza.name) {
      case 'message':
        this.routeMessage(stanza, from, target ?? from.bareJid!);
        return;
      case 'presence':
        this.presenceHandler(stanza, from, target);
        return;
      case 'iq':
        void this.routeIq(stanza, from, target);
        return;
      default:
        from.close('error', { condition: 'unsupported-stanza-type', text: `<${stanza.name}/> is not a stanza` });
    }
  }

  /** Write a stanza to a session and count it. */
  deliver(stanza: Element, to: Session): void {
    to.send(stanza);
  }

  /** Reply to the sender with an error, unless the stanza is an error itself (RFC 6120 §8.3.1). */
  bounce(stanza: Element, from: Session, condition: Parameters<typeof stanzaError>[1], text?: string): void {
    if (stanza.attrs.type === 'error') return;
    if (stanza.name === 'iq' && stanza.attrs.type === 'result') return;
    from.send(stanzaError(stanza, condition, text));
  }

  private routeMessage(message: Element, from: Session, to: string): void {
    const slash = to.indexOf('/');
    if (this.isLocal(to) && message.attrs.type !== 'error') stampStanzaId(message, slash >= 0 ? to.slice(0, slash) : to);
    if (slash >= 0) {
      const session = this.ctx.registry.getByFullJid(to);
      if (session?.isBound) {
        this.deliver(message, session);
        return;
      }
      to = to.slice(0, slash);
    }
    void this.messageToAccount(message, from, to);
  }

  /** RFC 6121 §8.5.2: to a bare JID, or a full JID with no such resource. */
  async messageToAccount(message: Element, from: Session | undefined, bare: string): Promise<void> {
    const type = message.attrs.type ?? 'normal';
    if (!this.isLocal(bare)) {
      if (from) this.bounce(message, from, 'remote-server-not-found');
      return;
    }
    if (bare === this.domain) return; // messages to the server itself have no reader
    const targets = this.preferredResources(bare);
    if (type === 'groupchat') {
      if (from) this.bounce(message, from, 'service-unavailable');
      return;
    }
    if (targets.length > 0 && type !== 'headline') {
      this.deliver(message, targets[0]);
      for (let i = 1; i < targets.length; i++) this.deliver(message, targets[i]);
      return;
    }
    if (type === 'headline') {
      for (const t of this.availableResources(bare)) this.deliver(message, t);
      return;
    }
    if (type === 'error') return;
    const stored = await this.offlineHandler(bare.slice(0, bare.indexOf('@')), message);
    if (!stored && from) this.bounce(message, from, 'service-unavailable');
  }

  /** Available resources of an account with the highest non-negative priority (RFC 6121 §8.5.2.1.1). */
  preferredResources(bare: string): Session[] {
    let best = -1;
    const out: Session[] = [];
    for (const s of this.ctx.registry.getByBareJid(bare)) {
      if (!s.available || s.priority < 0 || !s.isBound) continue;
      if (s.priority > best) {
        best = s.priority;
        out.length = 0;
      }
      if (s.priority === best) out.push(s);
    }
    return out;
  }

  availableResources(bare: string): Session[] {
    return [...this.ctx.registry.getByBareJid(bare)].filter((s) => s.available && s.priority >= 0 && s.isBound);
  }

  private async routeIq(iq: Element, from: Session, to: string | undefined): Promise<void> {
    const type = iq.attrs.type;
    if (type !== 'get' && type !== 'set' && type !== 'result' && type !== 'error') {
      this.bounce(iq, from, 'bad-request', 'iq type must be get, set, result or error');
      return;
    }
    if (iq.attrs.id === undefined) {
      this.bounce(iq, from, 'bad-request', 'iq needs an id');
      return;
    }
    const toServer = to === undefined || to === this.domain;
    const toOwnAccount = to === from.bareJid;
    if (type === 'result' || type === 'error') {
      if (toServer || toOwnAccount) {
        for (const hook of this.resultHooks) if (hook(iq, from)) return;
        return;
      }
      const session = this.ctx.registry.getByFullJid(to!);
      if (session?.isBound) this.deliver(iq, session);
      return;
    }
    const payload = iq.children.find((c): c is Element => typeof c !== 'string');
    const ns = payload?.attrs.xmlns as string | undefined;
    if (!payload || ns === undefined || iq.children.filter((c) => typeof c !== 'string').length !== 1) {
      this.bounce(iq, from, 'bad-request', 'an iq get or set carries exactly one payload');
      return;
    }
    if (toServer || toOwnAccount) {
      const handler = (toOwnAccount || to === undefined ? this.accountIq.get(ns) : undefined) ?? this.serverIq.get(ns);
      if (!handler) {
        this.bounce(iq, from, 'service-unavailable');
        return;
      }
      try {
        const reply = await handler(iq, from, payload);
        if (reply) from.send(reply);
      } catch (err) {
        this.ctx.log.error({ event: 'iq.error', session: from.id, jid: from.fullJid, ns, err: (err as Error).message }, 'iq handler failed');
        this.bounce(iq, from, 'internal-server-error');
      }
      return;
    }
    if (!to!.includes('/') && to!.includes('@') && this.isLocal(to!)) {
      // The server answers for another account (RFC 6120 §10.5.4); what is private to an account, such as its
      // roster, only the account itself may touch (RFC 6121 §2.3.3).
      this.bounce(iq, from, this.accountIq.has(ns) ? 'forbidden' : 'service-unavailable');
      return;
    }
    const session = this.ctx.registry.getByFullJid(to!);
    if (session?.isBound) {
      this.deliver(iq, session);
      return;
    }
    if (!this.isLocal(to!)) this.bounce(iq, from, 'remote-server-not-found');
    else this.bounce(iq, from, 'service-unavailable');
  }

  isLocal(jid: string): boolean {
    const at = jid.indexOf('@');
    const slash = jid.indexOf('/');
    const domain = jid.slice(at + 1, slash < 0 ? undefined : slash);
    return domain === this.domain;
  }
}

/**
 * XEP-0359: the recipient's server names each message it accepts, so a client that gets it twice (live, then
 * again from offline storage after its session was reaped) can tell. A stanza-id claiming to be ours that
 * the sender put there is removed first.
 */
function stampStanzaId(message: Element, by: string): void {
  message.children = message.children.filter((c) => typeof c === 'string' || !(c.name === 'stanza-id' && c.attrs.xmlns === NS.STANZA_ID && c.attrs.by === by));
  message.c('stanza-id', { xmlns: NS.STANZA_ID, id: randomBytes(12).toString('base64url'), by });
}

export function payloadOf(stanza: Element): Element | undefined {
  return stanza.children.find((c): c is Element => typeof c !== 'string');
}
