import { iqResult } from '../xmpp/errors.js';
import { NS } from '../xmpp/ns.js';
import type { Router } from '../router/router.js';

/** XEP-0199: the server answers pings addressed to it. */
export function installPing(router: Router): void {
  router.serverIqHandler(NS.PING, (iq) => (iq.attrs.type === 'get' ? iqResult(iq) : undefined));
}
