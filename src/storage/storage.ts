/** SCRAM credentials for one hash (RFC 5802 §3): what the server keeps instead of the password. */
export interface ScramCredential {
  salt: string; // base64
  iterations: number;
  storedKey: string; // base64
  serverKey: string; // base64
}

export type ScramHash = 'sha1' | 'sha256';

export interface UserRecord {
  username: string;
  scram: Record<ScramHash, ScramCredential>;
}

export interface OfflineMessage {
  id: number;
  xml: string;
  stamp: Date;
  /**
   * Delivered once to a client without stream management that never confirmed it (or salvaged from such
   * a session): owed no second time.
   */
  salvaged: boolean;
}

export interface OfflineUsage {
  messages: number;
  bytes: number;
}

export interface RosterItem {
  jid: string;
  name: string;
  subscription: 'none' | 'to' | 'from' | 'both';
  /** We asked the contact for a subscription and have no answer yet (pending out). */
  ask: boolean;
  /** The contact asked us and we have not answered (pending in); the request stanza is kept. */
  pendingIn: string | null;
  /** We approved the contact's subscription before it asked (RFC 6121 §3.4). */
  approved: boolean;
  groups: string[];
  /**
   * Kept only to hold a pending inbound request from someone the user never added (RFC 6121 "None +
   * Pending In" without an item): stored, but not part of the roster the user sees or gets pushes for.
   */
  hidden?: boolean;
}

/** What bounds a roster's growth: items the user sees, and inbound requests waiting for an answer. */
export interface RosterCounts {
  items: number;
  pendingIn: number;
}

/**
 * Where durable state lives. Asynchronous so a networked database fits behind the same interface as the
 * embedded SQLite file.
 */
export interface Storage {
  getUser(username: string): Promise<UserRecord | undefined>;
  /** false when the user exists already. */
  createUser(user: UserRecord): Promise<boolean>;
  /** false when there is no such user. */
  setCredentials(user: UserRecord): Promise<boolean>;
  deleteUser(username: string): Promise<boolean>;
  listUsers(): Promise<string[]>;

  /**
   * false when the user's offline store is full: it holds `limit` messages already, or this one's UTF-8
   * bytes would take it past `maxBytes` (default: no byte limit). `salvaged` marks a message a client
   * without stream management may already have seen.
   */
  storeOffline(username: string, xml: string, stamp: Date, limit: number, maxBytes?: number, salvaged?: boolean): Promise<boolean>;
  /** Up to `max` stored messages with an id above `afterId`, oldest first, left in storage. */
  readOffline(username: string, afterId: number, max: number): Promise<OfflineMessage[]>;
  /** Mark these messages salvaged (see OfflineMessage.salvaged). */
  markOfflineSalvaged(username: string, ids: readonly number[]): Promise<void>;
  /** Remove these messages (ids from readOffline); returns how many were still there. */
  deleteOffline(username: string, ids: readonly number[]): Promise<number>;
  /** Remove and return every stored message, oldest first. */
  takeOffline(username: string): Promise<OfflineMessage[]>;
  countOffline(username: string): Promise<number>;
  /** What the user's store holds: messages and their UTF-8 bytes (what maxBytes bounds). */
  offlineUsage(username: string): Promise<OfflineUsage>;

  getRoster(username: string): Promise<{ version: number; items: RosterItem[] }>;
  getRosterItem(username: string, jid: string): Promise<RosterItem | undefined>;
  /** Insert or replace one item; returns the new roster version. */
  putRosterItem(username: string, item: RosterItem): Promise<number>;
  /** Returns the new roster version, or undefined when there was no such item. */
  deleteRosterItem(username: string, jid: string): Promise<number | undefined>;
  /** Visible (not hidden) items and items with a pending inbound request, for the flood limits. */
  countRoster(username: string): Promise<RosterCounts>;

  close(): Promise<void>;
}
