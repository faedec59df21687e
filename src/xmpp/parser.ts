import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Element } from 'ltx';
import { detached } from './detached.js';
import { INCOMPLETE, scanStanza, UNSUPPORTED } from './fast-stanza.js';
import { escapeAttr } from './serialize.js';
import { Utf8Stream } from './utf8.js';

/**
 * saxes with its handlers installed while it is being constructed. Set afterwards with on(), our nine
 * handlers push the parser past V8's limit of fast properties, and every character it reads goes through a
 * dictionary lookup: we measured saxes falling from ~30 to ~7 MB/s that way.
 */
class XmppSax extends SaxesParser<{ xmlns: true; position: true }> {
  constructor(install: (sax: XmppSax) => void) {
    super({ xmlns: true, position: true });
    install(this);
  }
}

/**
 * saxes reports a close tag to its handler before it checks the name: a `</message>` straight inside the
 * stream, or `</iq>` closing a `<message>`, pops the open element (the stream itself, or a stanza that then
 * goes out whole) and only then fails. Check the name first, so a wrong close tag is an error and nothing else.
 */
const saxesCloseTag = (SaxesParser.prototype as unknown as SaxesInternals).closeTag;
(XmppSax.prototype as unknown as SaxesInternals).closeTag = function closeTag(this: SaxesInternals): void {
  const open = this.tags[this.tags.length - 1];
  if (open !== undefined && this.name !== '' && this.name !== open.name) this.fail(`close tag does not match the open element <${open.name}>`);
  saxesCloseTag.call(this);
};

/** saxes' state between elements (its S_TEXT). */
const S_TEXT = 13;

/** RFC 6120 §4.9.3 conditions the parser itself can detect. */
export type ParseErrorCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation' | 'unsupported-encoding';

/** saxes 6 internals we read (and closeTag, which we guard); the version is pinned in package.json for this reason. */
interface SaxesInternals {
  chunk: string;
  i: number;
  chunkPosition: number;
  carriedFromPrevious: string | undefined;
  /** The state machine's state (S_TEXT between elements), and the text it holds until the next "<". */
  state: number;
  text: string;
  /** The name of the close tag being read, and the open elements. */
  name: string;
  tags: { name: string }[];
  closeTag(): void;
  fail(message: string): unknown;
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
  /**
   * Largest top-level element, in UTF-8 bytes of its text (as XEP-0478 max-bytes advertises); bigger ones fail
   * before being buffered whole. The same bound holds for the stream header and for text between stanzas.
   */
  maxStanzaSize: number;
  /** Deepest nesting inside a stanza; deeper ones fail (serialising them would exhaust the stack). */
  maxDepth?: number;
  /** Read ordinary stanzas with scanStanza, leaving the rest to saxes (default); off only to compare the two. */
  fastPath?: boolean;
}

/**
 * A strict, restartable streaming XML tokenizer for one XMPP stream, on top of saxes (exact on any chunking,
 * rejects what XML forbids). It adds what XMPP needs: bytes decoded as UTF-8 across chunk boundaries, RFC 6120
 * §11 restricted XML, a stanza size and depth limit, ltx Elements per stanza, and restart() for stream
 * restarts that may arrive in the same chunk as the stanza that caused them.
 */
