import type { Session } from '../sessions/session.js';

/** Ended sessions remembered for their last h; beyond it the oldest is forgotten, so memory stays bounded. */
const MAX_GONE = 100_000;

interface Gone {
  username: string;
  h: number;
  until: number;
}

/**
 * Resume ids of live resumable sessions, and of sessions that ended recently: a client that comes back too
 * late is told the h we last counted (XEP-0198 §5), so it knows which of its own stanzas arrived. An id is
 * only ever looked up together with the account asking: another account's id is as unknown as a made-up one.
 */
export class Resumptions {
  private readonly live = new Map<string, Session>();
  private readonly gone = new Map<string, Gone>();

  add(session: Session): void {
    const id = session.sm?.id;
    if (id) this.live.set(id, session);
  }

  /** The live session `id` names, if `username` owns it. */
  find(id: string, username: string): Session | undefined {
    const session = this.live.get(id);
    return session && session.username === username ? session : undefined;
  }

  /** The session ended: its id now only answers with its last h, for `keepFor` ms. */
  ended(session: Session, now: number, keepFor: number): void {
    const id = session.sm?.id;
    if (!id || this.live.get(id) !== session) return;
    this.live.delete(id);
    this.gone.set(id, { username: session.username!, h: session.sm!.inbound, until: now + keepFor });
    this.prune(now);
  }

  /** The h of an ended session `id`, if `username` owned it and it is recent enough. */
  lastH(id: string, username: string, now: number): number | undefined {
    const gone = this.gone.get(id);
    return gone && gone.username === username && gone.until > now ? gone.h : undefined;
  }

  private prune(now: number): void {
    for (const [id, g] of this.gone) {
      if (g.until > now && this.gone.size <= MAX_GONE) break;
      this.gone.delete(id);
    }
  }
}
