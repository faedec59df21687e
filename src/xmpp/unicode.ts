import bidiFactory, { type Bidi, type BidiCharTypeName } from 'bidi-js';

/*
 * The Unicode properties PRECIS and IDNA2008 rules need that JavaScript does not expose: regular expressions
 * know General_Category, Script and the binary properties, but not Bidi_Class, Canonical_Combining_Class or
 * Joining_Type. Everything else is asked of the regular expressions and String.prototype.normalize, so it
 * follows the Unicode version of the running Node.
 */

export type BidiClass = BidiCharTypeName;

let bidi: Bidi | undefined;

/** Bidi_Class (UAX #9) from bidi-js's tables; they load on the first non-ASCII identifier. */
export function bidiClass(cp: number): BidiClass {
  bidi ??= bidiFactory();
  return bidi.getBidiCharTypeName(String.fromCodePoint(cp));
}

/** Two combining marks whose classes (7, nukta; 10, sheva) frame the virama class, 9. */
const NUKTA = '\u093c';
const SHEVA = '\u05b0';

/**
 * Canonical_Combining_Class(cp) = Virama (9). Canonical ordering puts a mark of a lower class first, so a mark
 * that NFD moves after the nukta and before the sheva has class 8 or 9; class 8 is only the two kana voicing
 * marks. This asks Node's own normalisation data instead of carrying a table of it.
 */
export function isVirama(cp: number): boolean {
  if (cp === 0x3099 || cp === 0x309a || cp < 0x300) return false;
  const mark = String.fromCodePoint(cp);
  if (mark === NUKTA || mark === SHEVA) return false;
  return `a${mark}${NUKTA}`.normalize('NFD') === `a${NUKTA}${mark}` && `a${SHEVA}${mark}`.normalize('NFD') === `a${mark}${SHEVA}`;
}

export type JoiningType = 'D' | 'L' | 'R' | 'T' | 'U';

/**
 * Joining_Type D (dual), L (left) and R (right) ranges from DerivedJoiningType.txt of Unicode 15.0, as
 * "start[-end]type" in hex; the ZWNJ rule of RFC 5892 A.1 needs only these and T. Characters newer than 15.0
 * count as non-joining, so a ZWNJ next to them is refused: the safe side.
 */
const JOINING =
  '620D 622-625R 626D 627R 628D 629R 62a-62eD 62f-632R 633-63fD 641-647D 648R 649-64aD 66e-66fD 671-673R 675-677R ' +
  '678-687D 688-699R 69a-6bfD 6c0R 6c1-6c2D 6c3-6cbR 6ccD 6cdR 6ceD 6cfR 6d0-6d1D 6d2-6d3R 6d5R 6ee-6efR 6fa-6fcD 6ffD ' +
  '710R 712-714D 715-719R 71a-71dD 71eR 71f-727D 728R 729D 72aR 72bD 72cR 72d-72eD 72fR 74dR 74e-758D 759-75bR ' +
  '75c-76aD 76b-76cR 76d-770D 771R 772D 773-774R 775-777D 778-779R 77a-77fD 7ca-7eaD 840R 841-845D 846-847R 848D 849R ' +
  '84a-853D 854R 855D 856-858R 860D 862-865D 867R 868D 869-86aR 870-882R 886D 889-88dD 88eR 8a0-8a9D 8aa-8acR 8aeR ' +
  '8af-8b0D 8b1-8b2R 8b3-8b8D 8b9R 8ba-8c8D 1807D 1820-1878D 1887-18a8D 18aaD a840-a871D a872L 10ac0-10ac4D 10ac5R ' +
  '10ac7R 10ac9-10acaR 10acdL 10ace-10ad2R 10ad3-10ad6D 10ad7L 10ad8-10adcD 10addR 10ade-10ae0D 10ae1R 10ae4R ' +
  '10aeb-10aeeD 10aefR 10b80D 10b81R 10b82D 10b83-10b85R 10b86-10b88D 10b89R 10b8a-10b8bD 10b8cR 10b8dD 10b8e-10b8fR ' +
  '10b90D 10b91R 10ba9-10bacR 10bad-10baeD 10d00L 10d01-10d21D 10d22R 10d23D 10f30-10f32D 10f33R 10f34-10f44D ' +
  '10f51-10f53D 10f54R 10f70-10f73D 10f74-10f75R 10f76-10f81D 10fb0D 10fb2-10fb3D 10fb4-10fb6R 10fb8D 10fb9-10fbaR ' +
  '10fbb-10fbcD 10fbdR 10fbe-10fbfD 10fc1D 10fc2-10fc3R 10fc4D 10fc9R 10fcaD 10fcbL 1e900-1e943D';

let joining: { starts: number[]; ends: number[]; types: JoiningType[] } | undefined;

function joiningRanges(): NonNullable<typeof joining> {
  if (joining) return joining;
  const table = { starts: [] as number[], ends: [] as number[], types: [] as JoiningType[] };
  for (const item of JOINING.split(' ')) {
    const m = /^([0-9a-f]+)(?:-([0-9a-f]+))?([DLR])$/.exec(item)!;
    table.starts.push(parseInt(m[1], 16));
    table.ends.push(parseInt(m[2] ?? m[1], 16));
    table.types.push(m[3] as JoiningType);
  }
  return (joining = table);
}

/** Marks and format characters are transparent (ArabicShaping.txt) but for these, which are explicitly not. */
const NOT_TRANSPARENT = /[\u0600-\u0605\u06dd\u0890\u0891\u08e2\u180e\u200c-\u200d\u2066-\u2069\u{110bd}\u{110cd}]/u;
const TRANSPARENT_BY_CATEGORY = /[\p{Mn}\p{Me}\p{Cf}]/u;
const TRANSPARENT_LISTED = new Set([0x1171e, 0x1e94b]);

export function joiningType(cp: number): JoiningType {
  const { starts, ends, types } = joiningRanges();
  let lo = 0;
  let hi = starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < starts[mid]) hi = mid - 1;
    else if (cp > ends[mid]) lo = mid + 1;
    else return types[mid];
  }
  if (TRANSPARENT_LISTED.has(cp)) return 'T';
  const ch = String.fromCodePoint(cp);
  return TRANSPARENT_BY_CATEGORY.test(ch) && !NOT_TRANSPARENT.test(ch) ? 'T' : 'U';
}
