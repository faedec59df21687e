import type { CloseReason } from './close-reason.js';
import type { Unconfirmed } from './ledger.js';
import type { Session } from './session.js';

export type EndedListener = (session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]) => void;

/**
 * The end of a session, which features act on: they subscribe, the server only announces, so what happens
 * at the end of a session (presence, salvage) is no one's special case.
 */
export class SessionEvents {
  private readonly endedListeners: EndedListener[] = [];

  onEnded(listener: EndedListener): void {
    this.endedListeners.push(listener);
  }

  ended(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    for (const l of this.endedListeners) l(session, reason, unconfirmed);
  }
}
