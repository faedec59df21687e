import { Element } from 'ltx';

/*
 * The fast path of the stream parser: one whole stanza read straight from the text, for the XML that clients
 * and servers actually send (ASCII names, no prefixes but xml:, predefined and character references). What
 * it does not know for certain to be well-formed and normal it leaves, untouched, to saxes, which is strict
 * about everything and names the error: so the fast path never accepts what the strict parser would refuse,
 * and never needs to report an error itself.
 */

/** The stanza is cut short by the end of the text: read it again with more. */
export const INCOMPLETE = 0;
/** Something only the strict parser may judge (or a bound it enforces): hand the text to it. */
export const UNSUPPORTED = 1;
export type Scan = { stanza: Element; end: number } | typeof INCOMPLETE | typeof UNSUPPORTED;

const GT = 0x3e;
const SLASH = 0x2f;
const EQ = 0x3d;
const APOS = 0x27;
const QUOT = 0x22;

// Sticky: each is tried at lastIndex only, so matching never scans ahead.
const NAME = /[A-Za-z_][A-Za-z0-9_.-]*/y;
const ATTR_NAME = /[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?/y;
/**
 * Characters XML forbids (C0 controls but tab and LF, U+FFFE, U+FFFF, unpaired surrogates), and CR, which XML
 * normalises: wherever one appears the strict parser decides, and rewrites.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const SUSPECT = /[\x00-\x08\x0b-\x1f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** In an attribute value: markup, a reference to decode, or whitespace XML turns into spaces. */
const ATTR_SPECIAL = /[<&\t\n]/;
const TEXT_SPECIAL = /[&>]/;
const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/**
 * Read the stanza whose "<" is at `start`. `streamNs` is the stream's default namespace, declared on the
 * stanza when it does not declare one, as the strict parser does; `maxDepth` bounds the nesting.
 */
export function scanStanza(s: string, start: number, streamNs: string, maxDepth: number): Scan {
  const stack: Element[] = [];
  let stanza: Element | undefined;
  let i = start;
  for (;;) {
    // s[i] is "<".
    if (i + 1 >= s.length) return INCOMPLETE;
    if (s.charCodeAt(i + 1) === SLASH) {
      const open = stack.pop();
      if (open === undefined) return UNSUPPORTED;
      const after = i + 2 + open.name.length;
      if (after >= s.length) return INCOMPLETE;
      if (!s.startsWith(open.name, i + 2)) return UNSUPPORTED;
      const gt = skipSpace(s, after);
      if (gt >= s.length) return INCOMPLETE;
      if (s.charCodeAt(gt) !== GT) return UNSUPPORTED;
      i = gt + 1;
      if (stack.length === 0) return finish(s, start, i, stanza!);
    } else {
      const tag = startTag(s, i, stack.length === 0 ? streamNs : undefined);
      if (typeof tag === 'number') return tag;
      if (stack.length >= maxDepth) return UNSUPPORTED;
      if (stanza === undefined) stanza = tag.element;
      else stack[stack.length - 1].cnode(tag.element);
      i = tag.end;
      if (!tag.selfClosing) stack.push(tag.element);
      else if (stack.length === 0) return finish(s, start, i, stanza);
    }
    const lt = s.indexOf('<', i);
    if (lt === -1) return INCOMPLETE;
    if (lt > i) {
      let text = s.slice(i, lt);
      if (TEXT_SPECIAL.test(text)) {
        if (text.includes(']]>')) return UNSUPPORTED;
        const decoded = decode(text);
        if (decoded === undefined) return UNSUPPORTED;
        text = decoded;
      }
      stack[stack.length - 1].t(text);
    }
    i = lt;
  }
}

interface StartTag {
  element: Element;
  end: number;
  selfClosing: boolean;
}

/** The start tag at `i`; `stanzaNs` is given for the stanza itself. */
function startTag(s: string, i: number, stanzaNs: string | undefined): StartTag | typeof INCOMPLETE | typeof UNSUPPORTED {
  NAME.lastIndex = i + 1;
  // Comments, CDATA, processing instructions and prefixed or non-ASCII names all fail here.
  if (!NAME.test(s)) return UNSUPPORTED;
  let j = NAME.lastIndex;
  let name = common(s, i + 1, j, ELEMENT_NAMES);
  if (name === undefined) {
    name = s.slice(i + 1, j);
    if (/^xml/i.test(name)) return UNSUPPORTED;
  }
  const attrs: Record<string, string> = {};
  for (;;) {
    const spaced = skipSpace(s, j);
    const hadSpace = spaced > j;
    j = spaced;
    if (j >= s.length) return INCOMPLETE;
    const c = s.charCodeAt(j);
    if (c === GT || c === SLASH) {
      if (c === SLASH) {
        if (j + 1 >= s.length) return INCOMPLETE;
        if (s.charCodeAt(j + 1) !== GT) return UNSUPPORTED;
      }
      const xmlns = attrs.xmlns;
      if (xmlns === XML_NS || xmlns === XMLNS_NS) return UNSUPPORTED;
      if (stanzaNs !== undefined && xmlns === undefined && stanzaNs !== '') attrs.xmlns = stanzaNs;
      // The attributes become the element's own: the constructor would copy them into a new object.
      const element = new Element(name);
      element.attrs = attrs;
      return { element, end: c === SLASH ? j + 2 : j + 1, selfClosing: c === SLASH };
    }
    if (!hadSpace) return UNSUPPORTED;
    ATTR_NAME.lastIndex = j;
    if (!ATTR_NAME.test(s)) return UNSUPPORTED;
    const nameEnd = ATTR_NAME.lastIndex;
    let attr = common(s, j, nameEnd, ATTRIBUTE_NAMES);
    if (attr === undefined) {
      attr = s.slice(j, nameEnd);
      // xml:lang and its kind, and xmlns; other prefixes, and other names XML reserves, are for saxes.
      if (/^xml/i.test(attr) && attr !== 'xmlns' && !attr.startsWith('xml:')) return UNSUPPORTED;
      if (attr.includes(':') && !attr.startsWith('xml:')) return UNSUPPORTED;
      if (attr === '__proto__') return UNSUPPORTED;
    }
    if (Object.hasOwn(attrs, attr)) return UNSUPPORTED;
    let k = skipSpace(s, nameEnd);
    if (k >= s.length) return INCOMPLETE;
    if (s.charCodeAt(k) !== EQ) return UNSUPPORTED;
    k = skipSpace(s, k + 1);
    if (k >= s.length) return INCOMPLETE;
    const quote = s.charCodeAt(k);
    if (quote !== APOS && quote !== QUOT) return UNSUPPORTED;
    const close = s.indexOf(quote === APOS ? "'" : '"', k + 1);
    if (close === -1) return INCOMPLETE;
    let value = s.slice(k + 1, close);
    if (ATTR_SPECIAL.test(value)) {
      if (value.includes('<') || value.includes('\t') || value.includes('\n')) return UNSUPPORTED;
      const decoded = decode(value);
      if (decoded === undefined) return UNSUPPORTED;
      value = decoded;
    }
    attrs[attr] = value;
    j = close + 1;
  }
}

/**
 * The names nearly every stanza has. Read as these constants, a name costs no slice of the text, and as a
 * property key no lookup in V8's table of internalized strings.
 */
const ELEMENT_NAMES = ['message', 'presence', 'iq', 'body', 'thread', 'subject', 'show', 'status', 'priority', 'query', 'item', 'received', 'request', 'x', 'c', 'delay', 'ping', 'error', 'active', 'composing'];
const ATTRIBUTE_NAMES = ['to', 'from', 'id', 'type', 'xmlns', 'xml:lang', 'by', 'name', 'jid', 'subscription', 'node', 'ver', 'hash', 'stamp'];

/** The one of `names` that s[start, end) is, if any. */
function common(s: string, start: number, end: number, names: readonly string[]): string | undefined {
  const length = end - start;
  for (let n = 0; n < names.length; n++) {
    const name = names[n];
    if (name.length === length && s.startsWith(name, start)) return name;
  }
  return undefined;
}

const SP = 0x20;
const TAB = 0x09;
const LF = 0x0a;

/** Past the spaces, tabs and line feeds at `i` (CR is the strict parser's: SUSPECT sends it there). */
function skipSpace(s: string, i: number): number {
  // A loop, not a sticky regex: most calls skip nothing or one space, and a regex exec was a tenth of parsing.
  for (let c = s.charCodeAt(i); c === SP || c === TAB || c === LF; c = s.charCodeAt(++i));
  return i;
}

/** Checks that concern the stanza's whole text, done once it is known to be complete. */
function finish(s: string, start: number, end: number, stanza: Element): Scan {
  return SUSPECT.test(s.slice(start, end)) ? UNSUPPORTED : { stanza, end };
}

/** Text with its references replaced; undefined for a reference that is not predefined or not a Char. */
function decode(raw: string): string | undefined {
  let out = '';
  let last = 0;
  for (let amp = raw.indexOf('&'); amp !== -1; amp = raw.indexOf('&', last)) {
    const semi = raw.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > 10) return undefined;
    const ref = raw.slice(amp + 1, semi);
    let char = PREDEFINED[ref];
    if (char === undefined || !Object.hasOwn(PREDEFINED, ref)) {
      const cp = /^#[0-9]{1,7}$/.test(ref) ? Number(ref.slice(1)) : /^#x[0-9a-fA-F]{1,6}$/.test(ref) ? parseInt(ref.slice(2), 16) : -1;
      if (!isXmlChar(cp)) return undefined;
      char = String.fromCodePoint(cp);
    }
    out += raw.slice(last, amp) + char;
    last = semi + 1;
  }
  return out + raw.slice(last);
}

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

