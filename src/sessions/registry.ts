import type { ConnectionKind } from '../config/types.js';
import type { Session } from './session.js';

/**
 * Every live session, by id, by full JID, by bare JID and by kind. Sessions enter when accepted (before they
 * have a JID) so the watchdog sees unauthenticated ones too, and leave exactly once when they close.
 */
export class SessionRegistry {
  private readonly byId = new Map<string, Session>();
  private readonly byFullJid = new Map<string, Session>();
  private readonly byBareJid = new Map<string, Set<Session>>();
  private readonly byKind = new Map<ConnectionKind, Set<Session>>();

  add(session: Session): void {
    this.byId.set(session.id, session);
    let kindSet = this.byKind.get(session.kind);
    if (!kindSet) this.byKind.set(session.kind, (kindSet = new Set()));
    kindSet.add(session);
  }

  /** Index an authenticated, bound session under its JID. The caller has already replaced any holder. */
  bind(session: Session, fullJid: string, bareJid: string): void {
    this.byFullJid.set(fullJid, session);
    let set = this.byBareJid.get(bareJid);
    if (!set) this.byBareJid.set(bareJid, (set = new Set()));
    set.add(session);
  }

  remove(session: Session): void {
    if (this.byId.get(session.id) !== session) return;
    this.byId.delete(session.id);
    this.byKind.get(session.kind)?.delete(session);
    if (session.fullJid && this.byFullJid.get(session.fullJid) === session) this.byFullJid.delete(session.fullJid);
    if (session.bareJid) {
      const set = this.byBareJid.get(session.bareJid);
      set?.delete(session);
      if (set && set.size === 0) this.byBareJid.delete(session.bareJid);
    }
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  getByFullJid(fullJid: string): Session | undefined {
    return this.byFullJid.get(fullJid);
  }

  /** Bound resources of one account; empty when the user is offline. */
  getByBareJid(bareJid: string): ReadonlySet<Session> {
    return this.byBareJid.get(bareJid) ?? EMPTY;
  }

  ofKind(kind: ConnectionKind): ReadonlySet<Session> {
    return this.byKind.get(kind) ?? EMPTY;
  }

  all(): IterableIterator<Session> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }
}

const EMPTY: ReadonlySet<Session> = new Set();
