import { normalizeLocalpart } from '../../xmpp/jid.js';

/**
 * The account name as stored: a SASL simple user name is the JID localpart (RFC 6120 §6.3.7), so it is
 * normalised by the same PRECIS UsernameCaseMapped profile, and "ｂｏｂ" or "BOB" logs in as the "bob" of
 * bob@domain. Undefined for names no account can have (empty, too long, characters a localpart may not hold).
 */
export function normalizeUsername(name: string): string | undefined {
  return normalizeLocalpart(name);
}
