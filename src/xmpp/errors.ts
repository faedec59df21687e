import { Element } from 'ltx';
import { NS } from './ns.js';

/** RFC 6120 §4.9.3 stream error conditions. */
export type StreamErrorCondition =
  | 'bad-format' | 'bad-namespace-prefix' | 'conflict' | 'connection-timeout' | 'host-gone' | 'host-unknown'
  | 'improper-addressing' | 'internal-server-error' | 'invalid-from' | 'invalid-namespace' | 'invalid-xml'
  | 'not-authorized' | 'not-well-formed' | 'policy-violation' | 'remote-connection-failed' | 'reset'
  | 'resource-constraint' | 'restricted-xml' | 'see-other-host' | 'system-shutdown' | 'undefined-condition'
  | 'unsupported-encoding' | 'unsupported-feature' | 'unsupported-stanza-type' | 'unsupported-version';

/** RFC 6120 §8.3.3 stanza error conditions. */
export type StanzaErrorCondition =
  | 'bad-request' | 'conflict' | 'feature-not-implemented' | 'forbidden' | 'gone' | 'internal-server-error'
  | 'item-not-found' | 'jid-malformed' | 'not-acceptable' | 'not-allowed' | 'not-authorized' | 'policy-violation'
  | 'recipient-unavailable' | 'redirect' | 'registration-required' | 'remote-server-not-found'
  | 'remote-server-timeout' | 'resource-constraint' | 'service-unavailable' | 'subscription-required'
  | 'undefined-condition' | 'unexpected-request';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

const DEFAULT_TYPE: Record<StanzaErrorCondition, StanzaErrorType> = {
  'bad-request': 'modify', conflict: 'cancel', 'feature-not-implemented': 'cancel', forbidden: 'auth', gone: 'cancel',
  'internal-server-error': 'cancel', 'item-not-found': 'cancel', 'jid-malformed': 'modify', 'not-acceptable': 'modify',
  'not-allowed': 'cancel', 'not-authorized': 'auth', 'policy-violation': 'modify', 'recipient-unavailable': 'wait',
  redirect: 'modify', 'registration-required': 'auth', 'remote-server-not-found': 'cancel', 'remote-server-timeout': 'wait',
  'resource-constraint': 'wait', 'service-unavailable': 'cancel', 'subscription-required': 'auth',
  'undefined-condition': 'cancel', 'unexpected-request': 'wait',
};

export function streamError(condition: StreamErrorCondition, text?: string): Element {
  const el = new Element('stream:error');
  el.c(condition, { xmlns: NS.STREAMS_ERR });
  if (text) el.c('text', { xmlns: NS.STREAMS_ERR, 'xml:lang': 'en' }).t(text);
  return el;
}

/**
 * The error reply to a stanza (RFC 6120 §8.3.1): same name and id, addresses swapped, type error, the
 * original payload left out (we do not echo what may be large or private).
 */
export function stanzaError(stanza: Element, condition: StanzaErrorCondition, text?: string, type = DEFAULT_TYPE[condition]): Element {
  const attrs: Record<string, string> = { type: 'error' };
  if (stanza.attrs.xmlns) attrs.xmlns = stanza.attrs.xmlns;
  if (stanza.attrs.id !== undefined) attrs.id = stanza.attrs.id;
  if (stanza.attrs.from) attrs.to = stanza.attrs.from;
  if (stanza.attrs.to) attrs.from = stanza.attrs.to;
  const reply = new Element(stanza.name, attrs);
  const error = reply.c('error', { type });
  error.c(condition, { xmlns: NS.STANZAS_ERR });
  if (text) error.c('text', { xmlns: NS.STANZAS_ERR, 'xml:lang': 'en' }).t(text);
  return reply;
}

export function iqResult(iq: Element, payload?: Element): Element {
  const attrs: Record<string, string> = { type: 'result', id: iq.attrs.id };
  if (iq.attrs.xmlns) attrs.xmlns = iq.attrs.xmlns;
  if (iq.attrs.from) attrs.to = iq.attrs.from;
  if (iq.attrs.to) attrs.from = iq.attrs.to;
  const reply = new Element('iq', attrs);
  if (payload) reply.cnode(payload);
  return reply;
}
