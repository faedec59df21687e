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

/** Node's connect errors can be an AggregateError with an empty message (one error per address tried). */
function describe(err: unknown): string {
  const e = err as Error & { code?: string; errors?: Error[] };
  if (e?.message) return e.message;
  if (Array.isArray(e?.errors) && e.errors.length) return e.errors.map((x) => x.message).join('; ');
  return e?.code ?? String(err);
}
