import { SaxesParser } from 'saxes';
import type { Element } from 'ltx';
import { StreamParser, type ParseErrorCondition, type StreamHandler, type StreamHeader, type StreamParserOptions } from '../../src/xmpp/parser';

/*
 * Unit tests for the XMPP stream parser. Every test asserts what the server sees: the ordered list of handler
 * calls (stream start with its header, each stanza as it serialises, stream end, the error condition).
 */

const NS_CLIENT = 'jabber:client';
const NS_STREAM = 'http://etherx.jabber.org/streams';
const XML_DECL = "<?xml version='1.0' encoding='UTF-8'?>";
const HEADER = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' to='example.com' version='1.0' xml:lang='en'>`;
const OPEN = XML_DECL + HEADER;

type Event =
  | { type: 'start'; name: string; local: string; uri: string; attrs: Record<string, string> }
  | { type: 'stanza'; xml: string }
  | { type: 'end' }
  | { type: 'error'; condition: ParseErrorCondition }
  | { type: 'thrown'; message: string };

/** A StreamHandler that records what the server would see; write() records a throw instead of propagating it. */
class Recorder implements StreamHandler {
  readonly events: Event[] = [];
  readonly stanzas: Element[] = [];
  readonly errorTexts: string[] = [];
  readonly parser: StreamParser;
  onStanzaHook?: (stanza: Element) => void;

  constructor(options: Partial<StreamParserOptions> = {}) {
    this.parser = new StreamParser(this, { maxStanzaSize: 1 << 20, ...options });
  }

  onStreamStart(header: StreamHeader): void {
    this.events.push({ type: 'start', name: header.name, local: header.local, uri: header.uri, attrs: { ...header.attrs } });
  }

  onStanza(stanza: Element): void {
    this.stanzas.push(stanza);
    this.events.push({ type: 'stanza', xml: stanza.toString() });
    this.onStanzaHook?.(stanza);
  }

  onStreamEnd(): void {
    this.events.push({ type: 'end' });
  }

  onError(condition: ParseErrorCondition, text: string): void {
    this.events.push({ type: 'error', condition });
    this.errorTexts.push(text);
  }

  write(data: Buffer | string): void {
    try {
      this.parser.write(data);
    } catch (err) {
      this.events.push({ type: 'thrown', message: String(err) });
    }
  }

  writeAll(chunks: Iterable<Buffer | string>): this {
    for (const chunk of chunks) this.write(chunk);
    return this;
  }

  get types(): string[] {
    return this.events.map((e) => (e.type === 'error' ? `error:${e.condition}` : e.type));
  }
}

function parse(input: Buffer | string | (Buffer | string)[], options: Partial<StreamParserOptions> = {}): Recorder {
  return new Recorder(options).writeAll(Array.isArray(input) ? input : [input]);
}

/** mulberry32: a tiny deterministic PRNG, so every chunking is reproducible from its seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Split a buffer at the given byte offsets. */
function splitAt(buf: Buffer, ...cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of [...cuts, buf.length]) {
    out.push(buf.subarray(prev, cut));
    prev = cut;
  }
  return out;
}

function chunksOf(buf: Buffer | string, size: number): (Buffer | string)[] {
  const out: (Buffer | string)[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.slice(i, i + size));
  return out;
}

/** Feed chunks in turn; the index of the chunk at which the parser reported policy-violation, or -1. */
function feedUntilPolicyViolation(rec: Recorder, chunks: (Buffer | string)[]): number {
  let failedAt = -1;
  chunks.forEach((chunk, i) => {
    rec.write(chunk);
    if (failedAt < 0 && rec.types.includes('error:policy-violation')) failedAt = i;
  });
  return failedAt;
}

