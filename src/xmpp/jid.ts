import { detached } from './detached.js';
import { normalizeDomain } from './idna.js';
import { opaqueString, usernameCaseMapped } from './precis.js';

/** An XMPP address in canonical form (RFC 7622): equal addresses are equal strings. */
export interface Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  /** 'local@domain' or 'domain' */
  readonly bare: string;
  /** bare + '/resource' when there is one */
  readonly full: string;
}

/** RFC 7622 §3.1: each part is at most 1023 bytes once enforced. */
const MAX_PART_BYTES = 1023;

/**
 * Code points RFC 7622 §3.3.1 forbids in a localpart on top of UsernameCaseMapped: they would make a JID
 * ambiguous or unsafe in XML and URIs (XEP-0106 escapes them instead).
 */
const LOCALPART_FORBIDDEN = /["&'/:<>@]/;

/**
 * A localpart (or a SASL username, the same thing: RFC 6120 §6.3.7) in canonical form: PRECIS
 * UsernameCaseMapped (RFC 8265 §3.3), without RFC 7622's forbidden characters, 1..1023 bytes. Undefined when
 * the text cannot be one.
 */
export function normalizeLocalpart(text: string): string | undefined {
  const local = usernameCaseMapped(text);
  if (local === undefined || LOCALPART_FORBIDDEN.test(local) || Buffer.byteLength(local) > MAX_PART_BYTES) return undefined;
  return local;
}

/** A resourcepart in canonical form: PRECIS OpaqueString (RFC 8265 §4.2), 1..1023 bytes. */
export function normalizeResource(text: string): string | undefined {
  const resource = opaqueString(text);
  return resource === undefined || Buffer.byteLength(resource) > MAX_PART_BYTES ? undefined : resource;
}

/**
 * Longest text that can still be a JID: three parts of 1023 bytes, two separators and a final dot, with
 * room for mappings that shrink text (NFC composes, fullwidth forms narrow). It only spares parsing a flood.
 */
const MAX_JID_LENGTH = 4 * (3 * MAX_PART_BYTES + 3);

/**
 * Addresses parsed lately, by their text. A conversation names the same few JIDs in every stanza, and PRECIS
 * and IDNA on each cost more than the rest of its routing; a cached Jid's strings are also already hashed
 * for the registry's maps. Emptied when full: a flood of distinct addresses costs what no cache would.
 */
const RECENT_MAX = 4096;
/** Longer ones are parsed each time: the cache stays a few MB however long the addresses a peer sends. */
const RECENT_MAX_LENGTH = 200;
const recent = new Map<string, Jid>();

/** A JID from untrusted text, PRECIS-normalised; undefined when it is not one (a stanza then gets jid-malformed). */
export function parseJid(text: string): Jid | undefined {
  if (text.length > RECENT_MAX_LENGTH) return parseNew(text);
  const known = recent.get(text);
  if (known !== undefined) return known;
  const jid = parseNew(text);
  if (jid !== undefined) remember(text, jid);
  return jid;
}

function remember(text: string, jid: Jid): void {
  // Copies: the text, and parts left unchanged by normalisation, are slices of the chunk they were read from.
  const key = detached(text);
  // A copy that differs (text with a lone surrogate, which no valid address has) would be another text's key.
  if (key !== text) return;
  if (recent.size >= RECENT_MAX) recent.clear();
  const { local, domain, resource, bare, full } = jid;
  recent.set(key, { local: detached(local), domain: detached(domain), resource: detached(resource), bare: detached(bare), full: detached(full) });
}

function parseNew(text: string): Jid | undefined {
  if (text.length > MAX_JID_LENGTH) return undefined;
  // RFC 7622 §3.1: the first "/" ends the domainpart, so a resourcepart may hold "@" and "/"; an "@" before
  // it ends the localpart.
  const slash = text.indexOf('/');
  const head = slash < 0 ? text : text.slice(0, slash);
  const at = head.indexOf('@');
  if (at === 0 || slash === text.length - 1) return undefined; // "@domain", "domain/": an empty part is no part
  return makeJid(at < 0 ? '' : head.slice(0, at), head.slice(at + 1), slash < 0 ? '' : text.slice(slash + 1));
}

/** Build from parts already normalised or not; undefined when not valid. An empty local or resource is none. */
export function makeJid(local: string, domain: string, resource = ''): Jid | undefined {
  const d = normalizeDomain(domain);
  if (d === undefined) return undefined;
  const l = local === '' ? '' : normalizeLocalpart(local);
  if (l === undefined) return undefined;
  const r = resource === '' ? '' : normalizeResource(resource);
  if (r === undefined) return undefined;
  const bare = l === '' ? d : `${l}@${d}`;
  return { local: l, domain: d, resource: r, bare, full: r === '' ? bare : `${bare}/${r}` };
}

