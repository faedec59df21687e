import type { Element } from 'ltx';

/**
 * What RFC 6121 keeps for one bound client resource: its presence (§4) and whether it asked for the roster
 * (§2.1.6, "interested resource"). Identity lives on the Session; this is state the IM features change.
 */
export class ResourceState {
  /** Available after initial presence, until unavailable or the end of the session. */
  available = false;
  priority = 0;
  /**
   * Hibernated past its presence grace: contacts were told it is unavailable, and `last` is kept to be
   * broadcast again if it resumes.
   */
  hidden = false;
  /** The last presence it broadcast. */
  last: Element | undefined;
  rosterRequested = false;
  /** XEP-0280: wants copies of the account's chats on other resources. */
  carbons = false;
  /** JIDs it sent directed presence to, owed unavailable presence at the end (§4.6.3). */
  directedTo: Set<string> | undefined;
}
