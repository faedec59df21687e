import fc from 'fast-check';
import type { Element } from 'ltx';
import { StreamParser, type ParseErrorCondition, type StreamHandler } from '../../src/xmpp/parser';
import { chunk, cuts, garbage, mutate, mutation, stanza } from '../helpers/fuzz-arbitraries';

/*
 * Property-based tests of the stream parser, the server's front door (issue 12, "a fuzzed front door").
 * fast-check picks a new random seed on every run; a failure prints the seed and the shrunk counterexample,
 * which `fc.assert(..., { seed, path })` replays exactly.
 */

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const HEADER_BYTES = Buffer.from(HEADER);
const CONDITIONS: ParseErrorCondition[] = ['not-well-formed', 'restricted-xml', 'policy-violation', 'unsupported-encoding'];
const LARGE = 1 << 16;

type Event = { type: 'start' } | { type: 'stanza'; xml: string } | { type: 'end' } | { type: 'error'; condition: ParseErrorCondition } | { type: 'thrown'; error: unknown };

/** Records what the server would be told, and anything write() lets escape instead of propagating it. */
class Recorder implements StreamHandler {
  readonly events: Event[] = [];
  readonly parser: StreamParser;
  constructor(maxStanzaSize = LARGE) {
    this.parser = new StreamParser(this, { maxStanzaSize });
  }
  onStreamStart(): void {
    this.events.push({ type: 'start' });
  }
  onStanza(el: Element): void {
    this.events.push({ type: 'stanza', xml: el.toString() });
  }
  onStreamEnd(): void {
    this.events.push({ type: 'end' });
  }
  onError(condition: ParseErrorCondition): void {
    this.events.push({ type: 'error', condition });
  }
  write(data: Buffer): void {
    try {
      this.parser.write(data);
    } catch (error) {
      this.events.push({ type: 'thrown', error });
    }
  }
  get stanzas(): string[] {
    return this.events.flatMap((e) => (e.type === 'stanza' ? [e.xml] : []));
  }
  get terminal(): Event | undefined {
    return this.events.find((e) => e.type === 'error' || e.type === 'end');
  }
}

/**
 * The one shape every outcome must have: the stream start, stanzas, then at most one error (with a condition
 * the parser is allowed to name) or the stream end, and nothing after it. No exception, ever.
 */
function expectWellShaped(rec: Recorder): void {
  const thrown = rec.events.find((e) => e.type === 'thrown');
  if (thrown) throw thrown.type === 'thrown' ? thrown.error : new Error('unreachable');
  // A read with invalid UTF-8 is refused whole, before saxes sees any of it: the error can come first.
  const started = rec.events[0]?.type === 'start';
  const rest = started ? rec.events.slice(1) : rec.events;
  expect(rest.filter((e) => e.type === 'start' || (!started && e.type === 'stanza'))).toEqual([]);
  const last = rest.findIndex((e) => e.type !== 'stanza');
  if (last < 0) return;
  expect(rest.length).toBe(last + 1); // the first non-stanza event is the final one
  const end = rest[last];
  if (end.type === 'error') expect(CONDITIONS).toContain(end.condition);
  else expect(end.type).toBe('end');
}

function feed(rec: Recorder, chunks: Buffer[]): void {
  for (const c of chunks) rec.write(c);
}

