import { parse, type Element } from 'ltx';
import type { Unconfirmed } from '../sessions/ledger.js';
import type { Session } from '../sessions/session.js';
import type { Storage } from '../storage/storage.js';

/** Rows read from storage at a time: enough to keep a reading client busy, little to hold in memory. */
export const PAGE_SIZE = 50;

interface Sent {
  id: number;
  /** The stanza's number in the session's ledger: confirmed once the ledger's confirmedCount reaches it. */
  seq: number;
  salvaged: boolean;
}

/**
 * One session's delivery of its stored messages. A row leaves storage only once its message is confirmed,
 * so the store itself is the record of what is still owed, and a flush that dies loses nothing.
 *
 * The rule is the session's ledger: an ack with stream management, otherwise bytes from the peer after the
 * message was written (SinceLastHeard).
 * - a row is read (a page at a time, oldest first), written at the pace the peer reads, and kept in `sent`
 *   until it is deleted; nothing is ever deleted before it was written;
 * - before each next page, rows confirmed so far are deleted (they leave `sent` first);
 * - at the session's end the ledger's unconfirmed list decides the rest of `sent`: a row whose stanza is in
 *   the list stays in storage (with its id, so it keeps its place in line) and must not be salvaged as
 *   well; a row whose stanza is not in the list was confirmed and is deleted. A stanza in the list whose row
 *   was already deleted (the two views disagreed) is salvaged like any live message: stored again, never
 *   lost. Rows never written stay where they are.
 * So every row is deleted at most once and only when confirmed, and is either in storage or salvaged,
 * never both: the next login gets each message the peer did not confirm exactly once. Without stream
 * management "not confirmed" is a guess that a client that only listens makes every time, so a row it
 * leaves unconfirmed is marked salvaged, and a salvaged row left unconfirmed again is given up (deleted).
 */
export class OfflineFlush {
  private readonly sent = new Map<Element, Sent>();
  /** Ids read by this flush and not yet given up, so a second resource's flush leaves them alone. */
  private readonly claimed = new Set<number>();
  private ended = false;

  constructor(
    readonly session: Session,
    readonly username: string,
    private readonly storage: Storage,
    /** Whether another live flush of the same user holds this row. */
    private readonly claimedElsewhere: (id: number) => boolean,
    /** Storage work that shutdown must wait for. */
    private readonly track: (job: Promise<unknown>) => void,
  ) {}

  /** Holds no row any more: nothing for the session's end to settle. */
  get settled(): boolean {
    return this.sent.size === 0;
  }

  holds(id: number): boolean {
    return this.claimed.has(id);
  }

  private get live(): boolean {
    return !this.ended && this.session.state === 'active';
  }

  async run(): Promise<void> {
    let after = 0;
    for (;;) {
      await this.deleteConfirmed();
      if (!this.live) return;
      const page = await this.storage.readOffline(this.username, after, PAGE_SIZE);
      if (!this.live) return;
      // Claimed synchronously as the page arrives: a concurrent flush checks before its own first await.
      const mine = page.filter((m) => !this.claimedElsewhere(m.id));
      for (const m of mine) this.claimed.add(m.id);
      for (const m of mine) {
        // At the pace the client reads: thousands of large messages must not land in its send queue at once.
        await this.session.drained();
        if (!this.live) return;
        const stanza = parse(m.xml) as Element;
        // Recorded before send(): an overflow closes the session inside send(), and end() must know it.
        this.sent.set(stanza, { id: m.id, seq: this.session.writtenCount + 1, salvaged: m.salvaged });
        this.session.send(stanza);
      }
      if (page.length < PAGE_SIZE) return;
      after = page[page.length - 1].id;
    }
  }

  /** Delete the rows whose messages the peer has confirmed since; `sent` is in the order written. */
  private async deleteConfirmed(): Promise<void> {
    const confirmed = this.session.confirmedCount;
    const ids: number[] = [];
    for (const [stanza, s] of this.sent) {
      if (s.seq > confirmed) break;
      ids.push(s.id);
      this.sent.delete(stanza);
    }
    if (ids.length === 0) return;
    const job = this.storage.deleteOffline(this.username, ids);
    this.track(job);
    await job;
  }

  /**
   * The session ended: delete the rows it confirmed, keep the ones it did not (`exact`: known for certain,
   * with stream management; otherwise a guess, marked, and given up on the second time), and return what
   * of `unconfirmed` must still be salvaged (everything that is not a row kept in storage).
   */
  end(unconfirmed: Unconfirmed[], exact: boolean): { deleted: Promise<unknown>; salvage: Unconfirmed[] } {
    this.ended = true;
    const salvage: Unconfirmed[] = [];
    const kept = new Set<Element>();
    for (const u of unconfirmed) {
      if (this.sent.has(u.stanza)) kept.add(u.stanza);
      else salvage.push(u);
    }
    const gone: number[] = [];
    const guessed: number[] = [];
    for (const [stanza, s] of this.sent) {
      if (!kept.has(stanza) || (!exact && s.salvaged)) gone.push(s.id);
      else if (!exact) guessed.push(s.id);
    }
    this.sent.clear();
    this.claimed.clear();
    const deleted = Promise.all([this.storage.deleteOffline(this.username, gone), this.storage.markOfflineSalvaged(this.username, guessed)]);
    return { deleted, salvage };
  }
}