/** Element names and namespace URIs, in document order, of an XML text parsed on its own. */
function namespacesOf(xml: string, skipRoot = false): string[] {
  const sax = new SaxesParser({ xmlns: true });
  const out: string[] = [];
  let depth = 0;
  sax.on('opentag', (tag) => {
    if (!(skipRoot && depth === 0)) {
      out.push(`${tag.name}=${tag.uri}`);
      for (const attr of Object.values(tag.attributes)) if (attr.prefix && attr.prefix !== 'xmlns') out.push(`@${attr.name}=${attr.uri}`);
    }
    if (!tag.isSelfClosing) depth++;
  });
  sax.on('closetag', (tag) => {
    if (!tag.isSelfClosing) depth--;
  });
  sax.write(xml).close();
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// A realistic client stream
// ---------------------------------------------------------------------------------------------------------------

const BODY_SOURCE = "Wherefore art thou? &amp; &lt;tag&gt; &apos;single&apos; &quot;double&quot; &#x1F600; &#233;&#x4E2D; é 中 😀 ok";
const BODY_TEXT = `Wherefore art thou? & <tag> 'single' "double" 😀 é中 é 中 😀 ok`;
const CDATA_TEXT = 'raw <b>markup</b> & stuff ]] > 中😀é';

const STANZAS = [
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>",
  "<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>café 中文 😀</resource></bind></iq>",
  `<message from='juliet@example.com/balcony' to="romeo@example.net" type='chat' id="m&amp;1&#x31;" xml:lang='en'><body>${BODY_SOURCE}</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='font-weight: bold'>hi <em>th&#101;re</em> ☃</p></body></html></message>`,
  `<message to='romeo@example.net' id='cdata'><body><![CDATA[${CDATA_TEXT}]]></body></message>`,
  "<presence><show>away</show><status>Ünïcödé 🎉 — “smart quotes” &lt;3</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.com/c' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
  "<iq type='get' id='ping&#x31;' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>",
  "<message to='a@b' type='groupchat'><body>multi\r\nline\ttext with CRLF\r\nand ＦＵＬＬＷＩＤＴＨ 𝄞 music</body></message>",
  "<presence type='unavailable'/>",
];
const KEEPALIVES = [' ', '\n', '\r\n', '\t \n  ', ''];

function buildStream(): string {
  let text = OPEN + '\n';
  for (let round = 0; round < 3; round++) {
    STANZAS.forEach((stanza, i) => {
      text += stanza + KEEPALIVES[(i + round) % KEEPALIVES.length];
    });
  }
  return text + '</stream:stream>';
}

const STREAM_TEXT = buildStream();
const STREAM = Buffer.from(STREAM_TEXT, 'utf8');

describe('StreamParser: chunking', () => {
  const oneShot = parse(STREAM);

  test('one-shot parse of a realistic stream gives the expected events', () => {
    const types = oneShot.types;
    expect(types[0]).toBe('start');
    expect(types[types.length - 1]).toBe('end');
    expect(types.filter((t) => t === 'stanza')).toHaveLength(STANZAS.length * 3);
    expect(types.filter((t) => t !== 'stanza' && t !== 'start' && t !== 'end')).toEqual([]);

    expect(oneShot.events[0]).toEqual({
      type: 'start',
      name: 'stream:stream',
      local: 'stream',
      uri: NS_STREAM,
      attrs: { xmlns: NS_CLIENT, 'xmlns:stream': NS_STREAM, to: 'example.com', version: '1.0', 'xml:lang': 'en' },
    });

    const [features, iq, message, cdata, presence, ping] = oneShot.stanzas;
    expect(features.name).toBe('stream:features');
    expect(features.getChild('mechanisms')?.getChildren('mechanism').map((m) => m.getText())).toEqual(['SCRAM-SHA-1', 'PLAIN']);
    expect(iq.getChild('bind')?.getChildText('resource')).toBe('café 中文 😀');
    expect(message.attrs.id).toBe('m&11');
    expect(message.attrs.to).toBe('romeo@example.net');
    expect(message.getChildText('body')).toBe(BODY_TEXT);
    expect(message.getChild('html')?.getChild('body')?.getChild('p')?.getText()).toBe('hi  ☃');
    expect(message.getChild('html')?.getChild('body')?.getChild('p')?.getChildText('em')).toBe('there');
    expect(cdata.getChildText('body')).toBe(CDATA_TEXT);
    expect(presence.getChildText('status')).toBe('Ünïcödé 🎉 — “smart quotes” <3');
    expect(ping.attrs.id).toBe('ping1');
    // Line ends are normalised to \n, as XML requires.
    expect(oneShot.stanzas[6].getChildText('body')).toBe('multi\nline\ttext with CRLF\nand ＦＵＬＬＷＩＤＴＨ 𝄞 music');
    expect(oneShot.stanzas[7].toString()).toBe(`<presence type="unavailable" xmlns="${NS_CLIENT}"/>`);
  });

  test('every chunking into 1..64-byte pieces gives the same events as one-shot (500 seeded chunkings)', () => {
    const expected = oneShot.events;
    // Interesting places a cut can fall: inside a multi-byte UTF-8 character, inside "?>", inside an entity.
    const insideChar = new Set<number>();
    for (let i = 0; i < STREAM.length; i++) if ((STREAM[i] & 0xc0) === 0x80) insideChar.add(i);
    const insideDeclEnd = STREAM.indexOf('?>') + 1;
    const insideEntity = new Set<number>();
    for (let i = STREAM.indexOf('&'); i >= 0; i = STREAM.indexOf('&', i + 1)) {
      for (let j = i + 1; STREAM[j - 1] !== 0x3b; j++) insideEntity.add(j);
    }
    const hits = { char: 0, declEnd: 0, entity: 0 };

    for (let seed = 1; seed <= 500; seed++) {
      const random = mulberry32(seed);
      const chunks: Buffer[] = [];
      for (let pos = 0; pos < STREAM.length; ) {
        const size = 1 + Math.floor(random() * 64);
        chunks.push(STREAM.subarray(pos, pos + size));
        pos += size;
        if (insideChar.has(pos)) hits.char++;
        if (pos === insideDeclEnd) hits.declEnd++;
        if (insideEntity.has(pos)) hits.entity++;
      }
      const got = parse(chunks).events;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        // Only build the (large) diff when it fails.
        expect({ seed, events: got }).toEqual({ seed, events: expected });
      }
    }
    expect(hits.char).toBeGreaterThan(100);
    expect(hits.declEnd).toBeGreaterThan(0);
    expect(hits.entity).toBeGreaterThan(100);
  });

  test('one byte at a time gives the same events', () => {
    expect(parse(chunksOf(STREAM, 1)).events).toEqual(oneShot.events);
  });

  test('strings fed in pieces (including a lone CR at a piece end) give the same events', () => {
    for (const size of [1, 2, 3, 7, 64, 1000]) expect(parse(chunksOf(STREAM_TEXT, size)).events).toEqual(oneShot.events);
  });

  test('a cut exactly inside "?>" of the XML declaration', () => {
    const at = STREAM.indexOf('?>') + 1;
    const chunks = splitAt(STREAM, at);
    expect(chunks[0].toString().endsWith('?')).toBe(true);
    expect(chunks[1].toString().startsWith('>')).toBe(true);
    expect(parse(chunks).events).toEqual(oneShot.events);
  });

  test('cuts inside every byte of multi-byte characters (2, 3 and 4 bytes)', () => {
    for (const ch of ['é', '中', '😀', '𝄞']) {
      const bytes = Buffer.from(ch);
      const at = STREAM.indexOf(bytes);
      expect(at).toBeGreaterThan(0);
      for (let k = 1; k < bytes.length; k++) expect(parse(splitAt(STREAM, at + k)).events).toEqual(oneShot.events);
      // And every byte of the character in its own chunk.
      const cuts = Array.from({ length: bytes.length + 1 }, (_, k) => at + k);
      expect(parse(splitAt(STREAM, ...cuts)).events).toEqual(oneShot.events);
    }
  });

  test('cuts inside an entity, a tag name, an attribute value and a closing tag', () => {
    for (const needle of ['&#x1F600;', '&apos;', 'stream:features', "'urn:xmpp:ping'", '</mechanisms>', ']]>']) {
      const at = STREAM.indexOf(needle);
      for (let k = 1; k < needle.length; k++) expect(parse(splitAt(STREAM, at + k)).events).toEqual(oneShot.events);
    }
  });

  test('a byte-order mark before the declaration is accepted', () => {
    expect(parse([Buffer.from([0xef, 0xbb]), Buffer.concat([Buffer.from([0xbf]), STREAM])]).events).toEqual(oneShot.events);
  });
});

