import type { Context } from '../context.js';
import { iqResult } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';

/** XEP-0199: the server answers pings addressed to it. */
export function installPing({ router }: Pick<Context, 'router'>): void {
  router.handleServerIq(NS.PING, (iq) => (iq.attrs.type === 'get' ? iqResult(iq) : undefined));
}
