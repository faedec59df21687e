import { jid as parseJid, type JID } from '@xmpp/jid';

export type { JID };

/** A JID from untrusted text, or undefined when it is not one (RFC 7622). */
export function tryParseJid(text: string): JID | undefined {
  if (text.length === 0 || text.length > 3071) return undefined;
  try {
    const j = parseJid(text);
    if (!j.domain) return undefined;
    if (j.local !== '' && /["&'/:<>@\s]/.test(j.local)) return undefined;
    if (/[\s/@]/.test(j.domain)) return undefined;
    return j;
  } catch {
    return undefined;
  }
}

export function bareOf(j: JID): string {
  return j.local ? `${j.local.toLowerCase()}@${j.domain.toLowerCase()}` : j.domain.toLowerCase();
}

export function fullOf(j: JID): string {
  return j.resource ? `${bareOf(j)}/${j.resource}` : bareOf(j);
}
