import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Element } from 'ltx';

/** RFC 6120 §4.9.3 conditions the parser itself can detect. */
export type ParseErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'unsupported-encoding';

/** saxes 6 fields read for exact positions; the version is pinned in package.json for this reason. */
interface SaxesInternals {
  chunk: string;
  i: number;
  chunkPosition: number;
  carriedFromPrevious: string | undefined;
  text: string;
}

export interface StreamHeader {
  /** Qualified name as written, e.g. "stream:stream". */
  name: string;
  local: string;
  uri: string;
  attrs: Record<string, string>;
}

export interface StreamHandler {
  onStreamStart(header: StreamHeader): void;
  /** A complete top-level child of the stream; its namespace is declared on it, so it stands alone. */
  onStanza(stanza: Element): void;
  onStreamEnd(): void;
  onError(condition: ParseErrorCondition, text: string): void;
}

export interface StreamParserOptions {
  /** Largest top-level element, in characters of its text; bigger ones fail before being buffered whole. */
  maxStanzaSize: number;
  /** Deepest nesting inside a stanza; deeper ones fail (serialising them would exhaust the stack). */
  maxDepth?: number;
}

/**
 * A strict, restartable streaming XML tokenizer for one XMPP stream, on top of saxes (exact on any chunking,
 * rejects what XML forbids). It adds what XMPP needs: bytes decoded as UTF-8 across chunk boundaries, RFC 6120
 * §11 restricted XML, a stanza size and depth limit, ltx Elements per stanza, and restart() for stream
 * restarts that may arrive in the same chunk as the stanza that caused them.
 */
export class StreamParser {
  private decoder = new TextDecoder('utf-8', { fatal: true });
  private sax!: SaxesParser<{ xmlns: true; position: true }>;
  private depth = 0;
  private stack: Element[] = [];
  private stanzaStart = 0;
  private failed = false;
  private ended = false;
  private restartRequested = false;
  private readonly maxDepth: number;

  constructor(private readonly handler: StreamHandler, private readonly options: StreamParserOptions) {
    this.maxDepth = options.maxDepth ?? 64;
    this.init();
  }

  /** Feed raw bytes from the socket. */
  write(data: Buffer | string): void {
    if (this.failed || this.ended) return;
    let text: string;
    if (typeof data === 'string') text = data;
    else {
      try {
        text = this.decoder.decode(data, { stream: true });
      } catch {
        this.fail('not-well-formed', 'invalid UTF-8');
        return;
      }
    }
    this.feed(text);
  }

  /** Begin a new stream document (after STARTTLS or SASL success); input after the current stanza goes to it. */
  restart(): void {
    if (this.writing) this.restartRequested = true;
    else this.init();
  }

  /** Characters the current stanza has taken so far (0 between stanzas). */
  get pendingStanzaSize(): number {
    return this.depth >= 2 ? this.position() - this.stanzaStart : 0;
  }

  /**
   * Characters consumed so far. saxes' own `position` double-counts the last chunk between writes (it adds
   * the chunk length before resetting its index), so read the two fields it is made of.
   */
  private position(): number {
    const sax = this.sax as unknown as SaxesInternals;
    return sax.chunkPosition + (this.writing ? sax.i : 0);
  }

  private feed(text: string): void {
    while (text.length > 0 && !this.failed && !this.ended) {
      this.writing = true;
      try {
        this.sax.write(text);
      } finally {
        this.writing = false;
      }
      if (this.restartRequested) {
        const sax = this.sax as unknown as SaxesInternals;
        const rest = sax.chunk.slice(this.restartPoint) + (sax.carriedFromPrevious ?? '');
        this.init();
        text = rest;
        continue;
      }
      this.checkSize();
      return;
    }
  }

  private restartPoint = 0;
  private writing = false;

