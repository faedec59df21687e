import type { Element } from 'ltx';

/** Contacts whose presence is held at once; past it everything held is let go, so memory stays bounded. */
const MAX_HELD = 1000;

/**
 * XEP-0352 client state indication, the server's side: while the client says it is inactive (a phone in a
 * pocket), presence changes are what wakes it for nothing. They are held, only the latest per sender, and
 * let go before anything that matters (a message, an IQ, a subscription request) or when the client is
 * active again, so the client still sees every contact's current presence, in the right order.
 */
export class CsiBuffer {
  private readonly latest = new Map<string, Element>();

  get held(): number {
    return this.latest.size;
  }

  /** Whether this stanza is held back rather than sent now. */
  hold(stanza: Element): boolean {
    if (stanza.name !== 'presence') return false;
    const type = stanza.attrs.type as string | undefined;
    if (type !== undefined && type !== 'unavailable') return false;
    const from = (stanza.attrs.from as string | undefined) ?? '';
    if (!this.latest.has(from) && this.latest.size >= MAX_HELD) return false;
    // Re-inserted so that the map's order stays the order of the latest changes.
    this.latest.delete(from);
    this.latest.set(from, stanza);
    return true;
  }

  /** Everything held, oldest change first, and nothing held any more. */
  release(): Element[] {
    const out = [...this.latest.values()];
    this.latest.clear();
    return out;
  }
}
