import { makeJid, parseJid } from '../../src/xmpp/jid';

/*
 * JIDs as a stanza's to/from would carry them (RFC 7622 with PRECIS, RFC 8264/8265): the canonical address
 * they stand for, or undefined, which the server answers with jid-malformed.
 */

const full = (text: string): string | undefined => parseJid(text)?.full;

describe('parseJid: structure (RFC 7622 §3.1)', () => {
  test('parts, bare and full', () => {
    expect(parseJid('juliet@example.com/balcony')).toEqual({ local: 'juliet', domain: 'example.com', resource: 'balcony', bare: 'juliet@example.com', full: 'juliet@example.com/balcony' });
    expect(parseJid('juliet@example.com')).toEqual({ local: 'juliet', domain: 'example.com', resource: '', bare: 'juliet@example.com', full: 'juliet@example.com' });
    expect(parseJid('example.com')).toEqual({ local: '', domain: 'example.com', resource: '', bare: 'example.com', full: 'example.com' });
    expect(parseJid('example.com/foo')).toEqual({ local: '', domain: 'example.com', resource: 'foo', bare: 'example.com', full: 'example.com/foo' });
  });

  test('the first "/" ends the domain; an "@" before it ends the localpart', () => {
    expect(parseJid('localhost/a@b')).toMatchObject({ local: '', domain: 'localhost', resource: 'a@b' });
    expect(parseJid('a@localhost/b/c@d')).toMatchObject({ local: 'a', domain: 'localhost', resource: 'b/c@d' });
    expect(parseJid('a@localhost/@')).toMatchObject({ local: 'a', domain: 'localhost', resource: '@' });
  });

  test.each([
    ['', 'nothing'],
    ['@localhost', 'an empty localpart'],
    ['a@localhost/', 'an empty resource'],
    ['a@', 'an empty domain'],
    ['/resource', 'an empty domain before a resource'],
    ['a@/r', 'an empty domain between the parts'],
    ['a@b@c', 'a second "@" in the domain'],
    ['@', 'separators alone'],
    ['.', 'a dot alone'],
  ])('%j is malformed (%s)', (text) => {
    expect(parseJid(text)).toBeUndefined();
  });
});

describe('parseJid: localpart (UsernameCaseMapped + RFC 7622 §3.3)', () => {
  test('case and width are mapped', () => {
    expect(full('BOB@LocalHost')).toBe('bob@localhost');
    expect(full('ｂｏｂ@localhost')).toBe('bob@localhost');
    expect(full('ＢＯＢ@localhost')).toBe('bob@localhost');
    expect(full('Σωκράτης@localhost')).toBe('σωκράτης@localhost');
  });

  test('NFC: a decomposed character is composed', () => {
    expect(full('e\u0301lise@localhost')).toBe('\u00e9lise@localhost');
    expect(parseJid('e\u0301lise@localhost')?.bare).toBe(parseJid('\u00e9lise@localhost')?.bare);
  });

  test.each(['"', '&', "'", '/', ':', '<', '>', '@'])('the forbidden character %s', (c) => {
    // "/" and "@" end parts, so put them where only a localpart can hold them.
    expect(makeJid(`a${c}b`, 'localhost')).toBeUndefined();
  });

  test.each([
    ['a b@localhost', 'a space'],
    ['a\u00a0b@localhost', 'a no-break space'],
    ['a\tb@localhost', 'a control character'],
    ['a\u200bb@localhost', 'a default-ignorable character'],
    ['\u2163@localhost', 'a letter with a compatibility decomposition (ROMAN NUMERAL FOUR)'],
    ['\u2603@localhost', 'a symbol'],
    ['a\u00abb@localhost', 'punctuation outside ASCII'],
    ['\ue000@localhost', 'a private-use character'],
    ['\u0378@localhost', 'an unassigned code point'],
    ['a\u00b7b@localhost', 'MIDDLE DOT not between two l'],
    ['a\u200db@localhost', 'ZERO WIDTH JOINER not after a virama'],
    ['a\u0627@localhost', 'left-to-right and right-to-left letters mixed (Bidi Rule)'],
    ['\u0661\u0662@localhost', 'a right-to-left string starting with a digit (Bidi Rule)'],
    ['\u0661\u06f2@localhost', 'Arabic-Indic and extended Arabic-Indic digits mixed'],
  ])('%j is malformed (%s)', (text) => {
    expect(parseJid(text)).toBeUndefined();
  });

  test('contextual characters where their rule allows them', () => {
    expect(full('l\u00b7l@localhost')).toBe('l\u00b7l@localhost');
    expect(full('\u0915\u094d\u200d\u0937@localhost')).toBe('\u0915\u094d\u200d\u0937@localhost'); // ZWJ after a virama
    expect(full('\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645@localhost')).toBe('\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645@localhost'); // ZWNJ between joining letters
    expect(full('\u0627\u200c\u0628@localhost')).toBeUndefined(); // ALEF does not join to the left
    expect(full('\u30a2\u30fb\u30a4@localhost')).toBe('\u30a2\u30fb\u30a4@localhost'); // KATAKANA MIDDLE DOT with katakana
    expect(full('a\u30fbb@localhost')).toBeUndefined();
  });

  test('right-to-left localparts that keep the Bidi Rule', () => {
    expect(full('\u05d0\u05d1@localhost')).toBe('\u05d0\u05d1@localhost');
    expect(full('\u0627\u0644\u0639\u0631\u0628\u064a\u0629@localhost')).toBe('\u0627\u0644\u0639\u0631\u0628\u064a\u0629@localhost');
    expect(full('\u05d0\u05d11@localhost')).toBe('\u05d0\u05d11@localhost');
  });

  test('at most 1023 bytes', () => {
    expect(parseJid(`${'a'.repeat(1023)}@localhost`)?.local).toHaveLength(1023);
    expect(parseJid(`${'a'.repeat(1024)}@localhost`)).toBeUndefined();
    expect(parseJid(`${'é'.repeat(511)}@localhost`)).toBeDefined();
    expect(parseJid(`${'é'.repeat(512)}@localhost`)).toBeUndefined(); // 512 characters, 1024 bytes
  });
});

