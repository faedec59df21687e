import { normalizeUsername } from '../../src/c2s/sasl/username';
import { parseJid } from '../../src/xmpp/jid';

/* A login name is the account's JID localpart: both normalise the same way. */

describe('normalizeUsername', () => {
  test.each([
    ['bob', 'bob'],
    ['BOB', 'bob'],
    ['ｂｏｂ', 'bob'],
    ['Ｂｏｂ', 'bob'],
    ['Ĳssel', undefined], // U+0132 has a compatibility decomposition: not in IdentifierClass
    ['Σωκράτης', 'σωκράτης'],
    ['e\u0301lise', 'élise'],
    ['jürgen', 'jürgen'],
  ])('%s -> %s', (name, expected) => {
    expect(normalizeUsername(name)).toBe(expected);
  });

  test.each(['', 'a b', 'a@b', 'a/b', 'a:b', 'a"b', "a'b", 'a&b', 'a<b', 'a>b', '\u0007', 'x'.repeat(1024)])('%j is no account name', (name) => {
    expect(normalizeUsername(name)).toBeUndefined();
  });

  test('every name that logs in is the localpart of the JID it logs in to', () => {
    for (const name of ['bob', 'ＢＯＢ', 'Σωκράτης', 'e\u0301lise', 'مستخدم', 'ユーザー']) {
      const username = normalizeUsername(name);
      expect(username).toBeDefined();
      expect(parseJid(`${name}@localhost`)?.local).toBe(username);
    }
  });
});
