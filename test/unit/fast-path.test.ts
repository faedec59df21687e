import fc from 'fast-check';
import type { Element } from 'ltx';
import * as fastStanza from '../../src/xmpp/fast-stanza';
import { StreamParser, type ParseErrorCondition, type StreamHandler } from '../../src/xmpp/parser';
import { chunk, cuts, garbage, mutate, mutation, stanza } from '../helpers/fuzz-arbitraries';

/*
 * The parser reads ordinary stanzas on a fast path (scanStanza) and everything else with saxes. These
 * properties feed the same bytes, cut the same way, to a parser with the fast path and to one without, and
 * require the same events: every stanza routed serialises to the same bytes, and every error is the same.
 */

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

type Event = ['start'] | ['stanza', string] | ['end'] | ['error', ParseErrorCondition];

class Recorder implements StreamHandler {
  readonly events: Event[] = [];
  readonly parser: StreamParser;
  constructor(fastPath: boolean, maxStanzaSize: number) {
    this.parser = new StreamParser(this, { maxStanzaSize, fastPath });
  }
  onStreamStart(): void {
    this.events.push(['start']);
  }
  onStanza(el: Element): void {
    this.events.push(['stanza', el.toString()]);
  }
  onStreamEnd(): void {
    this.events.push(['end']);
  }
  onError(condition: ParseErrorCondition): void {
    this.events.push(['error', condition]);
  }
}

/** What the fast parser and the strict one report for these chunks; both must agree. */
function both(chunks: Buffer[], maxStanzaSize = 1 << 16): Event[] {
  const fast = new Recorder(true, maxStanzaSize);
  const strict = new Recorder(false, maxStanzaSize);
  for (const c of chunks) {
    fast.parser.write(c);
    strict.parser.write(c);
  }
  expect(fast.events).toEqual(strict.events);
  return fast.events;
}

/** How one stanza is written: the choices a peer's serialiser may make that change no meaning. */
interface Style {
  apos: boolean;
  space: string;
  aroundEq: string;
  beforeClose: string;
  emptyAsPair: boolean;
  refs: 'named' | 'decimal' | 'hex';
  nonAsciiAsRef: boolean;
}

const style: fc.Arbitrary<Style> = fc.record({
  apos: fc.boolean(),
  space: fc.constantFrom(' ', '  ', '\n', '\t', ' \n '),
  aroundEq: fc.constantFrom('', ' ', '\n'),
  beforeClose: fc.constantFrom('', ' ', '\n'),
  emptyAsPair: fc.boolean(),
  refs: fc.constantFrom('named' as const, 'decimal' as const, 'hex' as const),
  nonAsciiAsRef: fc.boolean(),
});

const NAMED: Record<string, string> = { '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' };

function escape(text: string, s: Style, inAttr: boolean): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const special = ch === '<' || ch === '&' || (inAttr && ch === (s.apos ? "'" : '"'));
    const optional = ch === '>' || ch === '"' || ch === "'" || (cp > 0x7f && s.nonAsciiAsRef);
    if (!special && !optional) out += ch;
    else if (s.refs === 'decimal') out += `&#${cp};`;
    else if (s.refs === 'hex') out += `&#x${cp.toString(16)};`;
    else if (NAMED[ch]) out += `&${NAMED[ch]};`;
    else out += special ? `&#${cp};` : ch;
  }
  return out;
}

function write(el: Element, s: Style): string {
  const q = s.apos ? "'" : '"';
  let out = `<${el.name}`;
  for (const [k, v] of Object.entries(el.attrs)) out += `${s.space}${k}${s.aroundEq}=${s.aroundEq}${q}${escape(String(v), s, true)}${q}`;
  out += s.beforeClose;
  if (el.children.length === 0) return out + (s.emptyAsPair ? `></${el.name}${s.beforeClose}>` : '/>');
  out += '>';
  for (const child of el.children) out += typeof child === 'string' ? escape(child, s, false) : write(child as Element, s);
  return `${out}</${el.name}${s.beforeClose}>`;
}

describe('the fast path and the strict parser', () => {
  let taken = 0;
  const real = fastStanza.scanStanza;
  beforeAll(() => {
    jest.spyOn(fastStanza, 'scanStanza').mockImplementation((...args) => {
      const scan = real(...args);
      if (typeof scan !== 'number') taken++;
      return scan;
    });
  });
  afterAll(() => {
    jest.restoreAllMocks();
    // The properties below would hold trivially if every stanza went to saxes.
    expect(taken).toBeGreaterThan(1000);
  });

  test('route valid stanzas, written in any style and cut anywhere, byte for byte alike (and as sent)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(stanza, style, fc.constantFrom('', ' ', '\n', '\t\n')), { minLength: 1, maxLength: 6 }), fc.boolean(), cuts, (items, close, points) => {
        const body = items.map(([el, s, ws]) => ws + write(el, s)).join('') + (close ? '</stream:stream>' : '');
        const events = both(chunk(Buffer.from(HEADER + body), points));
        expect(events).toEqual([['start'], ...items.map(([el]): Event => ['stanza', el.toString()]), ...(close ? [['end'] as Event] : [])]);
      }),
      { numRuns: 1000 },
    );
  });

  test('agree on valid stanzas with random bytes inserted, deleted or replaced', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(stanza, style), { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), cuts, (items, mutations, points) => {
        const body = mutate(Buffer.from(items.map(([el, s]) => write(el, s)).join('')), mutations);
        both(chunk(Buffer.concat([Buffer.from(HEADER), body, Buffer.from('<presence/></stream:stream>')]), points));
      }),
      { numRuns: 2000 },
    );
  });

  test('agree on random bytes and XML fragments after a valid header', () => {
    fc.assert(
      fc.property(garbage(512), cuts, (bytes, points) => {
        both(chunk(Buffer.concat([Buffer.from(HEADER), bytes]), points));
      }),
      { numRuns: 1000 },
    );
  });

  test('agree on the size limit, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.integer({ min: HEADER.length, max: 600 }), fc.array(fc.tuple(stanza, style), { minLength: 1, maxLength: 5 }), cuts, (max, items, points) => {
        both(chunk(Buffer.from(HEADER + items.map(([el, s]) => write(el, s)).join('')), points), max);
      }),
      { numRuns: 500 },
    );
  });

  test('agree on what XML forbids or XMPP restricts inside an ordinary stanza', () => {
    const cases = [
      '<message><body>a]]>b</body></message>',
      '<message><!-- c --></message>',
      '<message><?pi x?></message>',
      '<message><body><![CDATA[<x>]]></body></message>',
      '<message><body>&nbsp;</body></message>',
      '<message><body>&#0;</body></message>',
      '<message><body>&#xD800;</body></message>',
      "<message to='a<b'/>",
      "<message to='a'to='b'/>",
      "<message to='a' to='b'/>",
      "<message p:x='1'/>",
      "<p:message xmlns:p='jabber:client'/>",
      "<message xmlns='http://www.w3.org/2000/xmlns/'/>",
      '<message><body>\u0001</body></message>',
      '<message><body>\uFFFE</body></message>',
      '<message><body>a\r\nb</body></message>',
      "<message id='a\tb'/>",
      '<message></iq>',
      '<message><body></message>',
      '<message/ >',
      '<message =\'x\'/>',
      '<1message/>',
      '<xmlfoo/>',
      '<message>' + '<x>'.repeat(70) + '</x>'.repeat(70) + '</message>',
      '  text between stanzas  <presence/>',
    ];
    for (const c of cases) both([Buffer.from(HEADER + c + '<presence/>')]);
  });
});
