import { Element } from 'ltx';
import type { Context } from '../context.js';
import type { Session } from '../sessions/session.js';
import type { OfflineMessages } from './offline.js';

/**
 * RFC 6121 §4 presence for one server: initial presence makes a resource available (and releases its
 * offline messages), broadcasts go to the account's other resources, directed presence goes where it is
 * addressed, and every end of an available session is announced as unavailable presence.
 */
export class Presence {
  constructor(private readonly ctx: Context, private readonly offline: OfflineMessages) {
    ctx.router.presenceHandler = (presence, from, to) => this.handle(presence, from, to);
  }

  handle(presence: Element, from: Session, to: string | undefined): void {
    const type = presence.attrs.type as string | undefined;
    if (to === undefined || to === from.bareJid) {
      if (type === undefined) this.available(presence, from);
      else if (type === 'unavailable') this.unavailable(presence, from);
      return;
    }
    if (type === undefined || type === 'unavailable') this.directed(presence, from, to);
  }

  /** The session is gone; whoever saw it available must now see it unavailable. */
  sessionEnded(session: Session): void {
    if (!session.available && !session.directedTo) return;
    const presence = new Element('presence', { xmlns: 'jabber:client', type: 'unavailable', from: session.fullJid });
    this.broadcast(presence, session);
    session.available = false;
  }

  private available(presence: Element, from: Session): void {
    const initial = !from.available;
    from.available = true;
    from.priority = parsePriority(presence);
    from.presence = presence;
    this.broadcast(presence, from);
    if (initial) void this.offline.deliver(from);
  }

  private unavailable(presence: Element, from: Session): void {
    from.available = false;
    this.broadcast(presence, from);
    from.presence = undefined;
  }

  private directed(presence: Element, from: Session, to: string): void {
    const slash = to.indexOf('/');
    const targets = slash >= 0 ? [this.ctx.registry.getByFullJid(to)] : [...this.ctx.registry.getByBareJid(to)];
    let delivered = false;
    for (const t of targets) {
      if (t?.isBound) {
        t.send(presence);
        delivered = true;
      }
    }
    if (delivered && presence.attrs.type !== 'unavailable') (from.directedTo ??= new Set()).add(to);
    else from.directedTo?.delete(to);
  }

  /** To the account's other available resources, and everyone who got directed presence. */
  private broadcast(presence: Element, from: Session): void {
    for (const s of this.ctx.registry.getByBareJid(from.bareJid!)) {
      if (s !== from && s.available) s.send(withTo(presence, s.fullJid!));
    }
    if (from.directedTo) {
      for (const jid of from.directedTo) {
        for (const s of jid.includes('/') ? [this.ctx.registry.getByFullJid(jid)] : this.ctx.registry.getByBareJid(jid)) {
          if (s?.isBound) s.send(withTo(presence, s.fullJid!));
        }
      }
      if (presence.attrs.type === 'unavailable') from.directedTo = undefined;
    }
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
