import type { Context } from '../context.js';

/**
 * What XEP-0198 settles when a session ends: its unacked messages go to offline storage (features/offline.ts,
 * which takes them from the same list), presence in the queue is dropped, and each unacked IQ request is
 * answered with an error on the recipient's behalf, so its sender is not left waiting for a reply that
 * can never come.
 */
export function installStreamManagement(ctx: Context): void {
  ctx.sessions.onEnded((session, _reason, unconfirmed) => {
    if (!session.sm) return;
    for (const { stanza } of unconfirmed) {
      if (stanza.name !== 'iq' || (stanza.attrs.type !== 'get' && stanza.attrs.type !== 'set')) continue;
      // The server's own requests (pings, roster pushes) need no answer made up for them.
      if (stanza.attrs.from === undefined || stanza.attrs.from === ctx.config.domain || stanza.attrs.from === session.bareJid) continue;
      ctx.router.bounce(stanza, 'service-unavailable', 'the recipient went away before it read this request');
    }
  });
}
