import type { Element } from 'ltx';
import type { Ledger, Unconfirmed } from '../sessions/ledger.js';

interface Numbered extends Unconfirmed {
  n: number;
}

/**
 * What we wrote on our stream to a peer server that it has not proved it read. Bytes arriving on that
 * stream prove nothing of the kind (the peer answers on its own stream to us), so only an answered ping
 * confirms: what was written before the ping left has been read. Every stanza is kept until then, to be
 * sent again on the next connection if this one dies first.
 */
export class PeerLedger implements Ledger {
  private list: Numbered[] = [];
  writtenCount = 0;
  confirmedCount = 0;

  /**
   * `limits()`: how long a stanza may wait unconfirmed before a ping is due, and how many may (read at each
   * tick, so reloads apply). On a busy link the count bites first, so what is held stays bounded.
   */
  constructor(private readonly limits: () => { confirmAfter: number; maxStanzas: number }) {}

  written(stanza: Element, now: number): void {
    this.list.push({ stanza, sentAt: now, n: ++this.writtenCount });
  }

  heard(): void {
    // Bytes on our own outgoing stream: the peer is there, but says nothing about what it read.
  }

  confirm(upTo: number): void {
    if (upTo <= this.confirmedCount) return;
    this.confirmedCount = upTo;
    let i = 0;
    while (i < this.list.length && this.list[i].n <= upTo) i++;
    if (i > 0) this.list.splice(0, i);
  }

  get dueAt(): number {
    if (this.list.length === 0) return 0;
    const { confirmAfter, maxStanzas } = this.limits();
    return this.list.length >= maxStanzas ? this.list[0].sentAt : this.list[0].sentAt + confirmAfter;
  }

  get length(): number {
    return this.list.length;
  }

  take(): Unconfirmed[] {
    const list = this.list;
    this.list = [];
    return list.map(({ stanza, sentAt }) => ({ stanza, sentAt }));
  }
}