describe('StreamParser under fuzzing', () => {
  test('random bytes after a valid header, in any chunking: stanzas then at most one RFC error or the end', () => {
    fc.assert(
      fc.property(garbage(512), cuts, fc.array(garbage(32), { maxLength: 3 }), (bytes, points, after) => {
        const rec = new Recorder();
        feed(rec, chunk(Buffer.concat([HEADER_BYTES, bytes]), points));
        const settled = rec.terminal !== undefined;
        const count = rec.events.length;
        feed(rec, after);
        expectWellShaped(rec);
        if (settled) expect(rec.events.length).toBe(count);
      }),
      { numRuns: 1000 },
    );
  });

  test('valid stanzas read back exactly as they were sent, under any chunking', () => {
    fc.assert(
      fc.property(fc.array(stanza, { minLength: 1, maxLength: 6 }), fc.array(fc.constantFrom('', ' ', '\n', '\r\n\t'), { minLength: 6, maxLength: 6 }), fc.boolean(), cuts, (stanzas, spaces, close, points) => {
        const sent = stanzas.map((s) => s.toString());
        const body = sent.map((s, i) => spaces[i] + s).join('') + (close ? '</stream:stream>' : '');
        const rec = new Recorder();
        feed(rec, chunk(Buffer.from(HEADER + body), points));
        expectWellShaped(rec);
        expect(rec.stanzas).toEqual(sent);
        expect(rec.terminal).toEqual(close ? { type: 'end' } : undefined);
      }),
      { numRuns: 500 },
    );
  });

  test('valid stanzas with random bytes inserted, deleted or replaced, in any chunking: still well-shaped', () => {
    fc.assert(
      fc.property(fc.array(stanza, { minLength: 1, maxLength: 4 }), fc.array(mutation, { minLength: 1, maxLength: 6 }), cuts, (stanzas, mutations, points) => {
        const body = mutate(Buffer.from(stanzas.map((s) => s.toString()).join('')), mutations);
        const rec = new Recorder();
        feed(rec, chunk(Buffer.concat([HEADER_BYTES, body]), points));
        const settled = rec.terminal !== undefined;
        const count = rec.events.length;
        rec.write(Buffer.from('<presence/></stream:stream>'));
        expectWellShaped(rec);
        if (settled) expect(rec.events.length).toBe(count);
      }),
      { numRuns: 1000 },
    );
  });

  describe('memory stays within maxStanzaSize plus a constant', () => {
    /*
     * What the parser may hold beyond the limit at the moment it notices: a UTF-8 sequence split by the chunking
     * (up to 3 bytes in the decoder) and one character saxes carries to the next chunk (a CR or a surrogate).
     */
    const SLACK = 8;

    test('no write leaves a pending stanza larger than the limit, whatever the input', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: HEADER.length, max: 1024 }),
          fc.oneof(
            garbage(2048),
            fc.array(stanza, { maxLength: 8 }).map((s) => Buffer.from(s.join(''))),
            fc.tuple(fc.array(stanza, { maxLength: 4 }), fc.array(mutation, { maxLength: 4 })).map(([s, m]) => mutate(Buffer.from(s.join('')), m)),
          ),
          cuts,
          (max, bytes, points) => {
            const rec = new Recorder(max);
            for (const c of chunk(Buffer.concat([HEADER_BYTES, bytes]), points)) {
              rec.write(c);
              if (rec.terminal === undefined) expect(rec.parser.pendingStanzaSize).toBeLessThanOrEqual(max + SLACK);
            }
            expectWellShaped(rec);
          },
        ),
        { numRuns: 300 },
      );
    });

    /** Things that grow without end unless the parser stops them: each is `size` UTF-8 bytes of one pending item. */
    const floods = {
      /** A stanza whose body is one long text. */
      body: (size: number, fill: string) => stuff("<message xmlns='jabber:client'><body>", '</body></message>', size, fill),
      /** One long start tag: saxes buffers it whole before the parser sees an element at all. */
      attribute: (size: number, fill: string) => stuff("<message xmlns='jabber:client' id='", "'/>", size, fill),
      /** Many small elements: the stanza is counted as a whole, not per element. */
      nested: (size: number, fill: string) => stuff("<iq xmlns='jabber:client'><query xmlns='urn:x'>", '</query></iq>', size, fill, '<a>b</a>'),
    };

    /**
     * open + filler + close, `size` UTF-8 bytes (up to 3 more when a 4-byte fill does not fit exactly); the
     * filler is `elements` repeated over half the room, then `fill` characters.
     */
    function stuff(open: string, close: string, size: number, fill: string, elements = ''): Buffer {
      const room = size - Buffer.byteLength(open + close);
      let middle = elements.repeat(elements === '' ? 0 : Math.floor(room / 2 / elements.length));
      while (Buffer.byteLength(middle) < room) middle += fill;
      return Buffer.from(open + middle + close);
    }

    test('a stanza over the limit ends in policy-violation before more than the limit is buffered; one at it passes', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: HEADER.length, max: 2048 }),
          fc.constantFrom(...(Object.keys(floods) as (keyof typeof floods)[])),
          fc.constantFrom('a', 'é', '中', '😀'),
          fc.oneof(fc.integer({ min: -3, max: 0 }), fc.integer({ min: 1, max: 600 })),
          cuts,
          (max, kind, fill, over, points) => {
            const item = floods[kind](max + over, fill);
            const size = item.length;
            const rec = new Recorder(max);
            rec.write(HEADER_BYTES);
            let offset = 0;
            for (const c of chunk(Buffer.concat([item, Buffer.from('<presence/>')]), points)) {
              rec.write(c);
              offset += c.length;
              // Once the pending item alone is past the limit by more than the slack, it must already have failed.
              if (size > max && Math.min(offset, size) > max + SLACK) expect(rec.terminal).toEqual({ type: 'error', condition: 'policy-violation' });
            }
            expectWellShaped(rec);
            if (size > max) {
              expect(rec.terminal).toEqual({ type: 'error', condition: 'policy-violation' });
              expect(rec.stanzas).toEqual([]);
            } else {
              expect(rec.terminal).toBeUndefined();
              expect(rec.stanzas).toHaveLength(2);
            }
          },
        ),
        { numRuns: 300 },
      );
    });

    test('whitespace between stanzas counts against the limit too', () => {
      fc.assert(
        fc.property(fc.integer({ min: HEADER.length, max: 1024 }), fc.integer({ min: 1, max: 3000 }), cuts, (max, spaces, points) => {
          const rec = new Recorder(max);
          const ws = ' '.repeat(spaces);
          let offset = 0;
          const start = HEADER_BYTES.length + '<presence/>'.length;
          for (const c of chunk(Buffer.from(`${HEADER}<presence/>${ws}<presence/>`), points)) {
            rec.write(c);
            offset += c.length;
            if (Math.min(offset - start, spaces) > max + SLACK) expect(rec.terminal).toEqual({ type: 'error', condition: 'policy-violation' });
          }
          expectWellShaped(rec);
          expect(rec.stanzas.length).toBe(spaces <= max ? 2 : 1);
        }),
        { numRuns: 200 },
      );
    });
  });
});
