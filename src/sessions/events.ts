import type { CloseReason } from './close-reason.js';
import type { Unconfirmed } from './ledger.js';
import type { Session } from './session.js';

export type EndedListener = (session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]) => void;
export type BoundListener = (session: Session) => void;

/**
 * The moments in a session's life that features act on: it was bound, it ended. Features subscribe; the
 * server only announces, so what happens at the end of a session (presence, salvage) is no one's special case.
 */
export class SessionEvents {
  private readonly boundListeners: BoundListener[] = [];
  private readonly endedListeners: EndedListener[] = [];

  onBound(listener: BoundListener): void {
    this.boundListeners.push(listener);
  }

  onEnded(listener: EndedListener): void {
    this.endedListeners.push(listener);
  }

  bound(session: Session): void {
    for (const l of this.boundListeners) l(session);
  }

  ended(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    for (const l of this.endedListeners) l(session, reason, unconfirmed);
  }
}
