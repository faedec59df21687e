import { bidiClass, isVirama, joiningType } from './unicode.js';

/*
 * PRECIS (RFC 8264) string classes and the two RFC 8265 profiles XMPP addresses use (RFC 7622):
 * UsernameCaseMapped for localparts, OpaqueString for resourceparts. No npm package implements PRECIS as
 * RFC 8264 has it (the one that tried, precis-js, follows the obsoleted RFC 7564 and is not on the registry
 * we install from), so this follows the RFCs over String.prototype.normalize, toLowerCase and Unicode
 * property regular expressions, which track the Unicode version of the running Node, plus the few
 * properties ./unicode.ts supplies.
 */

export type StringClass = 'identifier' | 'freeform';

/** A code point's derived property (RFC 8264 §8), with ID_DIS and FREE_PVAL resolved for the class. */
export type Derived = 'PVALID' | 'CONTEXTJ' | 'CONTEXTO' | 'DISALLOWED';

/** RFC 5892 §2.6 Exceptions, which PRECIS (RFC 8264 §9.6) takes unchanged. */
const EXCEPTIONS = new Map<number, Derived>([
  [0x00df, 'PVALID'], [0x03c2, 'PVALID'], [0x06fd, 'PVALID'], [0x06fe, 'PVALID'], [0x0f0b, 'PVALID'], [0x3007, 'PVALID'],
  [0x00b7, 'CONTEXTO'], [0x0375, 'CONTEXTO'], [0x05f3, 'CONTEXTO'], [0x05f4, 'CONTEXTO'], [0x30fb, 'CONTEXTO'],
  [0x0640, 'DISALLOWED'], [0x07fa, 'DISALLOWED'], [0x302e, 'DISALLOWED'], [0x302f, 'DISALLOWED'],
  [0x3031, 'DISALLOWED'], [0x3032, 'DISALLOWED'], [0x3033, 'DISALLOWED'], [0x3034, 'DISALLOWED'], [0x3035, 'DISALLOWED'],
  [0x303b, 'DISALLOWED'],
]);
for (let cp = 0x0660; cp <= 0x0669; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');
for (let cp = 0x06f0; cp <= 0x06f9; cp++) EXCEPTIONS.set(cp, 'CONTEXTO');

export function exception(cp: number): Derived | undefined {
  return EXCEPTIONS.get(cp);
}

export const UNASSIGNED = /^\p{Cn}$/u;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{Noncharacter_Code_Point}]$/u;
const CONTROL = /^\p{Cc}$/u;
export const LETTER_DIGIT = /^[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]$/u;
/** OtherLetterDigits, Spaces, Symbols and Punctuation (RFC 8264 §9.12-9.15): valid in FreeformClass only. */
const FREEFORM_ONLY = /^[\p{Lt}\p{Nl}\p{No}\p{Me}\p{Zs}\p{Sm}\p{Sc}\p{Sk}\p{So}\p{P}]$/u;

/** Hangul_Syllable_Type L, V or T: the conjoining jamo blocks (RFC 8264 §9.9). */
export function isConjoiningJamo(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0xa960 && cp <= 0xa97f) || (cp >= 0xd7b0 && cp <= 0xd7ff);
}

/** RFC 8264 §8, in its order. */
export function derivedProperty(cp: number, stringClass: StringClass): Derived {
  const ex = EXCEPTIONS.get(cp);
  if (ex) return ex;
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID';
  const ch = String.fromCodePoint(cp);
  if (UNASSIGNED.test(ch)) return 'DISALLOWED';
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXTJ';
  if (isConjoiningJamo(cp) || IGNORABLE.test(ch) || CONTROL.test(ch)) return 'DISALLOWED';
  const freeform = stringClass === 'freeform' ? 'PVALID' : 'DISALLOWED';
  if (ch.normalize('NFKC') !== ch) return freeform; // HasCompat
  if (LETTER_DIGIT.test(ch)) return 'PVALID';
  return FREEFORM_ONLY.test(ch) ? freeform : 'DISALLOWED';
}

const GREEK = /^\p{Script=Greek}$/u;
const HEBREW = /^\p{Script=Hebrew}$/u;
const KANA_HAN = /^[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]$/u;

const scriptOf = (re: RegExp, cp: number | undefined): boolean => cp !== undefined && re.test(String.fromCodePoint(cp));

