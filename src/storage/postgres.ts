import pg from 'pg';
import type { OfflineMessage, OfflineUsage, RosterCounts, RosterItem, Storage, UserRecord } from './storage.js';

/**
 * Each entry moves the schema one version forward; at open, the missing ones are applied in order inside
 * one transaction, under an advisory lock, and `schema_version` records how far the database is.
 *
 * Types: SCRAM credentials are jsonb; times are timestamptz (a JS Date round-trips exactly: both hold
 * milliseconds or finer); roster groups are text[]. Usernames and JIDs are COLLATE "C", so they compare
 * and sort byte by byte as in SQLite whatever the database's locale. No foreign keys: like the SQLite
 * driver, offline messages and roster items are keyed by username alone and deleteUser removes them.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     username text COLLATE "C" PRIMARY KEY,
     scram jsonb NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE offline_messages (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     username text COLLATE "C" NOT NULL,
     xml text NOT NULL,
     stamp timestamptz NOT NULL
   );
   CREATE INDEX offline_by_user ON offline_messages (username, id);
   CREATE TABLE roster_items (
     username text COLLATE "C" NOT NULL,
     jid text COLLATE "C" NOT NULL,
     name text NOT NULL DEFAULT '',
     subscription text NOT NULL DEFAULT 'none' CHECK (subscription IN ('none', 'to', 'from', 'both')),
     ask boolean NOT NULL DEFAULT false,
     pending_in text,
     approved boolean NOT NULL DEFAULT false,
     groups text[] NOT NULL DEFAULT '{}',
     hidden boolean NOT NULL DEFAULT false,
     PRIMARY KEY (username, jid)
   );
   CREATE TABLE roster_versions (
     username text COLLATE "C" PRIMARY KEY,
     version bigint NOT NULL
   );`,
  // Bytes per message for the byte quota; the index covers count(*) and sum(bytes) for one user (an
  // index-only scan of at most maxOfflineMessages entries) as well as paging by id.
  `ALTER TABLE offline_messages ADD COLUMN bytes integer NOT NULL DEFAULT 0;
   UPDATE offline_messages SET bytes = octet_length(xml);
   DROP INDEX offline_by_user;
   CREATE INDEX offline_by_user ON offline_messages (username, id) INCLUDE (bytes);`,
  // See the SQLite driver: a delivered message a client without stream management never confirmed.
  `ALTER TABLE offline_messages ADD COLUMN salvaged boolean NOT NULL DEFAULT false;`,
];

/** Advisory lock keys. The one-key (bigint) and two-key (int, int) spaces do not overlap in PostgreSQL. */
const MIGRATION_LOCK = 0x76_69_67_69_6c; // 'vigil'
const OFFLINE_LOCK_CLASS = 0x76_6f_66_66; // 'voff', with hashtext(username) as the second key

export interface PostgresOptions {
  /** Connections in the pool. */
  max?: number;
  /** How long to wait for a connection (from the pool or the server) before a query fails, ms. */
  connectionTimeout?: number;
}

interface RosterRow {
  jid: string;
  name: string;
  subscription: RosterItem['subscription'];
  ask: boolean;
  pending_in: string | null;
  approved: boolean;
  groups: string[];
  hidden: boolean;
}

const ROSTER_COLUMNS = 'jid, name, subscription, ask, pending_in, approved, groups, hidden';

/**
 * A PostgreSQL server: a small connection pool, schema migrated at open.
 *
 * Queries are unnamed (parsed per call), unlike the SQLite driver's statement cache: named prepared
 * statements save ~0.2 ms a query on loopback but break behind PgBouncer in transaction mode (before
 * 1.21) and fail with "cached plan must not change result type" on a connection that outlives a migration.
 */
