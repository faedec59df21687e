import { clone, type Element } from 'ltx';
import type { Context } from '../context.js';
import type { Unconfirmed } from '../sessions/ledger.js';
import type { Session } from '../sessions/session.js';
import { NS } from '../xmpp/ns.js';
import { OfflineFlush } from './offline-flush.js';

/**
 * XEP-0160: messages for an account with no available resource are stored and delivered, oldest first,
 * when the user next sends initial presence, each with an XEP-0203 delay stamp of when it arrived. What a
 * session's peer never confirmed is stored the same way when the session ends (salvage). Each user's store
 * is bounded by count and by bytes (c2s.maxOfflineMessages, c2s.maxOfflineBytes), so nobody can make a
 * victim's next login a flood.
 */
export class OfflineMessages {
  private readonly writes = new Set<Promise<unknown>>();
  /** Per user, flushes whose session has not ended and that hold rows: those stay in storage until confirmed. */
  private readonly flushes = new Map<string, Set<OfflineFlush>>();
  /** Per user, the storage work of sessions that ended: the next flush reads only after it. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(private readonly ctx: Context) {}

  /**
   * false when the account does not exist or its store is full: the sender then gets an error. `salvaged`:
   * a message a client without stream management may already have seen (see OfflineFlush).
   */
  async store(username: string, message: Element, receivedAt: Date, salvaged = false): Promise<boolean> {
    // After what an ended session of this user is still storing: its messages came first.
    await this.settling.get(username);
    return this.storeNow(username, message, receivedAt, salvaged);
  }

  private async storeNow(username: string, message: Element, receivedAt: Date, salvaged: boolean): Promise<boolean> {
    if (!(await this.ctx.storage.getUser(username))) return false;
    const copy = withDelay(message, this.ctx.config.domain, receivedAt);
    const { maxOfflineMessages, maxOfflineBytes } = this.ctx.config.c2s;
    const ok = await this.ctx.storage.storeOffline(username, copy.toString(), receivedAt, maxOfflineMessages, maxOfflineBytes, salvaged);
    if (ok) this.ctx.metrics.offlineStored.inc();
    return ok;
  }

  /** Hand a session its stored messages, page by page as it reads (see OfflineFlush for what is deleted when). */
  async deliver(session: Session): Promise<void> {
    const username = session.username;
    if (!username) return;
    try {
      await this.settling.get(username);
      if (session.state !== 'active' || this.flushOf(session)) return;
      const heldElsewhere = (id: number): boolean => [...(this.flushes.get(username) ?? [])].some((f) => f !== flush && f.holds(id));
      const flush = new OfflineFlush(session, username, this.ctx.storage, heldElsewhere, (job) => this.track(job));
      let mine = this.flushes.get(username);
      if (!mine) this.flushes.set(username, (mine = new Set()));
      mine.add(flush);
      await flush.run();
      // Nothing left to settle (the usual case: no stored messages): hold no memory for the session.
      if (flush.settled) this.forget(flush);
    } catch (err) {
      this.ctx.log.error({ event: 'offline.deliver_failed', session: session.id, err: (err as Error).message }, 'could not deliver offline messages');
    }
  }

  /**
   * The session ended: settle its flush (confirmed rows deleted, unconfirmed ones kept), then keep the
   * messages its peer never confirmed, in order, each with the time it was first sent. Presence and IQs in
   * the list are not for later (stream management's unacked queue holds every stanza).
   */
  ended(session: Session, unconfirmed: Unconfirmed[]): void {
    const username = session.username;
    if (!username) return;
    const exact = session.sm !== undefined;
    const messages = unconfirmed.filter((u) => storable(u.stanza));
    const flush = this.flushOf(session);
    if (flush) this.forget(flush);
    const settled = flush?.end(messages, exact);
    const salvage = settled?.salvage ?? messages;
    if (!settled && salvage.length === 0) return;
    const job = (async () => {
      await settled?.deleted;
      for (const { stanza, sentAt } of salvage) {
        if (await this.storeNow(username, stanza, new Date(sentAt), !exact)) this.ctx.metrics.messagesSalvaged.inc({ kind: session.kind });
      }
    })().catch((err: Error) => this.ctx.log.error({ event: 'salvage.failed', session: session.id, err: err.message }, 'could not settle offline messages'));
    // Chained per user, so a login right after a close reads what this session left, not what it is leaving.
    const chained = Promise.all([this.settling.get(username), job]).then(() => undefined);
    this.settling.set(username, chained);
    void chained.finally(() => {
      if (this.settling.get(username) === chained) this.settling.delete(username);
    });
    this.track(chained);
  }

  private flushOf(session: Session): OfflineFlush | undefined {
    for (const f of this.flushes.get(session.username ?? '') ?? []) if (f.session === session) return f;
    return undefined;
  }

  private forget(flush: OfflineFlush): void {
    const mine = this.flushes.get(flush.username);
    mine?.delete(flush);
    if (mine?.size === 0) this.flushes.delete(flush.username);
  }

  private track(job: Promise<unknown>): void {
    const quiet = job.catch(() => undefined);
    this.writes.add(quiet);
    void quiet.finally(() => this.writes.delete(quiet));
  }

  /** Resolves once every salvage and delete started so far is done (shutdown waits for it). */
  async flushed(): Promise<void> {
    await Promise.all([...this.writes]);
  }
}

export function installOffline(ctx: Context): OfflineMessages {
  const offline = new OfflineMessages(ctx);
  ctx.router.handleUndeliverable((username, message) => offline.store(username, message, new Date()));
  ctx.router.discoFeatures.add(NS.OFFLINE);
  ctx.sessions.onEnded((session, _reason, unconfirmed) => offline.ended(session, unconfirmed));
  return offline;
}

/** What offline storage keeps (XEP-0160 §3): chat and normal messages; not errors, headlines or groupchat. */
export function storable(stanza: Element): boolean {
  if (stanza.name !== 'message') return false;
  const type = stanza.attrs.type ?? 'normal';
  return type === 'chat' || type === 'normal';
}

/** A copy with one XEP-0203 delay stamp (an existing one from an earlier hop is kept as it is). */
export function withDelay(message: Element, domain: string, stamp: Date): Element {
  const copy = clone(message);
  if (!copy.getChild('delay', NS.DELAY)) copy.c('delay', { xmlns: NS.DELAY, from: domain, stamp: stamp.toISOString() }).t('Offline storage');
  return copy;
}
