import type { Element } from 'ltx';

/** A stanza written to the peer that it never confirmed, and when it was written. */
export interface Unconfirmed {
  stanza: Element;
  sentAt: number;
}

/**
 * What a session wrote that its peer has not confirmed, kept so that nothing is lost when the session dies.
 * Stanzas are numbered as they are written, from 1: `written` is the number of the last one, and every
 * stanza numbered up to `confirmed` is known to have reached the peer. Without stream management the rule
 * is a heuristic (SinceLastHeard); with it, the exact unacked queue (sm/ack-queue.ts).
 */
export interface Ledger {
  /** A stanza left for the peer (or, detached, would have). */
  written(stanza: Element, now: number): void;
  /** Bytes arrived from the peer. */
  heard(): void;
  readonly writtenCount: number;
  readonly confirmedCount: number;
  /** The peer answered a probe sent after stanza `upTo`: everything up to it was read. */
  confirm?(upTo: number): void;
  /** When a probe is due so that what waits unconfirmed gets confirmed (0: nothing waits). */
  readonly dueAt?: number;
  /** What was never confirmed, oldest first; taken once, when the session ends. */
  take(): Unconfirmed[];
}

/**
 * Without stream management the only confirmation is that the peer spoke after a stanza was written: a
 * peer that sends anything was alive to read what came before. So the unconfirmed stanzas are those
 * written after the last byte received. It would repeat messages to a peer that only listens, so what it
 * salvages is marked and salvaged no second time (features/offline.ts). Only messages are kept: presence
 * and IQs are not for later.
 */
export class SinceLastHeard implements Ledger {
  private list: Unconfirmed[] = [];
  writtenCount = 0;
  confirmedCount = 0;

  written(stanza: Element, now: number): void {
    this.writtenCount++;
    if (stanza.name === 'message') this.list.push({ stanza, sentAt: now });
  }

  heard(): void {
    this.confirmedCount = this.writtenCount;
    if (this.list.length > 0) this.list = [];
  }

  take(): Unconfirmed[] {
    const list = this.list;
    this.list = [];
    return list;
  }
}
