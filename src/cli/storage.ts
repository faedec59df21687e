import type { Config } from '../config/types.js';
import { SqliteStorage } from '../storage/sqlite.js';
import type { Storage } from '../storage/storage.js';

/** The storage the configuration names; the CLI and the server open it the same way. */
export async function openStorage(config: Config): Promise<Storage> {
  if (config.storage.driver === 'postgres') throw new Error('storage.driver postgres is not available in this build; use sqlite');
  return new SqliteStorage(config.storage.path);
}
