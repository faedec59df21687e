import fc from 'fast-check';
import { Element } from 'ltx';

/*
 * fast-check arbitraries shared by the fuzz properties of the parser and of client negotiation. Everything
 * here produces bytes as a peer could send them; nothing in it knows how the server reads them.
 */

/** Whether a code point is an XML 1.0 Char. Tab, CR and LF are left out on purpose: see xmlText. */
function isXmlChar(cp: number): boolean {
  return (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/**
 * One character that XML lets through unchanged: mostly ASCII (where the markup characters are), with the
 * escaped ones, 2-, 3- and 4-byte UTF-8 and characters beside the surrogate range. Tab, CR and LF are
 * excluded because XML normalises them (CR LF to LF in text, all three to a space in attributes), so a
 * round trip could not compare serialisations byte for byte.
 */
export const xmlChar: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 2, arbitrary: fc.constantFrom(0x26, 0x3c, 0x3e, 0x22, 0x27) }, // & < > " '
    { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0x7ff }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x800, max: 0xffff }) },
    { weight: 1, arbitrary: fc.integer({ min: 0x10000, max: 0x10ffff }) },
    { weight: 1, arbitrary: fc.constantFrom(0xd7ff, 0xe000, 0xfffd, 0x10000, 0x10ffff, 0xa0, 0x2028) },
  )
  .filter(isXmlChar)
  .map((cp) => String.fromCodePoint(cp));

export const xmlText = (maxLength: number, minLength = 0): fc.Arbitrary<string> => fc.string({ unit: xmlChar, minLength, maxLength });

const ATTR_NAMES = ['to', 'from', 'id', 'type', 'xml:lang', 'a', 'b-c', 'x_y.z', 'node'];
const CHILD_NS = [undefined, 'urn:xmpp:ping', 'jabber:iq:roster', 'urn:example:fuzz', 'http://jabber.org/protocol/caps'];
const CHILD_NAMES = ['body', 'subject', 'status', 'query', 'ping', 'item', 'x', 'thread'];

const attributes: fc.Arbitrary<[string, string][]> = fc.uniqueArray(fc.tuple(fc.constantFrom(...ATTR_NAMES), xmlText(12)), {
  maxLength: 4,
  selector: ([name]) => name,
});

interface Node {
  name: string;
  xmlns: string | undefined;
  attrs: [string, string][];
  /** Text (never empty: an empty text node serialises as <a></a> but parses back as <a/>) or child elements. */
  content: string | Node[];
}

const node: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.record({
    name: fc.constantFrom(...CHILD_NAMES),
    xmlns: fc.constantFrom(...CHILD_NS),
    attrs: attributes,
    content: fc.oneof({ depthSize: 'small', withCrossShrink: true }, xmlText(20, 1), fc.array(tie('node'), { maxLength: 2 })),
  }),
})).node;

function build(n: Node): Element {
  const attrs: Record<string, string> = {};
  if (n.xmlns !== undefined) attrs.xmlns = n.xmlns;
  for (const [k, v] of n.attrs) attrs[k] = v;
  const el = new Element(n.name, attrs);
  if (typeof n.content === 'string') el.t(n.content);
  else for (const child of n.content) el.cnode(build(child));
  return el;
}

/**
 * A small message, presence or iq in jabber:client, as ltx builds it. The xmlns comes first among the
 * attributes, where the parser leaves it, so that a stanza read back serialises exactly as it was sent.
 */
export const stanza: fc.Arbitrary<Element> = fc
  .record({ name: fc.constantFrom('message', 'presence', 'iq'), attrs: attributes, children: fc.array(node, { maxLength: 3 }) })
  .map(({ name, attrs, children }) => {
    const el = new Element(name, { xmlns: 'jabber:client', ...Object.fromEntries(attrs.filter(([k]) => k !== 'xmlns')) });
    for (const child of children) el.cnode(build(child));
    return el;
  });

/** Pieces of XML and of UTF-8 that random bytes rarely hit but a parser must survive anywhere. */
const TOKENS = [
  '<', '>', '/>', '</', '<message>', '</message>', '<iq ', "type='get'", '<presence/>', '</stream:stream>', '</stream:', '<stream:stream>',
  '&amp;', '&lt;', '&#x0;', '&#xD800;', '&#1114112;', '&nbsp;', '&', '&#', ';', '<![CDATA[', ']]>', '<!--', '-->', '<?xml ', '?>', '<!DOCTYPE x>',
  "xmlns='jabber:client'", "xmlns:p='urn:x'", 'p:', 'xmlns:', '=', "'", '"', ' ', '\n', '\r', '\t', '\0',
  '\xc3', '\xa9', '\xe4\xb8', '\xf0\x9f\x98', '\xed\xa0\x80', '\xef\xbf\xbe', '\xff', '\xfe',
];

/** Random bytes, half of the time assembled from XML-ish tokens (given as latin1, so '\xc3' is one byte). */
export const garbage = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.oneof(
    fc.uint8Array({ maxLength }).map((a) => Buffer.from(a)),
    fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 4 })), { maxLength: Math.ceil(maxLength / 4) }).map((parts) => Buffer.from(parts.join(''), 'latin1')),
  );

export type Mutation = { kind: 'insert' | 'replace'; at: number; byte: number } | { kind: 'delete'; at: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
);

/** Apply byte-level mutations; positions are taken modulo the current length. */
export function mutate(buf: Buffer, mutations: Mutation[]): Buffer {
  const bytes = [...buf];
  for (const m of mutations) {
    if (m.kind === 'insert') bytes.splice(m.at % (bytes.length + 1), 0, m.byte);
    else if (bytes.length === 0) continue;
    else if (m.kind === 'replace') bytes[m.at % bytes.length] = m.byte;
    else bytes.splice(m.at % bytes.length, 1);
  }
  return Buffer.from(bytes);
}

/** Cut points for a chunking; any number of them, anywhere, including empty chunks. */
export const cuts: fc.Arbitrary<number[]> = fc.array(fc.nat(), { maxLength: 24 });

/** Split a buffer at the cut points (taken modulo its length + 1): the same bytes, read the way a socket might. */
export function chunk(buf: Buffer, points: number[]): Buffer[] {
  const at = points.map((p) => p % (buf.length + 1)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of [...at, buf.length]) {
    out.push(buf.subarray(prev, cut));
    prev = cut;
  }
  return out;
}
