import { isIPv6 } from 'node:net';
import { domainToASCII, domainToUnicode } from 'node:url';
import { bidiRuleHolds, codePoints, contextAllows, exception, hasRtl, isConjoiningJamo, LETTER_DIGIT, mapWidth, UNASSIGNED } from './precis.js';

/*
 * The domainpart of a JID (RFC 7622 §3.2): an IP literal, or labels that are each an LDH label (RFC 1034
 * letters, digits, hyphen) or an IDNA2008 U-label (RFC 5891, 5892, 5893). A-labels ("xn--") become U-labels;
 * fullwidth, case and NFC are mapped first; a final dot is stripped. Node's UTS #46 (node:url) does punycode
 * and tells which code points its mapping would change (those are not stable, so not valid in a U-label); it
 * is far more lenient than IDNA2008 about symbols, underscores and host syntax, so it is only ever given one
 * label already checked here.
 */

/** Label separators IDNA treats as "." (RFC 3490 §3.1): ideographic, fullwidth and halfwidth full stops. */
const SEPARATORS = /[\u3002\uff0e\uff61]/g;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ASCII_DOMAIN = /^[\x21-\x7e]+$/;
const IGNORABLE = /^[\p{Default_Ignorable_Code_Point}\p{White_Space}\p{Noncharacter_Code_Point}]$/u;
const COMBINING_MARK = /^\p{M}/u;

/** A JID domainpart in canonical form (lowercase, U-labels, no final dot), or undefined when it is not one. */
export function normalizeDomain(text: string): string | undefined {
  let s = ASCII_DOMAIN.test(text) ? text.toLowerCase() : text.replace(SEPARATORS, '.');
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.startsWith('[')) return ipLiteral(s);
  if (!ASCII_DOMAIN.test(s)) s = mapWidth(s).toLowerCase().normalize('NFC');
  const labels = s.split('.');
  let international = false;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (LDH_LABEL.test(label)) {
      if (label[2] !== '-' || label[3] !== '-') continue;
      // A reserved LDH label: only an A-label may have hyphens third and fourth.
      const u = label.startsWith('xn--') ? fromALabel(label) : undefined;
      if (u === undefined) return undefined;
      labels[i] = u;
      international = true;
    } else if (ASCII_DOMAIN.test(label) || !isULabel(label)) return undefined;
    else international = true;
  }
  const domain = international ? labels.join('.') : s;
  if (Buffer.byteLength(domain) > 1023) return undefined;
  // A name with a right-to-left label is a Bidi domain name: every label then keeps the Bidi Rule (RFC 5893 §2).
  if (international && labels.some((l) => hasRtl(codePoints(l))) && !labels.every((l) => bidiRuleHolds(codePoints(l)))) return undefined;
  return domain;
}

/** "[IPv6]" as RFC 3986 writes it; IPv4 addresses are LDH labels already. */
function ipLiteral(s: string): string | undefined {
  if (!s.endsWith(']')) return undefined;
  const address = s.slice(1, -1).toLowerCase();
  return isIPv6(address) && !address.includes('%') ? `[${address}]` : undefined;
}

/** The U-label an A-label encodes, when it is one: valid, and encoded the one way IDNA encodes it. */
function fromALabel(label: string): string | undefined {
  const u = domainToUnicode(label);
  if (u === '' || u.includes('.') || u.startsWith('xn--') || !isULabel(u)) return undefined;
  return domainToASCII(u) === label ? u : undefined;
}

/** RFC 5891 §5.4 on a mapped, NFC label: hyphens, no leading mark, IDNA2008 code points, contextual rules. */
function isULabel(label: string): boolean {
  if (label === '' || label.startsWith('-') || label.endsWith('-') || (label[2] === '-' && label[3] === '-')) return false;
  if (COMBINING_MARK.test(label)) return false;
  const cps = codePoints(label);
  for (let i = 0; i < cps.length; i++) {
    const p = idnaProperty(cps[i]);
    if (p === 'DISALLOWED') return false;
    if (p === 'CONTEXT' && !contextAllows(cps, i)) return false;
  }
  // Stable (RFC 5892 §2.2): UTS #46 maps nothing in it. Its A-label fits a DNS label.
  const a = domainToASCII(label);
  return a !== '' && a.length <= 63 && domainToUnicode(a) === label;
}

/** RFC 5892 §3, less Unstable (isULabel asks UTS #46 about that). */
function idnaProperty(cp: number): 'PVALID' | 'CONTEXT' | 'DISALLOWED' {
  const ex = exception(cp);
  if (ex) return ex === 'PVALID' ? 'PVALID' : ex === 'DISALLOWED' ? 'DISALLOWED' : 'CONTEXT';
  if ((cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d) return 'PVALID';
  if (cp < 0x80) return 'DISALLOWED';
  if (cp === 0x200c || cp === 0x200d) return 'CONTEXT';
  const ch = String.fromCodePoint(cp);
  if (UNASSIGNED.test(ch) || IGNORABLE.test(ch) || isConjoiningJamo(cp)) return 'DISALLOWED';
  // IgnorableBlocks: Combining Diacritical Marks for Symbols, Musical Symbols, Ancient Greek Musical Notation.
  if ((cp >= 0x20d0 && cp <= 0x20ff) || (cp >= 0x1d100 && cp <= 0x1d24f)) return 'DISALLOWED';
  return LETTER_DIGIT.test(ch) ? 'PVALID' : 'DISALLOWED';
}