export class PostgresStorage implements Storage {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connect, migrate the schema (safely when several servers start at once), and return the storage. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStorage> {
    const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, connectionTimeoutMillis: options.connectionTimeout ?? 10_000 });
    // A pooled connection that dies while idle (server restart, network) is dropped by the pool, which
    // then emits 'error'; unhandled, that would kill the process. The next query opens a fresh connection.
    pool.on('error', () => {});
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PostgresStorage(pool);
  }

  /** One transaction on one pooled connection; rolled back if fn throws. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return transaction(this.pool, fn);
  }

  async getUser(username: string): Promise<UserRecord | undefined> {
    const { rows } = await this.pool.query<UserRecord>('SELECT username, scram FROM users WHERE username = $1', [username]);
    return rows[0] ? { username: rows[0].username, scram: rows[0].scram } : undefined;
  }

  async createUser(user: UserRecord): Promise<boolean> {
    const res = await this.pool.query('INSERT INTO users (username, scram) VALUES ($1, $2::jsonb) ON CONFLICT (username) DO NOTHING', [user.username, JSON.stringify(user.scram)]);
    return res.rowCount === 1;
  }

  async setCredentials(user: UserRecord): Promise<boolean> {
    const res = await this.pool.query('UPDATE users SET scram = $2::jsonb WHERE username = $1', [user.username, JSON.stringify(user.scram)]);
    return res.rowCount === 1;
  }

  async deleteUser(username: string): Promise<boolean> {
    // One statement, so one transaction: data-modifying CTEs run whether or not anything reads them.
    const res = await this.pool.query(
      `WITH offline AS (DELETE FROM offline_messages WHERE username = $1),
            items AS (DELETE FROM roster_items WHERE username = $1),
            versions AS (DELETE FROM roster_versions WHERE username = $1)
       DELETE FROM users WHERE username = $1`,
      [username],
    );
    return res.rowCount === 1;
  }

  async listUsers(): Promise<string[]> {
    const { rows } = await this.pool.query<{ username: string }>('SELECT username FROM users ORDER BY username');
    return rows.map((r) => r.username);
  }

  async storeOffline(username: string, xml: string, stamp: Date, limit: number, maxBytes = Number.MAX_SAFE_INTEGER, salvaged = false): Promise<boolean> {
    return this.transaction(async (client) => {
      // Writers for one user queue here until the previous one commits, so the usage below (a new
      // snapshot: READ COMMITTED) sees every message they stored and neither limit can be overshot.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [OFFLINE_LOCK_CLASS, username]);
      const res = await client.query(
        `INSERT INTO offline_messages (username, xml, stamp, bytes, salvaged)
         SELECT $1::text, $2::text, $3::timestamptz, $5::int, $7::boolean
         FROM (SELECT count(*) AS n, COALESCE(sum(bytes), 0) AS b FROM offline_messages WHERE username = $1) used
         WHERE used.n < $4::bigint AND used.b + $5::int <= $6::bigint`,
        [username, xml, stamp, limit, Buffer.byteLength(xml), maxBytes, salvaged],
      );
      return res.rowCount === 1;
    });
  }

  async readOffline(username: string, afterId: number, max: number): Promise<OfflineMessage[]> {
    const { rows } = await this.pool.query<{ id: string; xml: string; stamp: Date; salvaged: boolean }>(
      'SELECT id, xml, stamp, salvaged FROM offline_messages WHERE username = $1 AND id > $2 ORDER BY id LIMIT $3',
      [username, afterId, max],
    );
    return rows.map((r) => ({ id: Number(r.id), xml: r.xml, stamp: r.stamp, salvaged: r.salvaged }));
  }

  async markOfflineSalvaged(username: string, ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.pool.query('UPDATE offline_messages SET salvaged = true WHERE username = $1 AND id = ANY($2::bigint[])', [username, ids]);
  }

  async deleteOffline(username: string, ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    const res = await this.pool.query('DELETE FROM offline_messages WHERE username = $1 AND id = ANY($2::bigint[])', [username, ids]);
    return res.rowCount ?? 0;
  }

  async takeOffline(username: string): Promise<OfflineMessage[]> {
    // One statement: what it returns is exactly what it deleted; a concurrent take gets none of them.
    const { rows } = await this.pool.query<{ id: string; xml: string; stamp: Date; salvaged: boolean }>(
      `WITH taken AS (DELETE FROM offline_messages WHERE username = $1 RETURNING id, xml, stamp, salvaged)
       SELECT id, xml, stamp, salvaged FROM taken ORDER BY id`,
      [username],
    );
    return rows.map((r) => ({ id: Number(r.id), xml: r.xml, stamp: r.stamp, salvaged: r.salvaged }));
  }

  async countOffline(username: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM offline_messages WHERE username = $1', [username]);
    return rows[0].n;
  }

  async offlineUsage(username: string): Promise<OfflineUsage> {
    const { rows } = await this.pool.query<OfflineUsage>(
      'SELECT count(*)::int AS messages, COALESCE(sum(bytes), 0)::bigint AS bytes FROM offline_messages WHERE username = $1',
      [username],
    );
    return { messages: rows[0].messages, bytes: Number(rows[0].bytes) };
  }

  async getRoster(username: string): Promise<{ version: number; items: RosterItem[] }> {
    // Version and items from one statement, so one snapshot: never a version that does not match the items.
    const { rows } = await this.pool.query<Partial<RosterRow> & { version: string }>(
      `SELECT v.version, r.jid, r.name, r.subscription, r.ask, r.pending_in, r.approved, r.groups, r.hidden
       FROM (SELECT COALESCE((SELECT version FROM roster_versions WHERE username = $1), 0) AS version) v
       LEFT JOIN roster_items r ON r.username = $1
       ORDER BY r.jid`,
      [username],
    );
    return { version: rows.length ? Number(rows[0].version) : 0, items: rows.filter((r) => r.jid != null).map((r) => toItem(r as RosterRow)) };
  }

  async getRosterItem(username: string, jid: string): Promise<RosterItem | undefined> {
    const { rows } = await this.pool.query<RosterRow>(`SELECT ${ROSTER_COLUMNS} FROM roster_items WHERE username = $1 AND jid = $2`, [username, jid]);
    return rows[0] ? toItem(rows[0]) : undefined;
  }

  async putRosterItem(username: string, item: RosterItem): Promise<number> {
    // The item and the version bump in one statement (so one transaction); the version row's lock
    // orders concurrent changes to one roster.
    const { rows } = await this.pool.query<{ version: string }>(
      `WITH item AS (
         INSERT INTO roster_items (username, ${ROSTER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (username, jid) DO UPDATE SET name = EXCLUDED.name, subscription = EXCLUDED.subscription,
           ask = EXCLUDED.ask, pending_in = EXCLUDED.pending_in, approved = EXCLUDED.approved,
           groups = EXCLUDED.groups, hidden = EXCLUDED.hidden
       )
       INSERT INTO roster_versions (username, version) VALUES ($1, 1)
       ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1
       RETURNING version`,
      [username, item.jid, item.name, item.subscription, item.ask, item.pendingIn, item.approved, item.groups, item.hidden ?? false],
    );
    return Number(rows[0].version);
  }

  async deleteRosterItem(username: string, jid: string): Promise<number | undefined> {
    // The version moves only when a row went: no row from the CTE, no insert, nothing returned.
    const { rows } = await this.pool.query<{ version: string }>(
      `WITH gone AS (DELETE FROM roster_items WHERE username = $1 AND jid = $2 RETURNING 1)
       INSERT INTO roster_versions (username, version) SELECT $1::text, 1 FROM gone
       ON CONFLICT (username) DO UPDATE SET version = roster_versions.version + 1
       RETURNING version`,
      [username, jid],
    );
    return rows[0] ? Number(rows[0].version) : undefined;
  }

  async countRoster(username: string): Promise<RosterCounts> {
    const { rows } = await this.pool.query<RosterCounts>(
      `SELECT (count(*) FILTER (WHERE NOT hidden))::int AS items, (count(*) FILTER (WHERE pending_in IS NOT NULL))::int AS "pendingIn"
       FROM roster_items WHERE username = $1`,
      [username],
    );
    return { items: rows[0].items, pendingIn: rows[0].pendingIn };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

async function transaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool.
    await client.query('ROLLBACK').catch(() => (broken = true));
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Bring the schema to MIGRATIONS.length; two servers starting at once take turns on the advisory lock. */
async function migrate(pool: pg.Pool): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_version');
    if (rows.length > 1) throw new Error(`schema_version holds ${rows.length} rows; it must hold one`);
    const current = rows[0]?.version ?? 0;
    if (current > MIGRATIONS.length) throw new Error(`database schema version ${current} is newer than this Vigil knows (${MIGRATIONS.length})`);
    for (let v = current; v < MIGRATIONS.length; v++) await client.query(MIGRATIONS[v]);
    if (rows.length === 0) await client.query('INSERT INTO schema_version (version) VALUES ($1)', [MIGRATIONS.length]);
    else if (current !== MIGRATIONS.length) await client.query('UPDATE schema_version SET version = $1', [MIGRATIONS.length]);
  });
}

function toItem(row: RosterRow): RosterItem {
  return {
    jid: row.jid,
    name: row.name,
    subscription: row.subscription,
    ask: row.ask,
    pendingIn: row.pending_in,
    approved: row.approved,
    groups: row.groups,
    hidden: row.hidden,
  };
}