export class StreamParser {
  private readonly decoder = new Utf8Stream();
  /**
   * Absent while the fast path reads every stanza: an idle session then holds no saxes parser (about 4 KiB),
   * only the stream header, which a new one reads again (silently) when it is needed.
   */
  private sax: XmppSax | undefined;
  /** The stream's start tag, as a new saxes parser is given it to be where the old one was. */
  private header = '';
  private reviving = false;
  private depth = 0;
  private stack: Element[] = [];
  /** The default namespace each open stanza element has when its stanza is read on its own. */
  private defaultNs: string[] = [];
  /**
   * Where the pending top-level item begins: inside a stanza, its "<"; between stanzas, the end of the last
   * one (or of the stream header), moved to the next "<" once the text before it is seen.
   */
  private stanzaStart = 0;
  /**
   * UTF-8 bytes of the pending item from stanzaStart up to the character position countedTo, which is never
   * before the current saxes chunk: its text is what we count bytes in, once, and only when a check needs them.
   */
  private countedTo = 0;
  private countedBytes = 0;
  private failed = false;
  private ended = false;
  private fast: boolean;
  private fastMisses = 0;
  /** The stream header's default namespace, which stanzas without an xmlns of their own are in. */
  private streamNs = '';
  /** Whitespace the fast path skipped since the last stanza: bounded like any text between stanzas. */
  private fastSpace = 0;
  private restartRequested = false;
  private readonly maxDepth: number;

  constructor(private readonly handler: StreamHandler, private readonly options: StreamParserOptions) {
    this.maxDepth = options.maxDepth ?? 64;
    this.fast = options.fastPath ?? true;
    this.init();
  }

  /** Feed raw bytes from the socket. */
  write(data: Buffer | string): void {
    if (this.failed || this.ended) return;
    let text: string;
    if (typeof data === 'string') text = data;
    else {
      try {
        text = this.decoder.decode(data);
      } catch {
        this.fail('not-well-formed', 'invalid UTF-8');
        return;
      }
    }
    this.feed(text);
  }

  /**
   * Begin a new stream document (after STARTTLS or SASL success); input after the current stanza goes to it,
   * unless `discardRest`: after <starttls/>, plaintext that came in the same read must never be taken as if
   * it had arrived over TLS (the STARTTLS command-injection family, CVE-2011-0411).
   */
  restart(discardRest = false): void {
    if (discardRest) this.decoder.reset();
    if (this.writing || this.scanning) {
      this.restartRequested = true;
      this.discardRest = discardRest;
    } else this.init();
  }

  /** UTF-8 bytes the current stanza has taken so far (0 between stanzas). */
  get pendingStanzaSize(): number {
    return this.depth >= 2 ? this.bytesTo(this.position()) : 0;
  }

  /**
   * Characters consumed so far. saxes' own `position` double-counts the last chunk between writes (it adds
   * the chunk length before resetting its index), so read the two fields it is made of.
   */
  private position(): number {
    const sax = this.sax as unknown as SaxesInternals | undefined;
    if (!sax) return 0;
    return sax.chunkPosition + (this.writing ? sax.i : 0);
  }

  /** Character position where saxes' current chunk begins (its chunkPosition already counts it between writes). */
  private chunkStart(): number {
    const sax = this.sax as unknown as SaxesInternals | undefined;
    if (!sax) return 0;
    return this.writing ? sax.chunkPosition : sax.chunkPosition - sax.chunk.length;
  }

  /** The pending item (stanza, header, text between stanzas) now begins at this character position. */
  private startAt(position: number): void {
    this.stanzaStart = position;
    this.countedTo = position;
    this.countedBytes = 0;
  }

  /**
   * Whether the pending item, from stanzaStart to the character position `to`, is larger than the limit in
   * UTF-8 bytes. A UTF-16 unit takes 1 to 3 bytes, so the character count alone decides but near the limit:
   * a busy stream of ordinary stanzas never pays for counting bytes.
   */
  private exceeds(to: number): boolean {
    const max = this.options.maxStanzaSize;
    const chars = to - this.stanzaStart;
    if (chars * 3 <= max) return false;
    if (chars > max) return true;
    return this.bytesTo(to) > max;
  }

  /** UTF-8 bytes from stanzaStart to the character position `to` in the current chunk, counted incrementally. */
  private bytesTo(to: number): number {
    const chunk = (this.sax as unknown as SaxesInternals | undefined)?.chunk ?? '';
    const base = this.chunkStart();
    const end = Math.min(Math.max(to, base), base + chunk.length);
    if (end > this.countedTo) this.countedBytes += utf8Length(chunk, this.countedTo - base, end - base);
    else if (end < this.countedTo) this.countedBytes -= utf8Length(chunk, end - base, this.countedTo - base);
    this.countedTo = end;
    return this.countedBytes;
  }

