import type { Element } from 'ltx';

/** A message written to the peer that it never confirmed, and when it was written. */
export interface Unconfirmed {
  stanza: Element;
  sentAt: number;
}

/**
 * What a session wrote that its peer has not confirmed, kept so that nothing is lost when the session dies.
 * Today's rule is a heuristic (below); XEP-0198 will plug in its exact unacked queue.
 */
export interface Ledger {
  /** A message left for the peer (or, detached, would have). */
  written(stanza: Element, now: number): void;
  /** Bytes arrived from the peer. */
  heard(): void;
  /** What was never confirmed; taken once, when the session ends. */
  take(): Unconfirmed[];
}

/**
 * Without stream management the only confirmation is that the peer spoke after a message was written: a
 * peer that sends anything was alive to read what came before. So the unconfirmed messages are those
 * written after the last byte received. It repeats messages to a peer that only listens, but loses none.
 */
export class SinceLastHeard implements Ledger {
  private list: Unconfirmed[] = [];

  written(stanza: Element, now: number): void {
    this.list.push({ stanza, sentAt: now });
  }

  heard(): void {
    if (this.list.length > 0) this.list = [];
  }

  take(): Unconfirmed[] {
    const list = this.list;
    this.list = [];
    return list;
  }
}
