import type { Element } from 'ltx';
import type { Ledger, Unconfirmed } from '../sessions/ledger.js';

/** XEP-0198 counts wrap at 2^32. */
export const H_MOD = 2 ** 32;

/**
 * XEP-0198's unacked queue, the exact ledger: every stanza written since stream management was enabled stays
 * until the client's `h` covers it. Counts are kept unwrapped (a double is exact far beyond any session's
 * life) and wrapped only on the wire, so `h` arithmetic never needs care anywhere else.
 */
export class AckQueue implements Ledger {
  /**
   * Unacked entries from `head` on; the array is compacted now and then rather than shifted per ack. Slots
   * before `head` are emptied as they are acked: a stanza kept until the compaction would outlive every
   * young-generation collection and be moved to the old one, garbage for a major GC.
   */
  private entries: (Unconfirmed | undefined)[] = [];
  private head = 0;
  writtenCount = 0;
  confirmedCount = 0;

  get length(): number {
    return this.entries.length - this.head;
  }

  /** When the oldest unacked stanza was written; 0 when everything is acked. */
  get oldestAt(): number {
    return this.entries[this.head]?.sentAt ?? 0;
  }

  /** `h` as the server reports it: stanzas written, mod 2^32. */
  get h(): number {
    return this.writtenCount % H_MOD;
  }

  written(stanza: Element, now: number): void {
    this.entries.push({ stanza, sentAt: now });
    this.writtenCount++;
  }

  heard(): void {
    // Bytes prove nothing here: only the client's h confirms.
  }

  /**
   * The client's `h` (already checked to be a 32-bit count). Returns how many stanzas it newly acked, or
   * -1 when it acks more than was ever sent, which the caller answers with a stream error.
   */
  ack(h: number): number {
    const newly = this.acks(h);
    if (newly < 0) return -1;
    const end = this.head + newly;
    this.entries.fill(undefined, this.head, end);
    this.head = end;
    this.confirmedCount += newly;
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return newly;
  }

  /** How many stanzas `h` would newly ack, or -1 when more than were ever sent; changes nothing. */
  acks(h: number): number {
    const newly = (h - (this.confirmedCount % H_MOD) + H_MOD) % H_MOD;
    return newly > this.length ? -1 : newly;
  }

  /** The unacked stanzas in order, left in the queue: what a resumed stream re-sends. */
  unacked(): Unconfirmed[] {
    return this.rest();
  }

  take(): Unconfirmed[] {
    const rest = this.rest();
    this.entries = [];
    this.head = 0;
    return rest;
  }

  private rest(): Unconfirmed[] {
    // Every slot from head on holds an entry: only acked ones are emptied.
    return this.entries.slice(this.head) as Unconfirmed[];
  }
}

/** A counter attribute as XEP-0198 writes it: a decimal between 0 and 2^32-1; undefined when it is not. */
export function parseH(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n < H_MOD ? n : undefined;
}