describe('StreamParser: stanzas stand alone', () => {
  test('each stanza declares its namespace and re-parses to the same namespaces', () => {
    const rec = parse(STREAM);
    const standalone = rec.stanzas.flatMap((s) => namespacesOf(s.toString()));
    // The namespaces every element had inside the original stream.
    expect(standalone).toEqual(namespacesOf(STREAM_TEXT, true));
    for (const s of rec.stanzas) {
      if (s.name === 'stream:features') {
        expect(s.attrs['xmlns:stream']).toBe(NS_STREAM);
        expect(s.attrs.xmlns).toBeUndefined();
      } else {
        expect(s.attrs.xmlns).toBe(NS_CLIENT);
      }
    }
  });

  test('an explicit namespace on a stanza is kept, not replaced', () => {
    const rec = parse(`${OPEN}<message xmlns='${NS_CLIENT}'><body>x</body></message><foo xmlns='urn:other'><bar/></foo>`);
    expect(rec.types).toEqual(['start', 'stanza', 'stanza']);
    expect(rec.stanzas[0].toString()).toBe(`<message xmlns="${NS_CLIENT}"><body>x</body></message>`);
    expect(namespacesOf(rec.stanzas[1].toString())).toEqual(['foo=urn:other', 'bar=urn:other']);
  });

  test('prefixes and default namespaces bound only on the stream header are declared inside the stanza', () => {
    const header = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' xmlns:x='urn:example:x' version='1.0'>`;
    const stanzas =
      "<message to='a@b'><x:data x:kind='k'><x:item>1</x:item></x:data><body>hi</body></message>" +
      "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session/></stream:features>" +
      "<x:top><x:inner/><plain/></x:top>";
    const rec = parse(XML_DECL + header + stanzas);
    expect(rec.types).toEqual(['start', 'stanza', 'stanza', 'stanza']);
    const standalone = rec.stanzas.flatMap((s) => namespacesOf(s.toString()));
    expect(standalone).toEqual(namespacesOf(`${header}${stanzas}</stream:stream>`, true));
    expect(standalone).toContain('x:data=urn:example:x');
    expect(standalone).toContain('@x:kind=urn:example:x');
    expect(standalone).toContain(`session=${NS_CLIENT}`);
    expect(standalone).toContain(`plain=${NS_CLIENT}`);
  });

  test('a stream without a default namespace does not invent one', () => {
    const rec = parse(`<stream:stream xmlns:stream='${NS_STREAM}'><message><body>x</body></message>`);
    expect(rec.types).toEqual(['start', 'stanza']);
    expect(namespacesOf(rec.stanzas[0].toString())).toEqual(['message=', 'body=']);
  });
});

/** Parse input fed whole and one byte/char at a time; both must give exactly `expected` and never throw. */
function expectEvents(input: string | Buffer, expected: string[], options: Partial<StreamParserOptions> = {}): Recorder {
  const whole = parse(input, options);
  expect(whole.types).toEqual(expected);
  const bytes = parse(chunksOf(typeof input === 'string' ? Buffer.from(input) : input, 1), options);
  expect(bytes.types).toEqual(expected);
  const last = expected[expected.length - 1] ?? '';
  if (last.startsWith('error') || last === 'end') {
    // Once the stream has failed or ended, nothing more is reported, whatever follows.
    const keep = new Recorder(options);
    keep.writeAll([input, input, '<message/>', Buffer.from([0xff])]);
    expect(keep.types).toEqual(expected);
  }
  return whole;
}

describe('StreamParser: restricted XML', () => {
  test.each([
    ['a comment between stanzas', `${OPEN}<!-- hello --><message/>`, ['start']],
    ['a comment before the stream header', `${XML_DECL}<!-- hello -->${HEADER}<message/>`, []],
    ['a comment inside a stanza', `${OPEN}<message><body>hi</body><!-- x --></message><presence/>`, ['start']],
    ['a processing instruction between stanzas', `${OPEN}<?foo bar?><message/>`, ['start']],
    ['a processing instruction inside a stanza', `${OPEN}<message><?foo bar?></message>`, ['start']],
    ['a processing instruction before the header', `${XML_DECL}<?xml-stylesheet href='a'?>${HEADER}<message/>`, []],
    ['a DOCTYPE', `${XML_DECL}<!DOCTYPE stream:stream>${HEADER}<message/>`, []],
    ['a DOCTYPE with an internal subset', `<!DOCTYPE x [<!ENTITY e 'boom'>]>${HEADER}<message>&e;</message>`, []],
    ['an undefined entity in text', `${OPEN}<message><body>&foo;</body></message><presence/>`, ['start']],
    ['an undefined entity in an attribute', `${OPEN}<message to='&foo;'/><presence/>`, ['start']],
  ])('%s -> restricted-xml, and nothing after it', (_name, input, before) => {
    const rec = expectEvents(input, [...before, 'error:restricted-xml']);
    expect(rec.errorTexts).toHaveLength(1);
    // The text is for the peer: no parser positions in it.
    expect(rec.errorTexts[0]).not.toMatch(/^\d|:\d+:/);
  });

  test('the error text names the problem', () => {
    expect(parse(`${OPEN}<message>&foo;</message>`).errorTexts).toEqual(['undefined entity.']);
    expect(parse(`${OPEN}<!-- x -->`).errorTexts).toEqual(['comments are not allowed']);
    expect(parse(`${OPEN}<message><body></message>`).errorTexts[0]).toMatch(/close tag/);
  });
});

