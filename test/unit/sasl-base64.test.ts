import { decodeSaslBase64 } from '../../src/c2s/sasl/base64';

/*
 * What a client's SASL element text decodes to: the bytes the mechanism sees, or undefined, which the
 * server answers with <incorrect-encoding/>.
 */

const decoded = (text: string): string | undefined => decodeSaslBase64(text)?.toString('latin1');

describe('decodeSaslBase64', () => {
  test.each([
    ['QQ==', 'A'],
    ['QUI=', 'AB'],
    ['QUJD', 'ABC'],
    ['QUJDRA==', 'ABCD'],
    ['AGFsaWNlAHNlY3JldA==', '\0alice\0secret'],
    ['+/+/', '\xfb\xff\xbf'],
  ])('canonical %s decodes', (text, data) => {
    expect(decoded(text)).toBe(data);
  });

  test('"=" alone is a present, empty response (RFC 6120 §6.4.2); empty text is no data', () => {
    expect(decodeSaslBase64('=')).toEqual(Buffer.alloc(0));
    expect(decodeSaslBase64('')).toEqual(Buffer.alloc(0));
  });

  test('every byte string round-trips through its own encoding', () => {
    for (let n = 0; n < 70; n++) {
      const data = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff));
      expect(decodeSaslBase64(data.toString('base64'))).toEqual(data);
    }
  });

  test.each([
    ['QR==', 'non-zero pad bits'],
    ['QUJ=', 'non-zero pad bits'],
    ['QQ', 'no padding'],
    ['QUI', 'no padding'],
    ['QQ=', 'short padding'],
    ['Q===', 'too much padding'],
    ['QQ===', 'too much padding'],
    ['==', 'padding alone'],
    ['QQ==QQ==', 'padding in the middle'],
    ['Q=Q=', 'padding in the middle'],
    ['Q Q==', 'a space inside'],
    [' QQ==', 'a leading space'],
    ['QQ== ', 'a trailing space'],
    ['QUJD\nRA==', 'a line break'],
    ['QUJD\r\nRA==', 'a CRLF line break'],
    ['QQ\t==', 'a tab'],
    ['QQ-_', 'the URL-safe alphabet'],
    ['QQ*=', 'a character outside the alphabet'],
    ['QUJDR', 'a length that is no multiple of four'],
    ['Q', 'one character'],
    ['ＱＱ==', 'fullwidth letters'],
  ])('%s is refused (%s)', (text) => {
    expect(decodeSaslBase64(text)).toBeUndefined();
  });
});
