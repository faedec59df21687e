import { prepPassword } from './credentials.js';

/**
 * The account name as stored: the JID localpart, case-folded. Returns undefined for names no account can
 * have (empty, too long, characters RFC 7622 forbids in a localpart).
 */
export function normalizeUsername(name: string): string | undefined {
  let prepared: string;
  try {
    prepared = prepPassword(name).normalize('NFC').toLowerCase();
  } catch {
    return undefined;
  }
  if (prepared.length === 0 || Buffer.byteLength(prepared) > 1023) return undefined;
  if (/["&'/:<>@\s]/.test(prepared)) return undefined;
  return prepared;
}