describe('parseJid: domainpart (RFC 7622 §3.2, IDNA2008)', () => {
  test('a trailing dot is stripped', () => {
    expect(full('localhost.')).toBe('localhost');
    expect(parseJid('a@localhost.')?.bare).toBe(parseJid('a@localhost')?.bare);
    expect(full('a@example.com./r')).toBe('a@example.com/r');
    expect(full('localhost..')).toBeUndefined();
  });

  test('case, width and IDNA label separators are mapped', () => {
    expect(full('a@LocalHost')).toBe('a@localhost');
    expect(full('a@ｌｏｃａｌｈｏｓｔ')).toBe('a@localhost');
    expect(full('a@example\u3002com')).toBe('a@example.com');
    expect(full('a@MÜNCHEN.de')).toBe('a@münchen.de');
  });

  test('A-labels become U-labels', () => {
    expect(full('a@xn--mnchen-3ya.de')).toBe('a@münchen.de');
    expect(full('a@XN--MNCHEN-3YA.DE')).toBe('a@münchen.de');
    expect(parseJid('a@xn--mnchen-3ya.de')?.bare).toBe(parseJid('a@münchen.de')?.bare);
    expect(full('例子.中国')).toBe('例子.中国');
  });

  test('IP addresses', () => {
    expect(full('a@127.0.0.1')).toBe('a@127.0.0.1');
    expect(full('a@[::1]/r')).toBe('a@[::1]/r');
    expect(full('a@[2001:DB8::1]')).toBe('a@[2001:db8::1]');
    expect(full('a@[::1')).toBeUndefined();
    expect(full('a@[example.com]')).toBeUndefined();
    expect(full('a@[fe80::1%eth0]')).toBeUndefined();
  });

  test.each([
    ['a@local host', 'a space'],
    ['a@a_b.com', 'an underscore'],
    ['a@a!b.com', 'a symbol'],
    ['a@-a.com', 'a leading hyphen'],
    ['a@a-.com', 'a trailing hyphen'],
    ['a@ab--c.com', 'hyphens third and fourth outside an A-label'],
    ['a@a..b', 'an empty label'],
    ['a@.a', 'an empty first label'],
    ['a@xn--abc.com', 'an A-label that decodes to nothing valid'],
    ['a@☃.net', 'a symbol outside ASCII'],
    ['a@xn--n3h.net', 'the A-label of a symbol'],
    ['a@ﬀ.com', 'a character UTS #46 would map (not stable)'],
    ['a@\u0301a.com', 'a label that starts with a combining mark'],
    ['a@a\u200db.com', 'ZERO WIDTH JOINER not after a virama'],
    ['a@1\u0627.com', 'a right-to-left label starting with a digit (Bidi Rule)'],
    [`a@${'x'.repeat(64)}.com`, 'a label longer than 63 octets'],
  ])('%j is malformed (%s)', (text) => {
    expect(parseJid(text)).toBeUndefined();
  });

  test('at most 1023 bytes', () => {
    const label = 'a'.repeat(63);
    const exactly = Array(16).fill(label).join('.');
    expect(Buffer.byteLength(exactly)).toBe(1023);
    expect(parseJid(exactly)?.domain).toBe(exactly);
    // Every label still fits in 63 octets; the whole is one byte over.
    const over = `${Array(15).fill(label).join('.')}.${'b'.repeat(62)}.c`;
    expect(Buffer.byteLength(over)).toBe(1024);
    expect(parseJid(over)).toBeUndefined();
    expect(parseJid(`a@${over}/r`)).toBeUndefined();
  });
});

