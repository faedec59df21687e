import { clone, parse, type Element } from 'ltx';
import type { Context } from '../context.js';
import type { Unconfirmed } from '../sessions/ledger.js';
import type { Session } from '../sessions/session.js';
import { NS } from '../xmpp/ns.js';

/**
 * XEP-0160: messages for an account with no available resource are stored and delivered, oldest first,
 * when the user next sends initial presence, each with an XEP-0203 delay stamp of when it arrived. What a
 * session's peer never confirmed is stored the same way when the session ends (salvage).
 */
export class OfflineMessages {
  private readonly writes = new Set<Promise<unknown>>();

  constructor(private readonly ctx: Context) {}

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
      // At the pace the client reads: thousands of large messages must not land in its send queue at once.
      await session.drained();
      if (session.state !== 'active') {
        // The session ended while we read: put the message back rather than lose it.
        await this.ctx.storage.storeOffline(session.username, m.xml, m.stamp, Number.MAX_SAFE_INTEGER);
        continue;
      }
      session.send(parse(m.xml) as Element);
    }
  }

  /** Keep what an ended session's peer never confirmed, each with the time it was first sent. */
  salvage(session: Session, unconfirmed: Unconfirmed[]): void {
    const username = session.username;
    if (unconfirmed.length === 0 || !username) return;
    const job = (async () => {
      for (const { stanza, sentAt } of unconfirmed) {
        if (await this.store(username, stanza, new Date(sentAt))) this.ctx.metrics.messagesSalvaged.inc({ kind: session.kind });
      }
    })().catch((err: Error) => this.ctx.log.error({ event: 'salvage.failed', session: session.id, err: err.message }, 'could not store unconfirmed messages'));
    this.writes.add(job);
    void job.finally(() => this.writes.delete(job));
  }

  /** Resolves once every salvage started so far is stored (shutdown waits for it). */
  async flushed(): Promise<void> {
    await Promise.all([...this.writes]);
  }
}

export function installOffline(ctx: Context): OfflineMessages {
  const offline = new OfflineMessages(ctx);
  ctx.router.handleUndeliverable((username, message) => offline.store(username, message, new Date()));
  ctx.router.discoFeatures.add(NS.OFFLINE);
  ctx.sessions.onEnded((session, _reason, unconfirmed) => offline.salvage(session, unconfirmed));
  return offline;
}

/** A copy with one XEP-0203 delay stamp (an existing one from an earlier hop is kept as it is). */
export function withDelay(message: Element, domain: string, stamp: Date): Element {
  const copy = clone(message);
  if (!copy.getChild('delay', NS.DELAY)) copy.c('delay', { xmlns: NS.DELAY, from: domain, stamp: stamp.toISOString() }).t('Offline storage');
  return copy;
}
