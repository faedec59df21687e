import { Element } from 'ltx';
import type { Context } from '../context.js';
import { iqResult, stanzaError } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';

/** XEP-0030 for the server: its identity and exactly the features that are installed. */
export function installDisco({ router }: Pick<Context, 'router'>): void {
  router.handleServerIq(NS.DISCO_INFO, (iq, _from, payload) => {
    if (iq.attrs.type !== 'get') return stanzaError(iq, 'bad-request');
    if (payload.attrs.node) return stanzaError(iq, 'item-not-found');
    const query = new Element('query', { xmlns: NS.DISCO_INFO });
    query.c('identity', { category: 'server', type: 'im', name: 'Vigil' });
    for (const feature of [...router.discoFeatures].sort()) query.c('feature', { var: feature });
    return iqResult(iq, query);
  });
  router.handleServerIq(NS.DISCO_ITEMS, (iq, _from, payload) => {
    if (iq.attrs.type !== 'get') return stanzaError(iq, 'bad-request');
    if (payload.attrs.node) return stanzaError(iq, 'item-not-found');
    return iqResult(iq, new Element('query', { xmlns: NS.DISCO_ITEMS }));
  });
}