  private feed(text: string): void {
    while (text.length > 0 && !this.failed && !this.ended) {
      if (this.fastReady()) {
        text = text.slice(this.fastFeed(text));
        // Everything read, and saxes holds nothing: it is not needed until something only it can read.
        if (text.length === 0 && !this.ignoring() && this.depth === 1) this.sax = undefined;
        if (this.restartRequested) {
          const rest = this.discardRest ? '' : text;
          this.init();
          text = rest;
          continue;
        }
        if (text.length === 0) return;
      }
      // While the fast path is on, saxes reads up to one ">" at a time: the fast path takes over again at the
      // first boundary between stanzas, instead of after the whole read.
      const gt = this.fast ? text.indexOf('>') : -1;
      const piece = gt === -1 ? text : text.slice(0, gt + 1);
      text = text.slice(piece.length);
      const sax = this.sax ?? this.revive();
      this.writing = true;
      try {
        sax.write(piece);
      } finally {
        this.writing = false;
      }
      // The next write replaces the chunk: count what the pending item has of this one while it is here.
      if (!this.ignoring()) this.bytesTo(this.position());
      if (this.restartRequested) {
        const sax = this.sax as unknown as SaxesInternals;
        const rest = this.discardRest ? '' : sax.chunk.slice(this.restartPoint) + (sax.carriedFromPrevious ?? '') + text;
        this.init();
        text = rest;
        continue;
      }
      this.checkSize();
    }
  }

  /**
   * Whether the fast path may read what comes next: inside the stream, between stanzas, with saxes holding
   * nothing (text it held would count towards what follows). What the fast path hands back, saxes then reads
   * as if it had come next.
   */
  private fastReady(): boolean {
    if (!this.fast || this.depth !== 1 || this.ignoring()) return false;
    const sax = this.sax as unknown as SaxesInternals | undefined;
    return !sax || (sax.state === S_TEXT && sax.carriedFromPrevious === undefined && sax.text === '');
  }

  /**
   * Stanzas read by scanStanza from the start of `text`, until it meets what it leaves to saxes, a restart,
   * or the end. Returns how much of `text` it took.
   */
  private fastFeed(text: string): number {
    const max = this.options.maxStanzaSize;
    let i = 0;
    for (;;) {
      let j = i;
      while (j < text.length && isSpace(text.charCodeAt(j))) j++;
      this.fastSpace += j - i;
      if (this.fastSpace > max) {
        this.fail('policy-violation', `more than ${max} bytes between stanzas`);
        return text.length;
      }
      i = j;
      if (i === text.length) return i;
      if (text.charCodeAt(i) !== 0x3c) return i;
      const scan = scanStanza(text, i, this.streamNs, this.maxDepth);
      // A stanza cut off by the end of the read goes to saxes, which keeps what it has read (and judges it at
      // once); the fast path takes over again once saxes has read its end.
      if (scan === INCOMPLETE) return i;
      if (scan === UNSUPPORTED) {
        // A peer whose stanzas the fast path never takes (prefixes everywhere, CR LF line ends) is left to saxes.
        if (++this.fastMisses >= 16) this.fast = false;
        return i;
      }
      this.fastMisses = 0;
      if (this.tooLarge(text, i, scan.end)) return i;
      i = scan.end;
      this.fastSpace = 0;
      this.scanning = true;
      try {
        this.handler.onStanza(scan.stanza);
      } finally {
        this.scanning = false;
      }
      if (this.ignoring()) return i;
    }
  }

