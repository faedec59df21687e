import type { ConnectionKind } from '../config/types.js';
import type { Session } from './session.js';
import { WatchTable } from './watch-table.js';

/**
 * The lookups the router, the features and the watchdog make. Narrow on purpose: a store shared by several
 * nodes can stand behind it later without any of them changing.
 */
export interface Registry {
  get(id: string): Session | undefined;
  getByFullJid(fullJid: string): Session | undefined;
  /** Bound resources of one account; empty when the user is offline. */
  getByBareJid(bareJid: string): ReadonlySet<Session>;
  /** Server streams authenticated for a remote domain. */
  getByDomain(domain: string): ReadonlySet<Session>;
  ofKind(kind: ConnectionKind): ReadonlySet<Session>;
  all(): IterableIterator<Session>;
  readonly size: number;
}

/**
 * Every live session, by id, full JID, bare JID, remote domain and kind. Sessions enter when accepted (before
 * they have an identity) so the watchdog sees unauthenticated ones too, and leave exactly once.
 */
export class SessionRegistry implements Registry {
  private readonly byId = new Map<string, Session>();
  private readonly byFullJid = new Map<string, Session>();
  private readonly byBareJid = new Map<string, Set<Session>>();
  private readonly byDomain = new Map<string, Set<Session>>();
  private readonly byKind = new Map<ConnectionKind, Set<Session>>();
  /** Every session's next look by the watchdog, by slot. */
  readonly watch = new WatchTable<Session>();

  add(session: Session): void {
    this.byId.set(session.id, session);
    this.watch.add(session);
    addTo(this.byKind, session.kind, session);
  }

  /** Index a bound client session under its JID. The caller has already replaced any holder. */
  bind(session: Session): void {
    const jid = session.jid;
    if (!jid) throw new Error('bind() needs a session with a JID');
    this.byFullJid.set(jid.full, session);
    addTo(this.byBareJid, jid.bare, session);
  }

  /** Index a server stream under the remote domain it authenticated. */
  bindDomain(session: Session, domain: string): void {
    addTo(this.byDomain, domain, session);
  }

  remove(session: Session): void {
    if (this.byId.get(session.id) !== session) return;
    this.byId.delete(session.id);
    this.watch.remove(session);
    this.byKind.get(session.kind)?.delete(session);
    const jid = session.jid;
    if (jid) {
      if (this.byFullJid.get(jid.full) === session) this.byFullJid.delete(jid.full);
      removeFrom(this.byBareJid, jid.bare, session);
    }
    if (session.domain) removeFrom(this.byDomain, session.domain, session);
  }

  get(id: string): Session | undefined {
    return this.byId.get(id);
  }

  getByFullJid(fullJid: string): Session | undefined {
    return this.byFullJid.get(fullJid);
  }

  getByBareJid(bareJid: string): ReadonlySet<Session> {
    return this.byBareJid.get(bareJid) ?? EMPTY;
  }

  getByDomain(domain: string): ReadonlySet<Session> {
    return this.byDomain.get(domain) ?? EMPTY;
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

function addTo<K>(index: Map<K, Set<Session>>, key: K, session: Session): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(session);
}

function removeFrom<K>(index: Map<K, Set<Session>>, key: K, session: Session): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(session);
  if (set.size === 0) index.delete(key);
}
