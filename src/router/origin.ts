import type { Session } from '../sessions/session.js';

/** The server itself as the sender: errors it returns, presence it fans out, pushes and probes it sends. */
export interface ServerItself {
  readonly origin: 'server';
}

export const SERVER: ServerItself = Object.freeze({ origin: 'server' as const });

/**
 * Where a stanza entered the router: a client session (its `from` stamped with the bound JID), a server
 * stream authenticated for a remote domain, or the server itself.
 */
export type Origin = Session | ServerItself;

/** The client session a stanza came from, if it came from one. */
export function clientOf(origin: Origin): Session | undefined {
  return origin !== SERVER && (origin as Session).jid !== undefined ? (origin as Session) : undefined;
}