  /** Whether text[from, to) is over the stanza limit in UTF-8 bytes: then saxes reads it, and fails. */
  private tooLarge(text: string, from: number, to: number): boolean {
    const chars = to - from;
    const max = this.options.maxStanzaSize;
    return chars * 3 > max && (chars > max || utf8Length(text, from, to) > max);
  }

  private restartPoint = 0;
  private writing = false;
  /** The fast path is handing a stanza over: a restart asked for now waits, as during a saxes write. */
  private scanning = false;
  private discardRest = false;

  private init(): void {
    this.restartRequested = false;
    this.discardRest = false;
    this.fastSpace = 0;
    this.depth = 0;
    this.stack = [];
    this.defaultNs = [];
    this.startAt(0);
    this.ended = false;
    this.sax = this.makeSax();
  }

  /** A saxes parser inside the stream again, as the one dropped was: it reads the header, which says nothing. */
  private revive(): XmppSax {
    const sax = this.makeSax();
    this.sax = sax;
    this.reviving = true;
    this.depth = 0;
    this.writing = true;
    try {
      sax.write(this.header);
    } finally {
      this.writing = false;
      this.reviving = false;
    }
    return sax;
  }

  private makeSax(): XmppSax {
    return new XmppSax((sax) => {
      // Once this document is over (error, stream end, restart), what saxes still reports about the rest of the
      // chunk is not ours: after a restart that rest is parsed again as the new document.
      sax.on('xmldecl', (decl) => {
        if (this.ignoring()) return;
        if (decl.encoding !== undefined && decl.encoding.toUpperCase() !== 'UTF-8') this.fail('unsupported-encoding', 'only UTF-8 is supported');
      });
      sax.on('doctype', () => this.restricted('document type declarations are not allowed'));
      sax.on('comment', () => this.restricted('comments are not allowed'));
      sax.on('processinginstruction', () => this.restricted('processing instructions are not allowed'));
      sax.on('error', (err) => {
        if (this.ignoring()) return;
        const message = err.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
        // A well-formed reference to an entity XML does not predefine is restricted XML (RFC 6120 §11.1); a
        // malformed reference (bad name, empty, a character reference to a non-character) is not well-formed.
        this.fail(message.startsWith('undefined entity') ? 'restricted-xml' : 'not-well-formed', message);
      });
      sax.on('opentag', (tag) => this.open(tag));
      sax.on('closetag', () => this.close());
      sax.on('text', (text) => this.text(text));
      sax.on('cdata', (text) => this.text(text));
    });
  }

