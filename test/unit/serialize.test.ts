import fc from 'fast-check';
import { Element } from 'ltx';
import { serialize } from '../../src/xmpp/serialize';
import { stanza, xmlText } from '../helpers/fuzz-arbitraries';

describe('serialize', () => {
  test('writes any stanza exactly as ltx does', () => {
    fc.assert(
      fc.property(stanza, (el) => {
        expect(serialize(el)).toBe(el.toString());
      }),
      { numRuns: 1000 },
    );
  });

  test('escapes markup in attributes and text, skips absent attributes, and writes numbers', () => {
    fc.assert(
      fc.property(xmlText(30), xmlText(30), fc.integer(), (attr, text, n) => {
        const el = new Element('message', { to: attr, id: undefined, n: n as unknown as string }).t(text);
        el.c('body').t(attr);
        expect(serialize(el)).toBe(el.toString());
      }),
    );
    expect(serialize(new Element('x', { a: `<'"&>` }).t('<&>"\''))).toBe(`<x a="&lt;&apos;&quot;&amp;&gt;">&lt;&amp;&gt;"'</x>`);
  });
});