describe('parseJid: resourcepart (OpaqueString, RFC 8265 §4.2)', () => {
  test('case and width are kept', () => {
    expect(parseJid('a@localhost/Balcony')?.resource).toBe('Balcony');
    expect(parseJid('a@localhost/ＢＡＬＣＯＮＹ')?.resource).toBe('ＢＡＬＣＯＮＹ');
    expect(parseJid('a@localhost/balcony')?.full).not.toBe(parseJid('a@localhost/Balcony')?.full);
  });

  test('NFC, and non-ASCII spaces become ASCII spaces', () => {
    expect(parseJid('a@localhost/e\u0301')?.resource).toBe('\u00e9');
    expect(parseJid('a@localhost/my\u00a0phone')?.resource).toBe('my phone');
    expect(parseJid('a@localhost/my\u3000phone')?.resource).toBe('my phone');
  });

  test('spaces, symbols, punctuation and other letters are allowed', () => {
    for (const r of ['Gajim on desk', 'café 中文 😀', '\u2163', 'a\u00abb\u00bb', 'x/y@z', '\u05d0a']) expect(parseJid(`a@localhost/${r}`)?.resource).toBe(r);
  });

  test.each([
    ['a@localhost/a\u0000', 'NUL'],
    ['a@localhost/a\u0007', 'a control character'],
    ['a@localhost/a\u2028', 'LINE SEPARATOR'],
    ['a@localhost/a\u200b', 'a default-ignorable character'],
    ['a@localhost/\ue000', 'a private-use character'],
    ['a@localhost/\ufdd0', 'a noncharacter'],
    ['a@localhost/a\u00b7b', 'MIDDLE DOT not between two l'],
  ])('%j is malformed (%s)', (text) => {
    expect(parseJid(text)).toBeUndefined();
  });

  test('at most 1023 bytes', () => {
    expect(parseJid(`a@localhost/${'r'.repeat(1023)}`)?.resource).toHaveLength(1023);
    expect(parseJid(`a@localhost/${'r'.repeat(1024)}`)).toBeUndefined();
    expect(parseJid(`a@localhost/${'中'.repeat(341)}`)).toBeDefined();
    expect(parseJid(`a@localhost/${'中'.repeat(342)}`)).toBeUndefined();
  });
});

describe('normalised forms are stable', () => {
  test('parsing a JID in canonical form gives it back', () => {
    for (const text of ['BOB@LocalHost/Phone', 'ｂｏｂ@ｌｏｃａｌｈｏｓｔ/ｘ', 'e\u0301lise@xn--mnchen-3ya.de/a\u00a0b', 'Σ@例子.中国', 'localhost.', '\u0130@localhost']) {
      const once = parseJid(text);
      expect(once).toBeDefined();
      expect(parseJid(once!.full)).toEqual(once);
    }
  });
});

describe('parsed again', () => {
  test('an address read again, or again after thousands of others, is the same address', () => {
    const texts = Array.from({ length: 10_000 }, (_, i) => `User${i}@LocalHost/Res${i}`);
    const first = texts.map(parseJid);
    expect(texts.map(parseJid)).toEqual(first);
    expect(first[9999]).toEqual({ local: 'user9999', domain: 'localhost', resource: 'Res9999', bare: 'user9999@localhost', full: 'user9999@localhost/Res9999' });
  });

  test('text that is no address is refused every time', () => {
    for (let i = 0; i < 3; i++) {
      expect(parseJid('@localhost')).toBeUndefined();
      expect(parseJid('a@local host')).toBeUndefined();
    }
  });
});

describe('makeJid', () => {
  test('normalises parts given apart, and an empty local or resource is none', () => {
    expect(makeJid('BOB', 'LocalHost.', 'Phone')).toEqual(parseJid('bob@localhost/Phone'));
    expect(makeJid('', 'localhost')).toEqual({ local: '', domain: 'localhost', resource: '', bare: 'localhost', full: 'localhost' });
    expect(makeJid('bob', 'localhost', '')?.full).toBe('bob@localhost');
  });

  test('a resource may hold "@" and "/"; a localpart or domain may not', () => {
    expect(makeJid('bob', 'localhost', 'a/b@c')?.full).toBe('bob@localhost/a/b@c');
    expect(makeJid('b@b', 'localhost')).toBeUndefined();
    expect(makeJid('bob', 'local/host')).toBeUndefined();
    expect(makeJid('bob', 'a@localhost')).toBeUndefined();
    expect(makeJid('bob', '')).toBeUndefined();
  });
});