  private open(tag: SaxesTagNS): void {
    if (this.ignoring()) return;
    if (this.depth === 0) {
      if (this.reviving) {
        this.depth = 1;
        this.startAt(this.position());
        return;
      }
      if (this.exceeds(this.position())) {
        this.fail('policy-violation', `stream header larger than ${this.options.maxStanzaSize} bytes`);
        return;
      }
      // The header lives as long as the stream, so it keeps copies: saxes' strings are slices of the chunk
      // they came in, and would keep all of it.
      const attrs: Record<string, string> = {};
      for (const attr of Object.values(tag.attributes)) attrs[attr.name] = detached(attr.value);
      this.streamNs = attrs.xmlns ?? '';
      const parts = ['<', tag.name];
      for (const [k, v] of Object.entries(attrs)) parts.push(' ', k, '="', escapeAttr(v), '"');
      parts.push('>');
      this.header = parts.join('');
      this.depth = 1;
      this.startAt(this.position());
      this.handler.onStreamStart({ name: detached(tag.name), local: detached(tag.local), uri: detached(tag.uri), attrs });
      return;
    }
    if (this.depth - 1 >= this.maxDepth) {
      this.fail('policy-violation', `elements nested deeper than ${this.maxDepth}`);
      return;
    }
    const attrs: Record<string, string> = {};
    let prefixedAttrs = false;
    for (const attr of Object.values(tag.attributes)) {
      attrs[attr.name] = attr.value;
      if (attr.prefix && attr.prefix !== 'xml' && attr.prefix !== 'xmlns') prefixedAttrs = true;
    }
    // Declare on the element the namespaces it takes from the stream header (the stanza's own, and any prefix
    // or default namespace its children use), so the stanza can be routed to any other stream unchanged.
    const inherited = this.defaultNs.length > 0 ? this.defaultNs[this.defaultNs.length - 1] : '';
    if (tag.prefix) {
      if (!this.declares(tag.prefix, attrs)) attrs[`xmlns:${tag.prefix}`] = tag.uri;
    } else if (attrs.xmlns === undefined && tag.uri !== inherited) attrs.xmlns = tag.uri;
    if (prefixedAttrs) {
      for (const attr of Object.values(tag.attributes)) {
        if (attr.prefix && attr.prefix !== 'xml' && attr.prefix !== 'xmlns' && !this.declares(attr.prefix, attrs)) attrs[`xmlns:${attr.prefix}`] = attr.uri;
      }
    }
    const el = new Element(tag.name, attrs);
    const parent = this.stack[this.stack.length - 1];
    if (parent) parent.cnode(el);
    this.stack.push(el);
    this.defaultNs.push(attrs.xmlns ?? inherited);
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
    this.defaultNs.pop();
    this.depth--;
    if (this.depth === 1 && el) {
      if (this.exceeds(this.position())) {
        this.fail('policy-violation', `stanza larger than ${this.options.maxStanzaSize} bytes`);
        return;
      }
      this.restartPoint = (this.sax as unknown as SaxesInternals).i;
      this.startAt(this.position());
      this.handler.onStanza(el);
    }
  }

  private text(text: string): void {
    if (this.ignoring() || this.depth < 1) return;
    if (this.depth === 1) {
      // saxes reports text between stanzas when it meets the next "<": the next stanza starts there.
      const next = this.position() - 1;
      if (this.exceeds(next)) {
        this.fail('policy-violation', `more than ${this.options.maxStanzaSize} bytes of text between stanzas`);
      } else this.startAt(next);
      return;
    }
    this.stack[this.stack.length - 1].t(text);
  }

  /** Whether the stanza being built binds the prefix, on the new element (attrs) or an open ancestor. */
  private declares(prefix: string, attrs: Record<string, string>): boolean {
    const name = `xmlns:${prefix}`;
    if (attrs[name] !== undefined) return true;
    for (let i = this.stack.length - 1; i >= 0; i--) if (this.stack[i].attrs[name] !== undefined) return true;
    return false;
  }

  private checkSize(): void {
    if (this.failed || this.ended) return;
    if (!this.exceeds(this.position())) return;
    if (this.depth >= 2) this.fail('policy-violation', `stanza larger than ${this.options.maxStanzaSize} bytes`);
    else {
      // saxes holds what comes before the next element (text between stanzas, a start tag, the stream header)
      // until it is complete: a flood of it must not grow without end.
      const what = this.depth === 1 ? 'bytes between stanzas' : 'bytes before the stream header ends';
      this.fail('policy-violation', `more than ${this.options.maxStanzaSize} ${what}`);
    }
  }

  /** After an error, a stream end or a requested restart, the rest of this document is not ours to handle. */
  private ignoring(): boolean {
    return this.failed || this.ended || this.restartRequested;
  }

  private restricted(text: string): void {
    if (!this.ignoring()) this.fail('restricted-xml', text);
  }

  private fail(condition: ParseErrorCondition, text: string): void {
    if (this.failed) return;
    this.failed = true;
    this.stack = [];
    this.defaultNs = [];
    this.handler.onError(condition, text);
  }
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x09;

/** UTF-8 bytes of text[from, to): Buffer.byteLength counts natively; lone surrogates count 3, as they encode. */
function utf8Length(text: string, from: number, to: number): number {
  return Buffer.byteLength(text.slice(from, to), 'utf8');
}
