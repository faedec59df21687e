import { Element } from 'ltx';
import type { Context } from '../context.js';
import { iqResult, stanzaError } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';
import { VERSION } from '../version.js';

/** XEP-0092: name and version; the operating system is left out, it only helps attackers. */
export function installVersion({ router }: Pick<Context, 'router'>): void {
  router.handleServerIq(NS.VERSION, (iq) => {
    if (iq.attrs.type !== 'get') return stanzaError(iq, 'bad-request');
    const query = new Element('query', { xmlns: NS.VERSION });
    query.c('name').t('Vigil');
    query.c('version').t(VERSION);
    return iqResult(iq, query);
  });
}
