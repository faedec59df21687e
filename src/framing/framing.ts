import type { Element } from 'ltx';
import type { Transport } from '../transport/transport.js';
import { NS } from '../xmpp/ns.js';
import { escapeAttr } from '../xmpp/serialize.js';

/** The attributes of our opening of a stream. */
export interface StreamOpen {
  /** The stream's content namespace: jabber:client or jabber:server. */
  xmlns: string;
  from?: string;
  to?: string;
  id?: string;
  /** Declare the dialback prefix (XEP-0220), on server streams. */
  dialback?: boolean;
}

/**
 * How XMPP rides on a transport: an XML stream (RFC 6120 §4), or RFC 7395's one element per WebSocket
 * message. A framing owns its opening, its closing, its keepalive and the parsing of what arrives.
 */
export interface Framing {
  /** The element that opens a stream on this framing: <stream:stream> or RFC 7395's <open/>. */
  readonly opening: { readonly local: string; readonly uri: string; readonly name: string };
  /** Whether the opening declares the content namespace (jabber:client) that the stream must check. */
  readonly declaresContent: boolean;
  /** Our opening of the stream, as bytes to write. */
  open(attrs: StreamOpen): string;
  /** A stanza or nonza as it goes on this framing. */
  element(el: Element): string;
  /**
   * The watchdog's XEP-0199 ping, the bytes element() writes for it, without building the element: every
   * idle session gets one each probe interval, and building and serialising it was a third of what a ping
   * allocated.
   */
  ping(id: string, from: string, to: string): string;
  /** Our end of the stream; `seeOtherUri` sends the peer elsewhere where the framing can say so. */
  close(seeOtherUri?: string): string;
  /** Something the peer's network sees as traffic and the peer's XMPP layer ignores. */
  keepalive(transport: Transport): void;
  /** Bytes from the transport, to the handler as stream events. */
  parse(chunk: Buffer): void;
  /** A new stream on the same transport (after STARTTLS or SASL); `discardRest` drops bytes already read. */
  restart(discardRest: boolean): void;
}

/** `<iq type="get" id from to><ping/></iq>` as serialize() writes it, with the framing's xmlns before or after. */
export const pingText = (before: string, id: string, from: string, to: string, after: string): string =>
  `<iq${before} type="get" id="${escapeAttr(id)}" from="${escapeAttr(from)}" to="${escapeAttr(to)}"${after}><ping xmlns="${NS.PING}"/></iq>`;