  private init(): void {
    this.restartRequested = false;
    this.depth = 0;
    this.stack = [];
    this.ended = false;
    const sax = new SaxesParser({ xmlns: true, position: true });
    this.sax = sax;
    sax.on('xmldecl', (decl) => {
      if (decl.encoding !== undefined && decl.encoding.toUpperCase() !== 'UTF-8') this.fail('unsupported-encoding', 'only UTF-8 is supported');
    });
    sax.on('doctype', () => this.fail('restricted-xml', 'document type declarations are not allowed'));
    sax.on('comment', () => this.fail('restricted-xml', 'comments are not allowed'));
    sax.on('processinginstruction', () => this.fail('restricted-xml', 'processing instructions are not allowed'));
    sax.on('error', (err) => {
      const restricted = /undefined entity|entity/i.test(err.message);
      this.fail(restricted ? 'restricted-xml' : 'not-well-formed', err.message.replace(/^[^:]*:\d+:\d+: /, ''));
    });
    sax.on('opentag', (tag) => this.open(tag));
    sax.on('closetag', () => this.close());
    sax.on('text', (text) => this.text(text));
    sax.on('cdata', (text) => this.text(text));
  }

  private open(tag: SaxesTagNS): void {
    if (this.ignoring()) return;
    if (this.depth === 0) {
      const attrs: Record<string, string> = {};
      for (const attr of Object.values(tag.attributes)) attrs[attr.name] = attr.value;
      this.depth = 1;
      this.handler.onStreamStart({ name: tag.name, local: tag.local, uri: tag.uri, attrs });
      return;
    }
    if (this.depth - 1 >= this.maxDepth) {
      this.fail('policy-violation', `elements nested deeper than ${this.maxDepth}`);
      return;
    }
    const attrs: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) attrs[attr.name] = attr.value;
    if (this.depth === 1) {
      this.stanzaStart = this.position();
      // Declare the namespace on the stanza itself, so it can be routed to any other stream unchanged.
      if (tag.prefix) {
        if (attrs[`xmlns:${tag.prefix}`] === undefined) attrs[`xmlns:${tag.prefix}`] = tag.uri;
      } else if (attrs.xmlns === undefined) attrs.xmlns = tag.uri;
    }
    const el = new Element(tag.name, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.cnode(el);
    this.stack.push(el);
    this.depth++;
    if (tag.isSelfClosing) return;
    this.checkSize();
  }

  private close(): void {
    if (this.ignoring()) return;
    if (this.depth === 1) {
      this.depth = 0;
      this.ended = true;
      this.handler.onStreamEnd();
      return;
    }
    const el = this.stack.pop();
    this.depth--;
    if (this.depth === 1 && el) {
      if (this.position() - this.stanzaStart > this.options.maxStanzaSize) {
        this.fail('policy-violation', `stanza larger than ${this.options.maxStanzaSize} bytes`);
        return;
      }
      this.restartPoint = (this.sax as unknown as SaxesInternals).i;
      this.handler.onStanza(el);
    }
  }

  private text(text: string): void {
    if (this.ignoring() || this.depth < 2) return;
    this.stack[this.stack.length - 1].t(text);
  }

  private checkSize(): void {
    if (this.failed) return;
    if (this.pendingStanzaSize > this.options.maxStanzaSize) {
      this.fail('policy-violation', `stanza larger than ${this.options.maxStanzaSize} bytes`);
    } else if (this.depth === 1 && (this.sax as unknown as SaxesInternals).text.length > this.options.maxStanzaSize) {
      // saxes holds text between stanzas until the next tag: a whitespace flood must not grow it without end.
      this.fail('policy-violation', `more than ${this.options.maxStanzaSize} characters of text between stanzas`);
    }
  }

  /** After an error, a stream end or a requested restart, the rest of this document is not ours to handle. */
  private ignoring(): boolean {
    return this.failed || this.ended || this.restartRequested;
  }

  private fail(condition: ParseErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.stack = [];
    this.handler.onError(condition, text);
  }
}
