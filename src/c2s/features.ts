import { Element } from 'ltx';
import type { WatchdogPolicy } from '../config/types.js';
import { NS } from '../xmpp/ns.js';

export type Mechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-1' | 'PLAIN';

/**
 * XEP-0478 limits: the largest stanza, and how long the client may stay silent before we act (the first
 * of a probe and the idle limit), so clients can time their own keepalives.
 */
export function limitsElement(maxStanzaSize: number, policy: WatchdogPolicy): Element {
  const limits = new Element('limits', { xmlns: NS.LIMITS });
  limits.c('max-bytes').t(String(maxStanzaSize));
  const candidates = [policy.probe !== 'none' ? policy.probeAfter : 0, policy.maxIdle].filter((v) => v > 0);
  if (candidates.length > 0) limits.c('idle-seconds').t(String(Math.floor(Math.min(...candidates) / 1000)));
  return limits;
}

export function preAuthFeatures(opts: { tlsOffered: boolean; tlsRequired: boolean; mechanisms: Mechanism[]; limits: Element }): Element {
  const features = new Element('stream:features');
  if (opts.tlsOffered) {
    const starttls = features.c('starttls', { xmlns: NS.TLS });
    if (opts.tlsRequired) starttls.c('required');
  }
  if (opts.mechanisms.length > 0) {
    const mechanisms = features.c('mechanisms', { xmlns: NS.SASL });
    for (const m of opts.mechanisms) mechanisms.c('mechanism').t(m);
  }
  features.cnode(opts.limits);
  return features;
}

export function postAuthFeatures(limits: Element, sm: boolean): Element {
  const features = new Element('stream:features');
  features.c('bind', { xmlns: NS.BIND });
  if (sm) features.c('sm', { xmlns: NS.SM }); // XEP-0198: enable after bind, or resume instead of it
  features.c('csi', { xmlns: NS.CSI }); // XEP-0352
  features.c('ver', { xmlns: 'urn:xmpp:features:rosterver' }); // RFC 6121 §2.6
  features.c('sub', { xmlns: 'urn:xmpp:features:pre-approval' }); // RFC 6121 §3.4
  features.cnode(limits);
  return features;
}