describe('StreamParser: not-well-formed', () => {
  test.each([
    ['a mismatched close tag', `${OPEN}<message><body>hi</message><presence/>`],
    ['a duplicate attribute', `${OPEN}<message to='a' to='b'/><presence/>`],
    ['an unquoted attribute', `${OPEN}<message to=a/><presence/>`],
    ['"<" in an attribute value', `${OPEN}<message to='a<b'/><presence/>`],
    ['an unbound element prefix', `${OPEN}<foo:bar/><presence/>`],
    ['an unbound attribute prefix', `${OPEN}<message foo:to='a'/><presence/>`],
    ['a malformed character reference', `${OPEN}<message><body>&#0;</body></message>`],
    ['a surrogate character reference', `${OPEN}<message><body>&#xD800;</body></message>`],
    ['a bad entity name', `${OPEN}<message><body>&a b;</body></message>`],
    ['an empty entity reference', `${OPEN}<message><body>&;</body></message>`],
    ['a control character', `${OPEN}<message><body>\u0001</body></message>`],
    ['"]]>" in text', `${OPEN}<message><body>a]]>b</body></message>`],
    ['a "<" that starts no tag', `${OPEN}<message><<`],
  ])('%s -> not-well-formed, and nothing after it', (_name, input) => {
    expectEvents(input, ['start', 'error:not-well-formed']);
  });

  test('text before the stream header -> not-well-formed', () => {
    expectEvents(`hello${OPEN}<message/>`, ['error:not-well-formed']);
    expectEvents(`${XML_DECL}hello${HEADER}<message/>`, ['error:not-well-formed']);
  });

  test('whitespace before the stream header is fine', () => {
    expectEvents(` \r\n\t${HEADER}<message/>`, ['start', 'stanza']);
  });

  test.each([
    ['0xff 0xfe', [0xff, 0xfe]],
    ['a lone continuation byte', [0x80]],
    ['a truncated sequence followed by ASCII', [0xe4, 0xb8, 0x3c]],
    ['an overlong encoding of "<"', [0xc0, 0xbc]],
    ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('invalid UTF-8 (%s) -> not-well-formed', (_name, bytes) => {
    const before = Buffer.from(`${OPEN}<message><body>ok `);
    const after = Buffer.from('</body></message><presence/>');
    // A chunk is decoded before it is parsed: one with invalid UTF-8 anywhere in it is rejected whole.
    expect(parse(Buffer.concat([before, Buffer.from(bytes), after])).types).toEqual(['error:not-well-formed']);
    // Whatever came in earlier chunks has been parsed and reported already.
    const rec = parse([before, Buffer.from(bytes), after]);
    expect(rec.types).toEqual(['start', 'error:not-well-formed']);
    expect(rec.errorTexts).toEqual(['invalid UTF-8']);
    expect(parse([...chunksOf(before, 5), ...chunksOf(Buffer.from(bytes), 1), after]).types).toEqual(['start', 'error:not-well-formed']);
  });

  test('invalid UTF-8 as its own chunk after good stanzas', () => {
    const rec = parse([`${OPEN}<presence/>`, Buffer.from([0xff, 0xfe]), '<message/>']);
    expect(rec.types).toEqual(['start', 'stanza', 'error:not-well-formed']);
  });
});

describe('StreamParser: stray close tags', () => {
  test.each([
    ['</message> straight inside the stream', `${OPEN}</message><presence/>`, ['start']],
    ['</foo> straight inside the stream', `${OPEN}</foo>`, ['start']],
    ['a stray close tag after a stanza', `${OPEN}<presence/></message><presence/>`, ['start', 'stanza']],
    ['a close tag of the stream with another prefix', `${OPEN}<presence/></x:stream>`, ['start', 'stanza']],
    ['a close tag of the stream without its prefix', `${OPEN}</stream>`, ['start']],
    ['a close tag of the stream with another local name', `${OPEN}</stream:features>`, ['start']],
    ['a stanza closed by another name', `${OPEN}<message><body>hi</body></iq><presence/>`, ['start']],
    ['a stanza closed by the stream close tag', `${OPEN}<message><body>hi</body></stream:stream>`, ['start']],
  ])('%s -> not-well-formed, never a stream end or a stanza', (_name, input, before) => {
    const rec = expectEvents(input, [...before, 'error:not-well-formed']);
    expect(rec.errorTexts).toHaveLength(1);
    expect(rec.errorTexts[0]).toMatch(/close tag/);
    expect(rec.errorTexts[0]).not.toMatch(/^\d|:\d+:/);
  });

  test('the stream close tag still ends the stream, with or without whitespace before ">"', () => {
    expectEvents(`${OPEN}<presence/></stream:stream>`, ['start', 'stanza', 'end']);
    expectEvents(`${OPEN}<presence/></stream:stream \n>`, ['start', 'stanza', 'end']);
  });
});

describe('StreamParser: encoding', () => {
  test("encoding='ISO-8859-1' -> unsupported-encoding before the stream starts", () => {
    const rec = expectEvents(`<?xml version='1.0' encoding='ISO-8859-1'?>${HEADER}<message/>`, ['error:unsupported-encoding']);
    expect(rec.errorTexts[0]).toMatch(/UTF-8/);
  });

  test.each(["encoding='UTF-16'", "encoding='US-ASCII'"])('%s -> unsupported-encoding', (decl) => {
    expectEvents(`<?xml version='1.0' ${decl}?>${HEADER}`, ['error:unsupported-encoding']);
  });

  test('UTF-8 in any case, or no encoding at all, is accepted', () => {
    for (const decl of ["<?xml version='1.0' encoding='utf-8'?>", '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0'?>", '']) {
      expectEvents(`${decl}${HEADER}<message/>`, ['start', 'stanza']);
    }
  });
});

/** A stanza whose whole text (from "<" to ">") is exactly `size` characters. */
function stanzaOfSize(size: number): string {
  const head = "<message to='romeo@example.net'><body>";
  const tail = '</body></message>';
  const s = head + 'a'.repeat(size - head.length - tail.length) + tail;
  expect(s).toHaveLength(size);
  return s;
}

describe('StreamParser: maxStanzaSize', () => {
  const LIMIT = 4096;

  test('a stanza larger than the limit fails before it is fed whole; later writes are ignored', () => {
    const rec = new Recorder({ maxStanzaSize: LIMIT });
    rec.write(OPEN);
    const big = Buffer.from(stanzaOfSize(64 * 1024));
    const chunks = chunksOf(big, 1024);
    const failedAt = feedUntilPolicyViolation(rec, chunks);
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
    // Detected within one chunk of crossing the limit, long before the last chunk.
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(failedAt).toBeLessThanOrEqual(Math.ceil(LIMIT / 1024));
    expect(failedAt).toBeLessThan(chunks.length - 1);
    rec.writeAll(['<presence/>', '</stream:stream>', Buffer.from([0xff]), '<!-- -->']);
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
  });

  test('a stanza of exactly the limit passes, one character more fails, however it is chunked', () => {
    for (const size of [1, 7, 100, 1024, 5000]) {
      const ok = parse([OPEN, ...chunksOf(stanzaOfSize(LIMIT), size), '<presence/>'], { maxStanzaSize: LIMIT });
      expect(ok.types).toEqual(['start', 'stanza', 'stanza']);
      const bad = parse([OPEN, ...chunksOf(stanzaOfSize(LIMIT + 1), size), '<presence/>'], { maxStanzaSize: LIMIT });
      expect(bad.types).toEqual(['start', 'error:policy-violation']);
    }
  });

  test('a stanza under the limit that spans several large writes is not counted twice', () => {
    const stanza = stanzaOfSize(LIMIT - 10);
    const half = Math.floor(stanza.length / 2);
    const rec = parse([OPEN, stanza.slice(0, half), stanza.slice(half), '<presence/>'], { maxStanzaSize: LIMIT });
    expect(rec.types).toEqual(['start', 'stanza', 'stanza']);
    expect(rec.parser.pendingStanzaSize).toBe(0);
  });

  test('pendingStanzaSize counts the characters of the incomplete stanza', () => {
    const rec = parse([OPEN, ' \n', "<message to='x'><body>abc"], { maxStanzaSize: LIMIT });
    expect(rec.parser.pendingStanzaSize).toBe("<message to='x'><body>abc".length);
    rec.write('de');
    expect(rec.parser.pendingStanzaSize).toBe("<message to='x'><body>abcde".length);
    rec.write('</body></message>');
    expect(rec.parser.pendingStanzaSize).toBe(0);
  });

  test('a huge start tag (many attributes) of a top-level stanza fails before it is complete', () => {
    const rec = new Recorder({ maxStanzaSize: LIMIT });
    rec.write(OPEN);
    rec.write('<message');
    for (let i = 0; i < 200; i++) rec.write(` a${i}='${'v'.repeat(40)}'`);
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
  });

  test('a huge stream header fails before it is complete', () => {
    const rec = new Recorder({ maxStanzaSize: LIMIT });
    rec.write(`${XML_DECL}<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'`);
    for (let i = 0; i < 200; i++) rec.write(` a${i}='${'v'.repeat(40)}'`);
    expect(rec.types).toEqual(['error:policy-violation']);
  });

  test('whitespace between stanzas longer than the limit -> policy-violation, however it is chunked', () => {
    const ws = ' \n\t'.repeat(Math.ceil((LIMIT + 1) / 3));
    for (const size of [1024, 1000, 10 * LIMIT]) {
      const rec = parse([OPEN, '<presence/>', ...chunksOf(ws, size), '<message/>'], { maxStanzaSize: LIMIT });
      expect(rec.types).toEqual(['start', 'stanza', 'error:policy-violation']);
    }
    // All in one write, followed by a stanza: still caught.
    expect(parse([OPEN, `<presence/>${ws}<message/>`], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza', 'error:policy-violation']);
    // Fed in 1 KiB pieces, it is caught before the run ends.
    const rec = new Recorder({ maxStanzaSize: LIMIT });
    rec.write(OPEN);
    const pieces = chunksOf(' '.repeat(64 * 1024), 1024);
    let failedAt = -1;
    pieces.forEach((piece, i) => {
      rec.write(piece);
      if (failedAt < 0 && rec.types.includes('error:policy-violation')) failedAt = i;
    });
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(failedAt).toBeLessThan(pieces.length - 1);
  });

  test('whitespace keepalives of up to the limit are fine', () => {
    const rec = parse([OPEN, '<presence/>', ' '.repeat(LIMIT), '<message/>', ' '.repeat(LIMIT)], { maxStanzaSize: LIMIT });
    expect(rec.types).toEqual(['start', 'stanza', 'stanza']);
    rec.write('</stream:stream>');
    expect(rec.types).toEqual(['start', 'stanza', 'stanza', 'end']);
  });
});

/**
 * A stanza of exactly `bytes` UTF-8 bytes whose body is `char` repeated, padded with ASCII to the size; it has
 * far fewer characters than bytes when `char` is multi-byte.
 */
function stanzaOfBytes(bytes: number, char: string): string {
  const head = "<message to='romeo@example.net'><body>";
  const tail = '</body></message>';
  const room = bytes - Buffer.byteLength(head + tail);
  const count = Math.floor(room / Buffer.byteLength(char));
  const s = head + char.repeat(count) + 'a'.repeat(room - count * Buffer.byteLength(char)) + tail;
  expect(Buffer.byteLength(s)).toBe(bytes);
  return s;
}

/** Seeded random cuts of a buffer into 1..max-byte pieces (cuts fall inside multi-byte characters too). */
function randomChunks(buf: Buffer, seed: number, max: number): Buffer[] {
  const random = mulberry32(seed);
  const out: Buffer[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const size = 1 + Math.floor(random() * max);
    out.push(buf.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

describe('StreamParser: maxStanzaSize counts UTF-8 bytes', () => {
  const LIMIT = 200;

  test('100 characters of 3-byte text are 300+ bytes: over a 200-byte limit', () => {
    const stanza = `<message><body>${'中'.repeat(100)}</body></message>`;
    expect(stanza.length).toBeLessThan(LIMIT);
    expect(Buffer.byteLength(stanza)).toBeGreaterThan(300);
    expectEvents(`${OPEN}${stanza}<presence/>`, ['start', 'error:policy-violation'], { maxStanzaSize: LIMIT });
    const rec = parse([OPEN, stanza, '<presence/>'], { maxStanzaSize: LIMIT });
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
    expect(rec.errorTexts[0]).toBe(`stanza larger than ${LIMIT} bytes`);
    // The same stanza in ASCII passes.
    expect(parse([OPEN, `<message><body>${'z'.repeat(100)}</body></message>`], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza']);
  });

  test.each([
    ['2-byte', 'é'],
    ['3-byte', '中'],
    ['4-byte (a surrogate pair)', '😀'],
  ])('%s text: exactly the limit in bytes passes, one byte more fails, under any chunking', (_name, char) => {
    const ok = Buffer.from(stanzaOfBytes(LIMIT, char));
    const over = Buffer.from(stanzaOfBytes(LIMIT + 1, char));
    for (let seed = 1; seed <= 50; seed++) {
      expect(parse([Buffer.from(OPEN), ...randomChunks(ok, seed, 16), Buffer.from('<presence/>')], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza', 'stanza']);
      expect(parse([Buffer.from(OPEN), ...randomChunks(over, seed, 16), Buffer.from('<presence/>')], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'error:policy-violation']);
    }
    // Whole, one byte at a time, and as strings.
    expectEvents(Buffer.concat([Buffer.from(OPEN), ok, Buffer.from('<presence/>')]), ['start', 'stanza', 'stanza'], { maxStanzaSize: LIMIT });
    expectEvents(Buffer.concat([Buffer.from(OPEN), over, Buffer.from('<presence/>')]), ['start', 'error:policy-violation'], { maxStanzaSize: LIMIT });
    expect(parse([OPEN, ...chunksOf(ok.toString(), 7), '<presence/>'], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza', 'stanza']);
    expect(parse([OPEN, ...chunksOf(over.toString(), 7), '<presence/>'], { maxStanzaSize: LIMIT }).types).toEqual(['start', 'error:policy-violation']);
  });

  test('stanzas at the limit one after another, in one write or many, are each measured from their own start', () => {
    const stanzas = ['é', '中', '😀', 'x'].map((c) => stanzaOfBytes(LIMIT, c)).join(' ');
    const all = Buffer.from(`${OPEN}${stanzas}`);
    expect(parse(all, { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza', 'stanza', 'stanza', 'stanza']);
    for (let seed = 1; seed <= 20; seed++) expect(parse(randomChunks(all, seed, 64), { maxStanzaSize: LIMIT }).types).toEqual(['start', 'stanza', 'stanza', 'stanza', 'stanza']);
  });

  test('a multi-byte stanza too big for the limit fails before it is fed whole', () => {
    const rec = new Recorder({ maxStanzaSize: 4096 });
    rec.write(OPEN);
    const chunks = chunksOf(Buffer.from(`<message><body>${'中'.repeat(64 * 1024)}</body></message>`), 1024);
    const failedAt = feedUntilPolicyViolation(rec, chunks);
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
    // 4096 bytes are 4 KiB-chunks' worth of input, whatever characters they hold.
    expect(failedAt).toBeGreaterThanOrEqual(0);
    expect(failedAt).toBeLessThanOrEqual(4);
  });

  test('pendingStanzaSize counts bytes', () => {
    const rec = parse([OPEN, "<message to='x'><body>中"], { maxStanzaSize: LIMIT });
    expect(rec.parser.pendingStanzaSize).toBe(Buffer.byteLength("<message to='x'><body>中"));
    rec.write(Buffer.from('😀é'));
    expect(rec.parser.pendingStanzaSize).toBe(Buffer.byteLength("<message to='x'><body>中😀é"));
    // Half of a character waits in the decoder: it is not counted until it is complete.
    const e = Buffer.from('é');
    rec.write(e.subarray(0, 1));
    expect(rec.parser.pendingStanzaSize).toBe(Buffer.byteLength("<message to='x'><body>中😀é"));
    rec.write(e.subarray(1));
    expect(rec.parser.pendingStanzaSize).toBe(Buffer.byteLength("<message to='x'><body>中😀éé"));
    rec.write('</body></message>');
    expect(rec.parser.pendingStanzaSize).toBe(0);
  });

  test('a stream header over the limit in bytes but not in characters fails', () => {
    const header = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' to='${'中'.repeat(60)}'>`;
    expect(header.length).toBeLessThan(LIMIT);
    expectEvents(header, ['error:policy-violation'], { maxStanzaSize: LIMIT });
    expectEvents(`<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' to='${'中'.repeat(20)}'>`, ['start'], { maxStanzaSize: LIMIT });
  });

  test('a start tag over the limit in bytes fails before it is complete', () => {
    const rec = new Recorder({ maxStanzaSize: LIMIT });
    rec.write(OPEN);
    rec.write("<message to='");
    for (let i = 0; i < 10; i++) rec.write('中'.repeat(10));
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
  });
});

function nested(levels: number): string {
  let s = '<message>';
  for (let i = 1; i < levels; i++) s += `<e${i}>`;
  for (let i = levels - 1; i >= 1; i--) s += `</e${i}>`;
  return s + '</message>';
}

describe('StreamParser: maxDepth', () => {
  test('nesting at the limit is fine, one deeper -> policy-violation', () => {
    expectEvents(`${OPEN}${nested(5)}<presence/>`, ['start', 'stanza', 'stanza'], { maxDepth: 5 });
    expectEvents(`${OPEN}${nested(6)}<presence/>`, ['start', 'error:policy-violation'], { maxDepth: 5 });
  });

  test('a self-closing element one level too deep is rejected too', () => {
    expectEvents(`${OPEN}<message><a><b/></a></message>`, ['start', 'error:policy-violation'], { maxDepth: 2 });
    expectEvents(`${OPEN}<message><a/></message>`, ['start', 'stanza'], { maxDepth: 2 });
  });

  test('the default limit is 64', () => {
    expectEvents(`${OPEN}${nested(64)}`, ['start', 'stanza']);
    expectEvents(`${OPEN}${nested(65)}`, ['start', 'error:policy-violation']);
  });

  test('a very deep nesting attack fails early without throwing', () => {
    const rec = new Recorder({ maxStanzaSize: 1 << 24 });
    rec.write(OPEN);
    for (let i = 0; i < 1000; i++) rec.write('<a><a><a><a><a><a><a><a><a><a>');
    expect(rec.types).toEqual(['start', 'error:policy-violation']);
  });
});

const AUTH = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>";
const BIND = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>中😀</resource></bind></iq>";
const HEADER2 = `<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}' to='example.com' version='1.0' id='second'>`;

/** A recorder whose handler restarts the stream from inside onStanza on <auth/> and <starttls/>, as the server does. */
function restartingRecorder(options: Partial<StreamParserOptions> = {}): Recorder {
  const rec = new Recorder(options);
  rec.onStanzaHook = (stanza) => {
    if (stanza.name === 'auth' || stanza.name === 'starttls') rec.parser.restart();
  };
  return rec;
}

describe('StreamParser: restart()', () => {
  const EXPECTED = ['start', 'stanza', 'start', 'stanza', 'stanza'];

  function checkRestarted(rec: Recorder): void {
    expect(rec.types).toEqual(EXPECTED);
    const second = rec.events[2];
    expect(second.type === 'start' && second.attrs.id).toBe('second');
    expect(rec.stanzas[0].name).toBe('auth');
    expect(rec.stanzas[0].getText()).toBe('AGp1bGlldAByMG0zMG15cjBtMzA=');
    expect(rec.stanzas[1].toString()).toBe(`<iq type="set" id="b1" xmlns="${NS_CLIENT}"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>中😀</resource></bind></iq>`);
  }

  test('from inside onStanza: the next header in the same chunk starts a new stream, xml declaration allowed', () => {
    const rec = restartingRecorder();
    rec.write(OPEN);
    rec.write(`${AUTH}${XML_DECL}${HEADER2}${BIND}<presence/>`);
    checkRestarted(rec);
  });

  test('from inside onStanza, with everything in one chunk', () => {
    checkRestarted(restartingRecorder().writeAll([`${OPEN}\n${AUTH}${XML_DECL}${HEADER2}${BIND}<presence/>`]));
  });

  test('from inside onStanza, after earlier writes, at every possible cut of the rest', () => {
    const rest = Buffer.from(`${AUTH}${XML_DECL}${HEADER2}${BIND}<presence/>`);
    for (let cut = 1; cut < rest.length; cut++) {
      const rec = restartingRecorder();
      rec.writeAll([OPEN, ' ', ...splitAt(rest, cut)]);
      checkRestarted(rec);
    }
  });

  test('from inside onStanza, under random chunkings of the whole exchange', () => {
    const all = Buffer.from(`${OPEN}${AUTH}${XML_DECL}${HEADER2}${BIND}<presence/>`);
    for (let seed = 1; seed <= 100; seed++) {
      const random = mulberry32(seed);
      const rec = restartingRecorder();
      for (let pos = 0; pos < all.length; ) {
        const size = 1 + Math.floor(random() * 64);
        rec.write(all.subarray(pos, pos + size));
        pos += size;
      }
      checkRestarted(rec);
    }
  });

  test('a line end carried over a chunk boundary right after the restarting stanza', () => {
    const rec = restartingRecorder();
    rec.writeAll([OPEN, `<presence/>${AUTH}\r`, `\n${HEADER2}${BIND}<presence/>`]);
    expect(rec.types).toEqual(['start', 'stanza', 'stanza', 'start', 'stanza', 'stanza']);
  });

  test('between writes: the next write starts a new stream', () => {
    const rec = new Recorder();
    rec.writeAll([OPEN, AUTH]);
    rec.parser.restart();
    rec.writeAll([`${XML_DECL}${HEADER2}`, BIND, '<presence/>']);
    checkRestarted(rec);
  });

  test('between writes, after whitespace following the last stanza and several earlier writes', () => {
    const rec = new Recorder();
    rec.writeAll([OPEN, '<presence/>', ' ', AUTH, '\n']);
    rec.parser.restart();
    rec.writeAll([`${XML_DECL}${HEADER2}${BIND}`, '<presence/>']);
    expect(rec.types).toEqual(['start', 'stanza', 'stanza', 'start', 'stanza', 'stanza']);
    expect(rec.stanzas[2].getChild('bind')?.getChildText('resource')).toBe('中😀');
  });

  test('STARTTLS-style restart with a header that has no declaration', () => {
    const rec = restartingRecorder();
    rec.writeAll([OPEN, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>${HEADER2}<presence/>`]);
    expect(rec.types).toEqual(['start', 'stanza', 'start', 'stanza']);
  });

  test('the restarted stream is checked as strictly as the first', () => {
    const rec = restartingRecorder();
    rec.writeAll([OPEN, `${AUTH}${XML_DECL}${HEADER2}<!-- x --><presence/>`]);
    expect(rec.types).toEqual(['start', 'stanza', 'start', 'error:restricted-xml']);

    const twice = restartingRecorder();
    twice.writeAll([OPEN, `${AUTH}${XML_DECL}${HEADER2}${XML_DECL}<presence/>`]);
    expect(twice.types).toEqual(['start', 'stanza', 'start', 'error:not-well-formed']);
  });

  test('size limits are measured afresh in the restarted stream', () => {
    const LIMIT = 1024;
    const rec = restartingRecorder({ maxStanzaSize: LIMIT });
    rec.writeAll([OPEN, ' '.repeat(LIMIT - 10), `${AUTH}${HEADER2}`, ' '.repeat(LIMIT - 10), stanzaOfSize(LIMIT)]);
    expect(rec.types).toEqual(['start', 'stanza', 'start', 'stanza']);
    rec.write(stanzaOfSize(LIMIT + 1));
    expect(rec.types).toEqual(['start', 'stanza', 'start', 'stanza', 'error:policy-violation']);
  });
});

describe('StreamParser: stream end', () => {
  test('</stream:stream> -> onStreamEnd once; anything after it is ignored', () => {
    for (const after of ['', ' ', '<message/>', 'garbage', '<!-- c -->', '<?pi?>', `${XML_DECL}${HEADER}<message/>`, '</stream:stream>', '<<<']) {
      const input = `${OPEN}<presence/></stream:stream>${after}`;
      expectEvents(input, ['start', 'stanza', 'end']);
      const rec = parse([input, '<message/>', Buffer.from([0xff, 0xfe]), '</stream:stream>']);
      expect(rec.types).toEqual(['start', 'stanza', 'end']);
    }
  });

  test('a flood after the stream end is not counted against the size limit', () => {
    const rec = parse(`${OPEN}<presence/></stream:stream>${' x'.repeat(10000)}`, { maxStanzaSize: 1024 });
    expect(rec.types).toEqual(['start', 'stanza', 'end']);
  });

  test('a self-closing stream header starts and ends the stream', () => {
    expectEvents(`${XML_DECL}<stream:stream xmlns='${NS_CLIENT}' xmlns:stream='${NS_STREAM}'/>`, ['start', 'end']);
  });
});

describe('StreamParser: write() never throws', () => {
  const BAD: (string | Buffer)[] = [
    `${OPEN}<!-- c -->`,
    `${OPEN}<?pi?>`,
    `<!DOCTYPE x>${HEADER}`,
    `${OPEN}&foo;`,
    `${OPEN}<message><body></message>`,
    `${OPEN}<message a='1' a='2'/>`,
    `${OPEN}<message a=1/>`,
    `${OPEN}<message a='<'/>`,
    Buffer.concat([Buffer.from(OPEN), Buffer.from([0xff, 0xfe])]),
    `text${OPEN}`,
    `${OPEN}<x:y/>`,
    `<?xml version='1.0' encoding='ISO-8859-1'?>${HEADER}`,
    `${OPEN}${'<a>'.repeat(100)}`,
    `${OPEN}</stream:stream></stream:stream><a>`,
    '</stream:stream>',
    '<<<>>>',
    '\u0000',
    '',
    Buffer.alloc(0),
  ];

  test('for any bad input, in any chunking, write() returns and at most one error is reported', () => {
    for (const input of BAD) {
      for (const size of [1, 3, 1 << 20]) {
        const rec = new Recorder({ maxStanzaSize: 100, maxDepth: 10 });
        for (const chunk of chunksOf(typeof input === 'string' ? Buffer.from(input) : input, size)) {
          expect(() => rec.parser.write(chunk)).not.toThrow();
        }
        expect(() => rec.parser.write('<message/>')).not.toThrow();
        expect(() => rec.parser.restart()).not.toThrow();
        expect(() => rec.parser.write(`${OPEN}<presence/>`)).not.toThrow();
        expect(rec.types.filter((t) => t.startsWith('error')).length).toBeLessThanOrEqual(1);
        expect(rec.types).not.toContain('thrown');
        const errorAt = rec.types.findIndex((t) => t.startsWith('error'));
        if (errorAt >= 0) expect(errorAt).toBe(rec.types.length - 1);
      }
    }
  });
});
