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
  private readonly hiddenListeners: ((session: Session) => void)[] = [];
  private readonly resumedListeners: ((session: Session) => void)[] = [];

  onEnded(listener: EndedListener): void {
    this.endedListeners.push(listener);
  }

  /** A hibernated session's presence grace ran out: its contacts must now see it gone. */
  onHidden(listener: (session: Session) => void): void {
    this.hiddenListeners.push(listener);
  }

  /** A session was resumed on a new connection. */
  onResumed(listener: (session: Session) => void): void {
    this.resumedListeners.push(listener);
  }

  hidden(session: Session): void {
    for (const l of this.hiddenListeners) l(session);
  }

  resumed(session: Session): void {
    for (const l of this.resumedListeners) l(session);
  }

  ended(session: Session, reason: CloseReason, unconfirmed: Unconfirmed[]): void {
    for (const l of this.endedListeners) l(session, reason, unconfirmed);
  }
}
