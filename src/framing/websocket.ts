import { Element } from 'ltx';
import type { Transport } from '../transport/transport.js';
import { NS } from '../xmpp/ns.js';
import { StreamParser, type ParseErrorCondition, type StreamHandler } from '../xmpp/parser.js';
import { pingText, type Framing, type StreamOpen } from './framing.js';
import { serialize } from '../xmpp/serialize.js';

/**
 * What the parser is fed before the first message and after each restart: every message is then parsed as a
 * child of a stream whose default namespace is jabber:client, as a stanza inside an XML stream would be, so
 * the same strict parser (restricted XML, size and depth limits) reads both framings.
 */
const CONTEXT = `<stream:stream xmlns='${NS.CLIENT}' xmlns:stream='${NS.STREAM}'>`;

/**
 * RFC 7395: one whole element per WebSocket text message; the stream opens with <open/> and ends with
 * <close/> in urn:ietf:params:xml:ns:xmpp-framing, a restart is a new <open/>, and there is no whitespace
 * anywhere, keepalives included: a ping frame keeps the connection instead.
 */
export class WebSocketFraming implements Framing {
  readonly opening = { local: 'open', uri: NS.FRAMING, name: `<open/> in ${NS.FRAMING}` };
  readonly declaresContent = false;
  private readonly parser: StreamParser;
  /** The elements of the message being parsed: RFC 7395 §3.3.3 allows exactly one, so none is handled before the end. */
  private elements: Element[] = [];
  private failed = false;
  /** The next element must open the stream: the first one, and the first after a restart. */
  private awaitingOpen = true;

  constructor(private readonly handler: StreamHandler, maxStanzaSize: number) {
    this.parser = new StreamParser(
      {
        onStreamStart: () => undefined, // our own context, not the peer's
        onStanza: (el) => this.elements.push(el),
        onStreamEnd: () => this.fail('not-well-formed', 'a WebSocket message closed the stream element itself'),
        onError: (condition, text) => this.fail(condition, text),
      },
      { maxStanzaSize },
    );
    this.parser.write(CONTEXT);
  }

  open(attrs: StreamOpen): string {
    const open = new Element('open', { xmlns: NS.FRAMING, id: attrs.id, from: attrs.from, to: attrs.to, version: '1.0', 'xml:lang': 'en' });
    for (const key of ['id', 'from', 'to'] as const) if (attrs[key] === undefined) delete open.attrs[key];
    return serialize(open);
  }

  /** Each message stands alone: stanzas carry jabber:client, stream-level elements declare their prefix. */
  element(el: Element): string {
    if (el.name.startsWith('stream:')) {
      if (el.attrs['xmlns:stream'] !== undefined) return serialize(el);
      return standalone(el, { 'xmlns:stream': NS.STREAM, ...el.attrs });
    }
    if (el.attrs.xmlns !== undefined) return serialize(el);
    return standalone(el, { xmlns: NS.CLIENT, ...el.attrs });
  }

  ping(id: string, from: string, to: string): string {
    return pingText(` xmlns="${NS.CLIENT}"`, id, from, to, '');
  }

  close(seeOtherUri?: string): string {
    const attrs: Record<string, string> = { xmlns: NS.FRAMING };
    if (seeOtherUri) attrs['see-other-uri'] = seeOtherUri;
    return serialize(new Element('close', attrs));
  }

  /** A ping frame: RFC 7395 §3.4 allows no whitespace, and a pong proves the peer there. */
  keepalive(transport: Transport): void {
    transport.ping?.();
  }

  /** One WebSocket message: parsed whole, then handled if it was exactly one element. */
  parse(chunk: Buffer): void {
    if (this.failed) return;
    this.elements = [];
    this.parser.write(chunk);
    if (this.failed) return;
    if (this.parser.pendingStanzaSize > 0 || this.elements.length > 1) return this.fail('not-well-formed', 'each WebSocket message must hold one whole element (RFC 7395 §3.3.3)');
    if (this.elements.length === 0) return this.fail('not-well-formed', 'a WebSocket message with no element (RFC 7395 §3.3.3); whitespace is not allowed');
    this.handle(this.elements[0]);
  }

  restart(): void {
    this.awaitingOpen = true;
    this.parser.restart(false);
    this.parser.write(CONTEXT);
  }

  private handle(el: Element): void {
    const framing = el.attrs.xmlns === NS.FRAMING;
    if (this.awaitingOpen || (framing && el.name === 'open')) {
      // Whatever comes first is the stream's opening, and is checked as one: anything but <open/> is refused.
      this.awaitingOpen = false;
      const [prefix, local] = el.name.includes(':') ? el.name.split(':') : ['', el.name];
      const uri = (prefix ? el.attrs[`xmlns:${prefix}`] : el.attrs.xmlns) as string | undefined;
      return this.handler.onStreamStart({ name: el.name, local, uri: uri ?? '', attrs: { ...(el.attrs as Record<string, string>) } });
    }
    if (framing && el.name === 'close') return this.handler.onStreamEnd();
    this.handler.onStanza(el);
  }

  private fail(condition: ParseErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.handler.onError(condition, text);
  }
}

function standalone(el: Element, attrs: Record<string, string>): string {
  const copy = new Element(el.name, attrs);
  copy.children = el.children;
  return serialize(copy);
}
