import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Config } from '../config/types.js';
import { PostgresStorage } from '../storage/postgres.js';
import { SqliteStorage } from '../storage/sqlite.js';
import type { Storage } from '../storage/storage.js';

/** The storage the configuration names; the CLI and the server open it the same way. */
export async function openStorage(config: Config): Promise<Storage> {
  if (config.storage.driver === 'postgres') {
    if (!config.storage.url) throw new Error('storage.url must be set (a PostgreSQL connection URL) when storage.driver is postgres');
    try {
      return await PostgresStorage.open(config.storage.url);
    } catch (err) {
      throw new Error(`cannot open the PostgreSQL storage (storage.url): ${describe(err)}`, { cause: err });
    }
  }
  return new SqliteStorage(config.storage.path);
}

/**
 * The SQLite file the configuration names, as an absolute path for messages, when it does not exist (opening
 * it would create it, and its directory); null when it exists, is in memory, or the driver is postgres
 * (whose database Vigil never creates).
 */
export function missingDatabase(config: Config): string | null {
  if (config.storage.driver !== 'sqlite' || config.storage.path === ':memory:') return null;
  return existsSync(config.storage.path) ? null : resolve(config.storage.path);
}

/** Node's connect errors can be an AggregateError with an empty message (one error per address tried). */
function describe(err: unknown): string {
  const e = err as Error & { code?: string; errors?: Error[] };
  if (e?.message) return e.message;
  if (Array.isArray(e?.errors) && e.errors.length) return e.errors.map((x) => x.message).join('; ');
  return e?.code ?? String(err);
}