/** RFC 5892 Appendix A: whether the contextual code point at cps[i] is allowed where it stands. */
export function contextAllows(cps: readonly number[], i: number): boolean {
  const cp = cps[i];
  const before = cps[i - 1];
  const after = cps[i + 1];
  switch (cp) {
    case 0x200c: {
      if (before !== undefined && isVirama(before)) return true;
      // (Joining_Type:{L,D})(Joining_Type:T)*\u200C(Joining_Type:T)*(Joining_Type:{R,D})
      let j = i - 1;
      while (j >= 0 && joiningType(cps[j]) === 'T') j--;
      let k = i + 1;
      while (k < cps.length && joiningType(cps[k]) === 'T') k++;
      if (j < 0 || k >= cps.length) return false;
      const left = joiningType(cps[j]);
      const right = joiningType(cps[k]);
      return (left === 'L' || left === 'D') && (right === 'R' || right === 'D');
    }
    case 0x200d:
      return before !== undefined && isVirama(before);
    case 0x00b7:
      return before === 0x6c && after === 0x6c;
    case 0x0375:
      return scriptOf(GREEK, after);
    case 0x05f3:
    case 0x05f4:
      return scriptOf(HEBREW, before);
    case 0x30fb:
      return cps.some((c) => scriptOf(KANA_HAN, c));
    default:
      if (cp >= 0x0660 && cp <= 0x0669) return !cps.some((c) => c >= 0x06f0 && c <= 0x06f9);
      if (cp >= 0x06f0 && cp <= 0x06f9) return !cps.some((c) => c >= 0x0660 && c <= 0x0669);
      return false;
  }
}

export const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);

/** Every code point valid in the class, contextual ones where their rule allows them. */
export function conforms(s: string, stringClass: StringClass): boolean {
  const cps = codePoints(s);
  for (let i = 0; i < cps.length; i++) {
    const p = derivedProperty(cps[i], stringClass);
    if (p === 'DISALLOWED') return false;
    if (p !== 'PVALID' && !contextAllows(cps, i)) return false;
  }
  return true;
}

/** Whether a string has right-to-left code points, the ones that make the Bidi Rule apply (RFC 5893 §1.4). */
export function hasRtl(cps: readonly number[]): boolean {
  return cps.some((cp) => cp >= 0x0590 && isRtlClass(bidiClass(cp)));
}

const isRtlClass = (c: string): boolean => c === 'R' || c === 'AL' || c === 'AN';

const RTL_ALLOWED = new Set(['R', 'AL', 'AN', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);
const LTR_ALLOWED = new Set(['L', 'EN', 'ES', 'CS', 'ET', 'ON', 'BN', 'NSM']);

/** The six conditions of the Bidi Rule (RFC 5893 §2) for one label or string. */
export function bidiRuleHolds(cps: readonly number[]): boolean {
  if (cps.length === 0) return true;
  const classes = cps.map(bidiClass);
  const first = classes[0];
  let last = classes.length - 1;
  while (last > 0 && classes[last] === 'NSM') last--;
  const end = classes[last];
  if (first === 'R' || first === 'AL') {
    if (!classes.every((c) => RTL_ALLOWED.has(c))) return false;
    if (end !== 'R' && end !== 'AL' && end !== 'EN' && end !== 'AN') return false;
    return !(classes.includes('EN') && classes.includes('AN'));
  }
  if (first !== 'L') return false;
  return classes.every((c) => LTR_ALLOWED.has(c)) && (end === 'L' || end === 'EN');
}

/**
 * Width mapping (RFC 8265 §3.3.1 step 1): fullwidth and halfwidth forms to their <wide>/<narrow>
 * decompositions, which are U+3000 and U+FF01..U+FFEE. NFKC decomposes all the way where the mapping takes
 * one step (U+FFE3, the halfwidth Hangul letters), but both results are outside IdentifierClass, the only
 * class this mapping feeds.
 */
export function mapWidth(s: string): string {
  return s.replace(/[\u3000\uff01-\uffee]/g, (c) => c.normalize('NFKC'));
}

const ASCII_IDENTIFIER = /^[\x21-\x7e]+$/;
const ASCII_FREEFORM = /^[\x20-\x7e]+$/;

/**
 * RFC 8265 §3.3 UsernameCaseMapped: width mapping, IdentifierClass, toLowerCase, NFC, the Bidi Rule, not
 * empty. Undefined when the string is not a username.
 */
export function usernameCaseMapped(s: string): string | undefined {
  if (ASCII_IDENTIFIER.test(s)) return s.toLowerCase();
  const prepared = mapWidth(s);
  if (prepared === '' || !conforms(prepared, 'identifier')) return undefined;
  const enforced = prepared.toLowerCase().normalize('NFC');
  const cps = codePoints(enforced);
  if (hasRtl(cps) && !bidiRuleHolds(cps)) return undefined;
  // Checked again so that the result is itself a valid username: enforcing it again must give it back.
  return conforms(enforced, 'identifier') ? enforced : undefined;
}

/**
 * RFC 8265 §4.2 OpaqueString: FreeformClass; non-ASCII spaces to U+0020; no width or case mapping; NFC; not
 * empty. Undefined when the string is not one.
 */
export function opaqueString(s: string): string | undefined {
  if (ASCII_FREEFORM.test(s)) return s;
  if (s === '' || !conforms(s, 'freeform')) return undefined;
  const enforced = s.replace(/\p{Zs}/gu, ' ').normalize('NFC');
  return conforms(enforced, 'freeform') ? enforced : undefined;
}
