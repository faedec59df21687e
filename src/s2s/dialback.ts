import { Element } from 'ltx';
import type { StanzaErrorCondition } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';

/** <db:result/> or <db:verify/> (XEP-0220), whatever prefix the peer bound the namespace to. */
export function isDialback(el: Element, local: 'result' | 'verify'): boolean {
  return el.getName() === local && el.getNS() === NS.DIALBACK;
}

export function dialbackElement(local: 'result' | 'verify', attrs: Record<string, string | undefined>, key?: string): Element {
  const el = new Element(`db:${local}`, { 'xmlns:db': NS.DIALBACK, ...attrs });
  if (key !== undefined) el.t(key);
  return el;
}

/** XEP-0220 §2.4: a dialback request refused with a stanza error, the stream left open. */
export function dialbackError(local: 'result' | 'verify', from: string, to: string, condition: StanzaErrorCondition, text: string): Element {
  const el = dialbackElement(local, { from, to, type: 'error' });
  const error = el.c('error', { type: 'cancel' });
  error.c(condition, { xmlns: NS.STANZAS_ERR });
  error.c('text', { xmlns: NS.STANZAS_ERR, 'xml:lang': 'en' }).t(text);
  return el;
}
