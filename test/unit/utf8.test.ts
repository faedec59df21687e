import fc from 'fast-check';
import { Utf8Stream } from '../../src/xmpp/utf8';
import { chunk, cuts } from '../helpers/fuzz-arbitraries';

/** What TextDecoder's fatal streaming mode makes of the chunks: the text of each, until the first error. */
function reference(chunks: Buffer[]): (string | 'error')[] {
  const d = new TextDecoder('utf-8', { fatal: true });
  const out: (string | 'error')[] = [];
  for (const c of chunks) {
    try {
      out.push(d.decode(c, { stream: true }));
    } catch {
      out.push('error');
      break;
    }
  }
  return out;
}

function ours(chunks: Buffer[]): (string | 'error')[] {
  const d = new Utf8Stream();
  const out: (string | 'error')[] = [];
  for (const c of chunks) {
    try {
      out.push(d.decode(c));
    } catch {
      out.push('error');
      break;
    }
  }
  return out;
}

const tricky = fc.constantFrom(0x00, 0x41, 0x7f, 0x80, 0xbb, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90);

describe('Utf8Stream', () => {
  test('drops a byte order mark that begins the stream, split or not, and keeps any later U+FEFF', () => {
    const bom = [0xef, 0xbb, 0xbf];
    for (const chunks of [[bom], [bom.slice(0, 1), bom.slice(1)], [bom.slice(0, 2), [...bom.slice(2), 0x3c]], [[...bom, ...bom]]]) {
      const bufs = chunks.map((c) => Buffer.from(c));
      expect(ours(bufs)).toEqual(reference(bufs));
    }
    expect(ours([Buffer.from([0x3c, ...bom])])).toEqual(['<\ufeff']);
    const d = new Utf8Stream();
    d.decode(Buffer.from('<a/>'));
    d.reset();
    expect(d.decode(Buffer.from([...bom, 0x3c]))).toBe('<');
  });

  test('decodes text in any chunking exactly as TextDecoder does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), cuts, (text, points) => {
        const chunks = chunk(Buffer.from(text, 'utf8'), points);
        expect(ours(chunks)).toEqual(reference(chunks));
      }),
      { numRuns: 2000 },
    );
  });

  test('refuses what TextDecoder refuses, at the same read: random bytes, in any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(tricky, fc.integer({ min: 0, max: 255 })), { maxLength: 40 }), cuts, (bytes, points) => {
        const chunks = chunk(Buffer.from(bytes), points);
        expect(ours(chunks)).toEqual(reference(chunks));
      }),
      { numRuns: 5000 },
    );
  });
});
