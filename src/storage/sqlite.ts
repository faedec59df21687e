import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { OfflineMessage, OfflineUsage, RosterCounts, RosterItem, Storage, UserRecord } from './storage.js';

/** Each entry moves the schema one version forward; applied in order inside one transaction at open. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     username TEXT PRIMARY KEY,
     scram TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE offline_messages (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     username TEXT NOT NULL,
     xml TEXT NOT NULL,
     stamp INTEGER NOT NULL
   );
   CREATE INDEX offline_by_user ON offline_messages (username, id);`,
  `CREATE TABLE roster_items (
     username TEXT NOT NULL,
     jid TEXT NOT NULL,
     name TEXT NOT NULL DEFAULT '',
     subscription TEXT NOT NULL DEFAULT 'none',
     ask INTEGER NOT NULL DEFAULT 0,
     pending_in TEXT,
     approved INTEGER NOT NULL DEFAULT 0,
     groups TEXT NOT NULL DEFAULT '[]',
     PRIMARY KEY (username, jid)
   );
   CREATE TABLE roster_versions (username TEXT PRIMARY KEY, version INTEGER NOT NULL);`,
  `ALTER TABLE roster_items ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;`,
  // Bytes per message for the byte quota; the index covers COUNT and SUM(bytes) for one user, so the
  // check before every store reads at most maxOfflineMessages index entries and no table rows.
  `ALTER TABLE offline_messages ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
   UPDATE offline_messages SET bytes = length(CAST(xml AS BLOB));
   DROP INDEX offline_by_user;
   CREATE INDEX offline_by_user ON offline_messages (username, id, bytes);`,
  // A message already delivered once that a client without stream management never confirmed: given up
  // the next time rather than owed for ever to a client that only listens.
  `ALTER TABLE offline_messages ADD COLUMN salvaged INTEGER NOT NULL DEFAULT 0;`,
];

interface RosterRow {
  jid: string;
  name: string;
  subscription: RosterItem['subscription'];
  ask: number;
  pending_in: string | null;
  approved: number;
  groups: string;
  hidden: number;
}

/** The embedded default: one SQLite file, WAL mode, schema migrated at open. */
export class SqliteStorage implements Storage {
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.migrate();
  }

  /** Prepared once per SQL text: compiling a statement costs more than running it. */
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, (statement = this.db.prepare(sql)));
    return statement;
  }

  private migrate(): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) throw new Error(`database schema version ${current} is newer than this Vigil knows (${MIGRATIONS.length})`);
    this.db.transaction(() => {
      for (let v = current; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    })();
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const row = this.stmt('SELECT username, scram FROM users WHERE username = ?').get(username) as { username: string; scram: string } | undefined;
    return row ? { username: row.username, scram: JSON.parse(row.scram) } : undefined;
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const info = this.stmt('INSERT OR IGNORE INTO users (username, scram, created_at) VALUES (?, ?, ?)').run(user.username, JSON.stringify(user.scram), Date.now());
    return info.changes === 1;
  }

  async setCredentials(user: UserRecord): Promise<boolean> {
    return this.stmt('UPDATE users SET scram = ? WHERE username = ?').run(JSON.stringify(user.scram), user.username).changes === 1;
  }

  async deleteUser(username: string): Promise<boolean> {
    return this.db.transaction(() => {
      this.stmt('DELETE FROM offline_messages WHERE username = ?').run(username);
      this.stmt('DELETE FROM roster_items WHERE username = ?').run(username);
      this.stmt('DELETE FROM roster_versions WHERE username = ?').run(username);
      return this.stmt('DELETE FROM users WHERE username = ?').run(username).changes === 1;
    })();
  }

  async listUsers(): Promise<string[]> {
    return (this.stmt('SELECT username FROM users ORDER BY username').all() as { username: string }[]).map((r) => r.username);
  }

  async storeOffline(username: string, xml: string, stamp: Date, limit: number, maxBytes = Number.MAX_SAFE_INTEGER, salvaged = false): Promise<boolean> {
    const bytes = Buffer.byteLength(xml);
    return this.db.transaction(() => {
      const used = this.usage(username);
      if (used.messages >= limit || used.bytes + bytes > maxBytes) return false;
      this.stmt('INSERT INTO offline_messages (username, xml, stamp, bytes, salvaged) VALUES (?, ?, ?, ?, ?)').run(username, xml, stamp.getTime(), bytes, salvaged ? 1 : 0);
      return true;
    })();
  }

  async readOffline(username: string, afterId: number, max: number): Promise<OfflineMessage[]> {
    const rows = this.stmt('SELECT id, xml, stamp, salvaged FROM offline_messages WHERE username = ? AND id > ? ORDER BY id LIMIT ?').all(username, afterId, max) as { id: number; xml: string; stamp: number; salvaged: number }[];
    return rows.map((r) => ({ id: r.id, xml: r.xml, stamp: new Date(r.stamp), salvaged: r.salvaged === 1 }));
  }

  async markOfflineSalvaged(username: string, ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    this.stmt('UPDATE offline_messages SET salvaged = 1 WHERE username = ? AND id IN (SELECT value FROM json_each(?))').run(username, JSON.stringify(ids));
  }

  async deleteOffline(username: string, ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    // A JSON array as one parameter: one statement whatever the number of ids.
    return this.stmt('DELETE FROM offline_messages WHERE username = ? AND id IN (SELECT value FROM json_each(?))').run(username, JSON.stringify(ids)).changes;
  }

  async takeOffline(username: string): Promise<OfflineMessage[]> {
    return this.db.transaction(() => {
      const rows = this.stmt('SELECT id, xml, stamp, salvaged FROM offline_messages WHERE username = ? ORDER BY id').all(username) as { id: number; xml: string; stamp: number; salvaged: number }[];
      this.stmt('DELETE FROM offline_messages WHERE username = ?').run(username);
      return rows.map((r) => ({ id: r.id, xml: r.xml, stamp: new Date(r.stamp), salvaged: r.salvaged === 1 }));
    })();
  }

  async countOffline(username: string): Promise<number> {
    return this.usage(username).messages;
  }

  async offlineUsage(username: string): Promise<OfflineUsage> {
    return this.usage(username);
  }

  private usage(username: string): OfflineUsage {
    return this.stmt('SELECT COUNT(*) AS messages, COALESCE(SUM(bytes), 0) AS bytes FROM offline_messages WHERE username = ?').get(username) as OfflineUsage;
  }

  async getRoster(username: string): Promise<{ version: number; items: RosterItem[] }> {
    const rows = this.stmt('SELECT * FROM roster_items WHERE username = ? ORDER BY jid').all(username) as RosterRow[];
    return { version: this.rosterVersion(username), items: rows.map(toItem) };
  }

  async getRosterItem(username: string, jid: string): Promise<RosterItem | undefined> {
    const row = this.stmt('SELECT * FROM roster_items WHERE username = ? AND jid = ?').get(username, jid) as RosterRow | undefined;
    return row ? toItem(row) : undefined;
  }

  async putRosterItem(username: string, item: RosterItem): Promise<number> {
    return this.db.transaction(() => {
      this
        .stmt(`INSERT OR REPLACE INTO roster_items (username, jid, name, subscription, ask, pending_in, approved, groups, hidden) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(username, item.jid, item.name, item.subscription, item.ask ? 1 : 0, item.pendingIn, item.approved ? 1 : 0, JSON.stringify(item.groups), item.hidden ? 1 : 0);
      return this.bumpVersion(username);
    })();
  }

  async deleteRosterItem(username: string, jid: string): Promise<number | undefined> {
    return this.db.transaction(() => {
      const changed = this.stmt('DELETE FROM roster_items WHERE username = ? AND jid = ?').run(username, jid).changes;
      return changed ? this.bumpVersion(username) : undefined;
    })();
  }

  async countRoster(username: string): Promise<RosterCounts> {
    const row = this
      .stmt('SELECT COALESCE(SUM(hidden = 0), 0) AS items, COALESCE(SUM(pending_in IS NOT NULL), 0) AS pendingIn FROM roster_items WHERE username = ?')
      .get(username) as RosterCounts;
    return { items: row.items, pendingIn: row.pendingIn };
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private rosterVersion(username: string): number {
    const row = this.stmt('SELECT version FROM roster_versions WHERE username = ?').get(username) as { version: number } | undefined;
    return row?.version ?? 0;
  }

  private bumpVersion(username: string): number {
    const version = this.rosterVersion(username) + 1;
    this.stmt('INSERT OR REPLACE INTO roster_versions (username, version) VALUES (?, ?)').run(username, version);
    return version;
  }
}

function toItem(row: RosterRow): RosterItem {
  return {
    jid: row.jid,
    name: row.name,
    subscription: row.subscription,
    ask: row.ask === 1,
    pendingIn: row.pending_in,
    approved: row.approved === 1,
    groups: JSON.parse(row.groups) as string[],
    hidden: row.hidden === 1,
  };
}
