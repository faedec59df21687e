import { makeJid, parseJid } from '../../xmpp/jid.js';

/**
 * Whether a client that authenticated as `username` may use this SASL authorization identity. An authzid
 * asks to act as someone else (RFC 6120 §6.3.8); we let nobody do that, so it must be absent or the user's
 * own bare JID, compared in canonical form ("Alice@Example.COM" is alice@example.com). Anything else is
 * <invalid-authzid/>, whether malformed, a full JID, another user or another domain.
 */
export function authzidAllowed(authzid: string, username: string, domain: string): boolean {
  if (authzid === '') return true;
  const asked = parseJid(authzid);
  return asked !== undefined && asked.resource === '' && asked.local !== '' && asked.bare === makeJid(username, domain)?.bare;
}
